"""``dense-edge kit validate KIT``: a TensorRT build kit proves itself on the device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dense_edge.targets.registry import all_targets

_KIT_TARGETS = [t for t in all_targets() if t.writes_kits]
# A kit runs on its own target's runtime, or is checked by that target's stand-in where it cannot.
RUNNERS = [t.name for t in _KIT_TARGETS] + [
    s for s in dict.fromkeys(t.kit_stand_in for t in _KIT_TARGETS) if s is not None
]


def _p99(lat: dict[str, Any]) -> str:
    p99 = lat.get("p99_ms")
    return f"{p99:.3f} ms" if p99 is not None else f"n/a (n={lat['iterations']} too small)"


@click.group()
def kit() -> None:
    """TensorRT build kits (RUN/kits/tensorrt-<precision>/) on the device."""


@kit.command("validate")
@click.argument("kit_dir", metavar="KIT", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--runner",
    type=click.Choice(RUNNERS),
    default=RUNNERS[0],
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
    from dense_edge.targets.tensorrt.selfcheck import validate_kit, write_report

    report = validate_kit(
        kit_dir, runner=runner, rebuild=rebuild, iterations=iterations, warmup=warmup
    )
    path = write_report(report, out or kit_dir / "device_report.json")
    acc, first = report["accuracy"], next(iter(report["latency"].values()))
    click.echo(
        f"{report['engine']['name']}: top-1 {acc['top1_fraction']:.2%} "
        f"(top-1 drop {acc['top1_drop_points']:+.2f} points against float), "
        f"agreement {acc['agreement_fraction']:.2%}, cosine {acc['cosine']:.6f}, "
        f"p50 {first['p50_ms']:.3f} ms / p99 {_p99(first)} at batch {first['batch']} "
        f"({first['clock']}) on {report['evaluation']['samples']} images"
    )
    if report["note"]:
        click.secho(f"note: {report['note']}", fg="yellow", err=True)
    click.echo(
        f"device report: {path} (add it to the run: dense-edge report merge {path.name} --run RUN)"
    )
