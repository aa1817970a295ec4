"""``dense-edge validate``: every engine against the float model; budgets gate the exit code."""

from __future__ import annotations

from pathlib import Path

import click

from dense_edge.cli.options import load, recipe_options, run_dir
from dense_edge.cli.report import print_summary
from dense_edge.pipeline import validate_and_report


@click.command()
@recipe_options
@click.option(
    "--engine",
    "engines",
    multiple=True,
    help="Engine folder name, e.g. openvino-int8 (repeatable; default: all).",
)
@click.option("--max-top1-drop", type=float, help="Budget: points of top-1 lost against float.")
@click.option("--min-agreement", type=float, help="Budget: fraction of top-1 equal to float's.")
@click.option("--max-p99-ms", type=float, help="Budget: p99 latency at every batch size.")
@click.option("--min-speedup", type=float, help="Budget: float p50 / engine p50.")
@click.option(
    "--batch-size", "batch_sizes", multiple=True, type=int, help="Batch sizes to time (repeatable)."
)
@click.option("--iterations", type=int, help="Timed iterations per batch size.")
@click.option("--split", type=click.Choice(["test", "val"]), help="Evaluation split.")
def validate(
    recipe_path: Path | None,
    out: Path | None,
    sets: tuple[str, ...],
    engines: tuple[str, ...],
    max_top1_drop: float | None,
    min_agreement: float | None,
    max_p99_ms: float | None,
    min_speedup: float | None,
    batch_sizes: tuple[int, ...],
    iterations: int | None,
    split: str | None,
) -> None:
    """Accuracy and latency of every engine against the float model; writes RUN/report/."""
    recipe = load(
        recipe_path,
        sets,
        **{
            "validate.budgets.max_top1_drop": max_top1_drop,
            "validate.budgets.min_agreement": min_agreement,
            "validate.budgets.max_p99_ms": max_p99_ms,
            "validate.budgets.min_speedup": min_speedup,
            "validate.batch_sizes": list(batch_sizes) or None,
            "validate.iterations": iterations,
            "validate.split": split,
        },
    )
    run = run_dir(recipe, out)
    report = validate_and_report(recipe, run, engines=list(engines) or None)
    print_summary(report, run.report)
