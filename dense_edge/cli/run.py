"""``dense-edge run --recipe RECIPE`` (or ``run RECIPE``): the whole pipeline, every target."""

from __future__ import annotations

from pathlib import Path

import click

from dense_edge.cli.options import force_option, load, recipe_options, run_dir
from dense_edge.cli.report import print_summary
from dense_edge.pipeline import run_recipe


@click.command()
@click.argument("recipe_arg", required=False, metavar="[RECIPE]", type=click.Path(path_type=Path))
@recipe_options
@force_option
def run(
    recipe_arg: Path | None,
    recipe_path: Path | None,
    out: Path | None,
    sets: tuple[str, ...],
    force: bool,
) -> None:
    """Train or load, export, calibrate, compile every target, validate and report.

    The recipe comes with --recipe FILE, as for every other command (RECIPE as an argument works
    too). Without one, runs the built-in digits quick start. Stages whose output is current are
    reused, so a second run only redoes what changed. Exits 1 unless the verdict is PASSED.
    """
    if recipe_arg is not None and recipe_path is not None and recipe_arg != recipe_path:
        raise click.UsageError("give the recipe once: RECIPE or --recipe FILE")
    recipe_path = recipe_path or recipe_arg

    recipe = load(recipe_path, sets)
    rd = run_dir(recipe, out)
    result = run_recipe(recipe, rd, force=force)
    for note in result.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    if result.report is not None:
        print_summary(result.report, rd.report)
