"""The catalogue declares every name a user can type, once; everything else reads it."""

from __future__ import annotations

import ast
from typing import get_args

import pytest
from pydantic import ValidationError

from dense_edge import __version__, catalog
from dense_edge._version import __version__ as leaf_version
from dense_edge.calibrate import methods, profiles
from dense_edge.manifest import library_versions
from dense_edge.recipe import Recipe
from dense_edge.recipe.schema import CalibrationSection, TargetSection
from dense_edge.targets import registry
from tests.conftest import REPO


def test_the_catalogue_is_a_leaf() -> None:
    tree = ast.parse((REPO / "dense_edge" / "catalog.py").read_text(encoding="utf-8"))
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    assert not [m for m in imported if m and m.startswith("dense_edge")], imported


def test_targets_take_their_declared_data_from_the_catalogue() -> None:
    assert registry.names() == catalog.target_names()
    for target in registry.all_targets():
        d = target.declared
        assert d is catalog.declaration(target.name)
        keys = (
            "name",
            "title",
            "precisions",
            "default_precisions",
            "in_default_recipe",
            "library",
            "pip_extra",
            "profile",
            "device_kinds",
            "color",
            "kit_steps",
        )
        assert {k: getattr(target, k) for k in keys} == {k: getattr(d, k) for k in keys}
        assert set(target.precisions) <= set(catalog.PRECISIONS)
        assert target.profile in catalog.PROFILES


def test_the_recipe_reads_its_choices_from_the_catalogue() -> None:
    recipe = Recipe()
    assert [t.name for t in recipe.targets] == [
        t.name for t in catalog.TARGETS if t.in_default_recipe
    ]
    assert recipe.calibration.profiles == sorted(catalog.PROFILES)
    for name in (catalog.ONNX, *catalog.target_names()):
        TargetSection.model_validate({"name": name})
    with pytest.raises(ValidationError, match="expected one of 'onnx', 'onnxruntime'"):
        TargetSection.model_validate({"name": catalog.PYTORCH})
    for method in catalog.Method:
        CalibrationSection.model_validate({"method": method.value})
    for parts in catalog.FLOAT_PARTS:
        CalibrationSection.model_validate({"float_parts": parts})


def test_literal_types_match_the_declared_tuples() -> None:
    assert get_args(catalog.MethodName) == catalog.METHODS
    assert tuple(m.value for m in catalog.Method) == catalog.METHODS
    assert get_args(catalog.Precision) == catalog.PRECISIONS
    assert get_args(catalog.FloatParts) == catalog.FLOAT_PARTS
    assert get_args(catalog.QdqProfileName) + get_args(catalog.NncfProfileName) == tuple(
        sorted(catalog.PROFILES, key=lambda p: p == catalog.PROFILE_OPENVINO)
    )


def test_calibrate_implements_exactly_the_declared_names() -> None:
    assert profiles.PROFILES == catalog.PROFILES
    assert {profiles.get(name).name for name in catalog.PROFILES} == set(catalog.PROFILES)
    assert methods.METHODS == catalog.METHODS


def test_one_version_and_manifests_stamp_every_declared_library() -> None:
    assert __version__ == leaf_version
    versions = library_versions()
    assert versions["dense_edge"] == __version__
    assert set(catalog.libraries()) <= set(versions)
