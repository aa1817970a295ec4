"""Options shared by every stage: --recipe, --out, --set, --force."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dense_edge.recipe import Recipe, load_recipe, parse_set_option
from dense_edge.rundir import RunDir, default_run_dir


def recipe_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override any recipe key, e.g. --set calibration.samples=256 (repeatable).",
    )(f)
    f = click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        help="Run directory (default: runs/<recipe name>).",
    )(f)
    f = click.option(
        "--recipe",
        "recipe_path",
        type=click.Path(path_type=Path),
        help="Recipe YAML (default: the built-in digits quick start).",
    )(f)
    return f


def force_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--force", is_flag=True, help="Redo the stage even if its output is current."
    )(f)


def load(recipe_path: Path | None, sets: tuple[str, ...], **flags: Any) -> Recipe:
    """Recipe file, then named flags (``model.arch`` -> value), then ``--set`` items."""
    overrides: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    for item in sets:
        key, value = parse_set_option(item)
        overrides[key] = value
    return load_recipe(recipe_path, overrides)


def run_dir(recipe: Recipe, out: Path | None) -> RunDir:
    return RunDir.at(out or default_run_dir(recipe.name)).create()
