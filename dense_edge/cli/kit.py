"""``dense-edge kit validate KIT``: a device build kit proves itself on the device
(:mod:`dense_edge.kits.device_run` does the work)."""

from __future__ import annotations

from pathlib import Path

import click

from dense_edge.kits import device_run


@click.group()
def kit() -> None:
    """TensorRT build kits (RUN/kits/tensorrt-<precision>/) on the device."""


@kit.command("validate")
@click.argument("kit_dir", metavar="KIT", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--runner",
    type=click.Choice(device_run.RUNNERS),
    default=device_run.RUNNERS[0],
    show_default=True,
    help="tensorrt: the engine on this GPU. onnxruntime: the kit's ONNX on ONNX Runtime, to "
    "check a kit where there is no GPU (not a TensorRT measurement).",
)
@click.option("--rebuild", is_flag=True, help="Build the engine even if model.engine exists.")
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Timed runs per batch size; p99 is reported from 1000 samples up.",
)
@click.option("--warmup", type=click.IntRange(min=0), default=20, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Device report path (default: KIT/device_report.json).",
)
def validate(
    kit_dir: Path, runner: str, rebuild: bool, iterations: int, warmup: int, out: Path | None
) -> None:
    """Run the kit's evaluation set through its engine; write the device report."""
    report, path = device_run.validate_and_write(
        kit_dir, out, runner=runner, rebuild=rebuild, iterations=iterations, warmup=warmup
    )
    click.echo(device_run.summary(report))
    if report["note"]:
        click.secho(f"note: {report['note']}", fg="yellow", err=True)
    click.echo(
        f"device report: {path} (add it to the run: dense-edge report merge {path.name} --run RUN)"
    )
