"""``dense-edge compile``: build one engine bundle in RUN/engines/<target>-<precision>/."""

from __future__ import annotations

from pathlib import Path

import click

from dense_edge.cli.options import (
    force_option,
    load,
    recipe_options,
    run_dir,
    target_options,
    with_target,
)
from dense_edge.compile.stage import compile_stage
from dense_edge.targets.registry import names


@click.command(name="compile")
@recipe_options
@force_option
@target_options
@click.option("--target", required=True, type=click.Choice(names()))
@click.option("--precision", required=True, type=click.Choice(["fp32", "fp16", "bf16", "int8"]))
def compile_cmd(
    recipe_path: Path | None,
    out: Path | None,
    sets: tuple[str, ...],
    force: bool,
    device: str | None,
    hint: str | None,
    threads: int | None,
    streams: int | None,
    target: str,
    precision: str,
) -> None:
    """Compile the ONNX (or INT8) model into an engine bundle for one target."""
    recipe = with_target(
        load(recipe_path, sets), target, device=device, hint=hint, threads=threads, streams=streams
    )
    result = compile_stage(recipe, run_dir(recipe, out), target, precision, force=force)
    m = result.manifest
    size = sum(f["bytes"] for f in m["files"].values())
    click.echo(
        f"engine: {result.path}  {size / 2**20:.2f} MiB  asked {precision}, runs "
        f"{m.get('precision_run')} on {m.get('device_name') or m.get('device')}"
        + ("  (reused)" if result.reused else "")
    )
