"""``dense-edge export --target X``: the one command from a model to a checked engine."""

from __future__ import annotations

from pathlib import Path

import click

from dense_edge.catalog import ONNX, target_names
from dense_edge.cli.options import (
    force_option,
    load,
    recipe_options,
    run_dir,
    target_options,
    with_target,
)
from dense_edge.cli.report import print_summary
from dense_edge.environment import skipped_here
from dense_edge.pipeline import CHECK_COLUMNS, export_target, validate_and_report
from dense_edge.progress import print_table
from dense_edge.validate.stage import engine_dirs

TARGETS = [ONNX, *target_names()]


@click.command()
@recipe_options
@force_option
@target_options
@click.option(
    "--target", type=click.Choice(TARGETS), default="onnx", show_default=True, help="What to build."
)
@click.option(
    "--precision",
    "precisions",
    multiple=True,
    type=click.Choice(["fp32", "fp16", "bf16", "int8"]),
    help="Precision (repeatable; default: the recipe's, else the target's usual pair).",
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
    device: str | None,
    hint: str | None,
    threads: int | None,
    streams: int | None,
    target: str,
    precisions: tuple[str, ...],
    weights: Path | None,
    arch: str | None,
    opset: int | None,
    dynamic_hw: bool | None,
    exporter: str | None,
) -> None:
    """Train or load -> ONNX -> (calibrate) -> compile -> check, for one target.

    `--target onnx` stops at the checked ONNX model; the other targets build an engine bundle in
    RUN/engines/<target>-<precision>/, print its accuracy, agreement with the float model and
    latency, validate the run's engines and print each one's budget status. Exits 1 unless the
    verdict is PASSED (2 for a mistake in the input).
    """
    recipe = load(
        recipe_path,
        sets,
        **{
            "model.weights": str(weights) if weights else None,
            "model.arch": arch,
            "export.opset": opset,
            "export.dynamic_hw": dynamic_hw,
            "export.exporter": exporter,
        },
    )
    wanted = list(precisions)
    if target != ONNX:
        recipe = with_target(recipe, target, device=device, hint=hint, threads=threads,
                             streams=streams)  # fmt: skip
        if not wanted:  # the recipe's precisions, less those this CPU would run as another
            listed = list(next(t for t in recipe.targets if t.name == target).precisions)
            wanted, skipped = skipped_here(target, listed)
            for note in skipped:
                click.echo(note)
    elif not wanted:
        wanted = [recipe.export.precision]
    if target == ONNX and set(wanted) - {"fp32", "fp16"}:
        raise click.UsageError("--target onnx writes fp32 or fp16; int8 comes from calibrate")
    run = run_dir(recipe, out)
    checks = export_target(recipe, run, target, wanted, force=force)
    print_table(f"{target} engines ({run.root})", CHECK_COLUMNS, [c.row() for c in checks])
    for c in checks:
        click.echo(f"engine: {c.path} ({c.precision}, runs in {c.precision_run})")
    if target != ONNX:
        # The run's report covers every engine the run now has, this one included.
        names = [p.name for p in engine_dirs(run)]
        report = validate_and_report(recipe, run, engines=names)
        click.echo(f"report updated: {run.report / 'report.html'} ({len(names)} engine(s); "
                   "dense-edge report shows it)")  # fmt: skip
        # The verdict decides the exit code, as for validate and run: a failing engine must not
        # ship from CI because this command printed a table and exited 0.

        print_summary(report, run.report)
