"""``dense-edge run RECIPE``: the whole pipeline for every target the recipe lists."""

from __future__ import annotations

from pathlib import Path

import click

from dense_edge.cli.options import force_option, load, run_dir


@click.command()
@click.argument("recipe_path", required=False, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a recipe key.")
@force_option
def run(recipe_path: Path | None, out: Path | None, sets: tuple[str, ...], force: bool) -> None:
    """Train or load, export, calibrate, compile every target, validate and report.

    Without RECIPE, runs the built-in digits quick start. Stages whose output is current are
    reused, so a second run only redoes what changed.
    """
    from dense_edge.cli.report import print_summary
    from dense_edge.pipeline import run_recipe

    recipe = load(recipe_path, sets)
    rd = run_dir(recipe, out)
    result = run_recipe(recipe, rd, force=force)
    for note in result.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    if result.report is not None:
        print_summary(result.report, rd.report)
