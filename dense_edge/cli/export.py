"""``dense-edge export``: PyTorch model -> ONNX (and, with later targets, -> engines)."""

from __future__ import annotations

from pathlib import Path

import click

from dense_edge.cli.options import force_option, load, recipe_options, run_dir

TARGETS = ["onnx"]


@click.command()
@recipe_options
@force_option
@click.option(
    "--target", type=click.Choice(TARGETS), default="onnx", show_default=True, help="What to build."
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16"]),
    help="ONNX precision (fp16 keeps float32 inputs and outputs).",
)
@click.option(
    "--weights", type=click.Path(path_type=Path), help="Export these weights instead of RUN/model."
)
@click.option("--arch", help="Architecture of --weights when it cannot be recognised.")
@click.option("--opset", type=int, help="ONNX opset (13..20).")
@click.option("--dynamic-hw/--static-hw", default=None, help="Free the spatial axes too.")
@click.option("--exporter", type=click.Choice(["torchscript", "dynamo"]))
def export(
    recipe_path: Path | None,
    out: Path | None,
    sets: tuple[str, ...],
    force: bool,
    target: str,
    precision: str | None,
    weights: Path | None,
    arch: str | None,
    opset: int | None,
    dynamic_hw: bool | None,
    exporter: str | None,
) -> None:
    """Export the model to ONNX, check it, and prove it equals the PyTorch model."""
    from dense_edge.export import export_stage

    recipe = load(
        recipe_path,
        sets,
        **{
            "model.weights": str(weights) if weights else None,
            "model.arch": arch,
            "export.opset": opset,
            "export.dynamic_hw": dynamic_hw,
            "export.exporter": exporter,
            "export.precision": precision,
        },
    )
    result = export_stage(recipe, run_dir(recipe, out), force=force)
    p = result.parity
    click.echo(
        f"onnx: {result.path}  max abs {p.get('max_abs_error', float('nan')):.2e}  "
        f"top-1 agreement {p.get('top1_agreement', float('nan')):.4f}"
        + ("  (reused)" if result.reused else "")
    )
