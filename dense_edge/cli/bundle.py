"""``dense-edge bundle ENGINE_DIR -o model.bundle``: one verifiable file for a device."""

from __future__ import annotations

from pathlib import Path

import click

from dense_edge.runtime.archive import pack


@click.command()
@click.argument("engine_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def bundle(engine_dir: Path, output: Path) -> None:
    """Pack an engine folder (files, manifest, labels, sha256 of everything) into one archive."""
    out = pack(engine_dir, output)
    size = out.stat().st_size
    click.echo(f"bundle: {out} ({size / 2**20:.2f} MiB)")
