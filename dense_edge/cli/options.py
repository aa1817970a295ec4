"""Options shared by every stage: --recipe, --out, --set, --force; target settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from dense_edge.errors import RecipeError
from dense_edge.recipe import Recipe, load_recipe, parse_set_option
from dense_edge.recipe.loader import format_validation_error
from dense_edge.recipe.schema import TargetSection
from dense_edge.rundir import RunDir, default_run_dir, lock
from dense_edge.targets.registry import get

_DATA_ROOT = "dense_edge.data_root"


def _keep_data_root(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[_DATA_ROOT] = value


def recipe_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--data-root",
        type=click.Path(path_type=Path),
        expose_value=False,  # read by load(): every command that reads the data takes it
        callback=_keep_data_root,
        help="Image folder or CIFAR-10 batch folder (data.root).",
    )(f)
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


def target_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Per-target settings (the recipe's ``targets`` entry for the chosen target)."""
    f = click.option("--streams", type=int, help="OpenVINO: number of streams.")(f)
    f = click.option("--threads", type=int, help="Threads for the runtime.")(f)
    f = click.option(
        "--hint", type=click.Choice(["latency", "throughput"]), help="Performance hint."
    )(f)
    f = click.option(
        "--device",
        help="OpenVINO: CPU, GPU, NPU, AUTO; ONNX Runtime: cpu, cuda, tensorrt, openvino.",
    )(f)
    return f


def load(recipe_path: Path | None, sets: tuple[str, ...], **flags: Any) -> Recipe:
    """Recipe file, then named flags (``model.arch`` -> value), then ``--set`` items."""
    # what the user typed, checked when the recipe is validated
    overrides: dict[str, object] = {k: v for k, v in flags.items() if v is not None}
    labels: dict[str, str] = {}
    ctx = click.get_current_context(silent=True)
    root = ctx.meta.get(_DATA_ROOT) if ctx is not None else None
    if root is not None:
        overrides["data.root"] = str(root)
        labels["data.root"] = f"--data-root {root}"
    for item in sets:
        key, value = parse_set_option(item)
        overrides[key] = value
        labels[key] = f"--set {item}"
    return load_recipe(recipe_path, overrides, labels)


def with_target(recipe: Recipe, target: str, **settings: Any) -> Recipe:
    """The recipe with ``settings`` applied to (or a new entry made for) ``target``."""
    settings = {k: v for k, v in settings.items() if v is not None}
    targets = [t.model_dump() for t in recipe.targets]
    entry = next((t for t in targets if t["name"] == target), None)
    if entry is None:
        entry = {"name": target, "precisions": list(get(target).default_precisions)}
        targets.append(entry)
    entry.update(settings)
    try:
        sections = [TargetSection.model_validate(t) for t in targets]
    except ValidationError as exc:
        raise RecipeError(f"targets: {format_validation_error(exc, TargetSection)}") from None
    return recipe.model_copy(update={"targets": sections})


def run_dir(recipe: Recipe, out: Path | None) -> RunDir:
    """The run folder, locked for as long as the command runs (a second command on the same
    folder waits briefly, then fails saying which command holds it)."""
    rd = RunDir.at(out or default_run_dir(recipe.name)).create()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.with_resource(lock(rd))
    return rd
