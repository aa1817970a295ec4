"""Recipes: the shipped ones load, the default equals digits.yaml, errors name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from dense_edge.errors import RecipeError
from dense_edge.recipe import load_recipe, parse_set_option
from tests.conftest import REPO, write_recipe


def test_builtin_default_is_recipes_digits_yaml():
    shipped = load_recipe(REPO / "recipes" / "digits.yaml").dump()
    default = load_recipe().dump()
    # The one difference: the shipped recipe reads calibration/digits, which holds the very
    # images that `source: data` draws (tests/calibrate checks that).
    assert shipped["calibration"].pop("source").endswith("calibration/digits/manifest.json")
    assert default["calibration"].pop("source") == "data"
    assert shipped == default


@pytest.mark.parametrize("name", ["digits", "densenet-bc-100-cifar10", "densenet121-imagenet"])
def test_shipped_recipes_validate(name):
    recipe = load_recipe(REPO / "recipes" / f"{name}.yaml")
    assert recipe.name == name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("calibration:\n  samples: many\n", "calibration.samples: expected int, got 'many'"),
        (
            "calibration:\n  sample: 3\n",
            "calibration.sample: unknown key (did you mean 'samples'?)",
        ),
        ("train:\n  epochs: 2.5\n", "train.epochs: expected int, got 2.5"),
        ("targets:\n  - name: tflite\n", "targets[0].name: expected one of"),
        ("train: [1, 2]\n", "train: expected mapping"),
        ("model:\n  weights: missing.pth\n", "model.weights: file not found"),
        ("validate:\n  budgets:\n    max_top1_drop: -1\n", "validate.budgets.max_top1_drop"),
        (
            "targets:\n  - name: tensorrt\n    min_batch: 4\n    max_batch: 2\n",
            "targets[0].max_batch",
        ),
        ("nonsense: 1\n", "nonsense: unknown key"),
        ("train:\n  epochs: [\n", "line"),
        ("- a\n- b\n", "a recipe is a mapping"),
    ],
)
def test_errors_are_one_line_and_name_the_key(tmp_path, text, message):
    path = write_recipe(tmp_path / "r.yaml", text)
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    text = str(exc.value)
    assert message in text
    assert "\n" not in text
    assert str(path) in text


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_paths_in_a_recipe_are_relative_to_the_recipe(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "w.pth").write_bytes(b"")
    path = write_recipe(tmp_path / "sub" / "r.yaml", "model:\n  weights: ../w.pth\n")
    assert Path(load_recipe(path).model.weights) == (tmp_path / "w.pth").resolve()


def test_overrides_beat_the_recipe_and_keep_types(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", "train:\n  epochs: 5\n")
    key, value = parse_set_option("calibration.samples=64")
    recipe = load_recipe(path, {"train.epochs": 2, key: value})
    assert recipe.train.epochs == 2 and recipe.calibration.samples == 64
    with pytest.raises(RecipeError, match=r"calibration.samples: expected int, got 'lots'"):
        load_recipe(path, dict([parse_set_option("calibration.samples=lots")]))
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        parse_set_option("calibration.samples")
