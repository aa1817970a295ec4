"""The catalogue declares every name a user can type, once; everything else reads it."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from dense_edge import __version__, catalog
from dense_edge._version import __version__ as leaf_version
from dense_edge.calibrate import profiles
from dense_edge.manifest import library_versions
from dense_edge.recipe import Recipe
from dense_edge.recipe.schema import CalibrationSection, TargetSection
from dense_edge.targets import registry
from dense_edge.targets.base import Compiled, Runner, Target, TargetStatus
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


def test_one_version_and_manifests_stamp_every_declared_library() -> None:
    assert __version__ == leaf_version
    versions = library_versions()
    assert versions["dense_edge"] == __version__
    assert set(catalog.libraries()) <= set(versions)


_TFLITE = catalog.TargetDeclaration(
    name="tflite",
    title="TensorFlow Lite",
    precisions=("fp32", "int8"),
    default_precisions=("fp32",),
    in_default_recipe=False,
    library="tflite-runtime",
    pip_extra="tflite",
    profile=catalog.PROFILE_ONNXRUNTIME,
    device_kinds=("cpu",),
    color="#ff7f0e",
)


def test_adding_a_target_as_architecture_md_walks_through_it() -> None:
    """Step 1 and 2 of ARCHITECTURE.md's walkthrough: a declaration, and a class that names it
    carries its data; step 3: a declaration the registry does not list is refused by name."""

    class TfliteTarget(Target, declared=_TFLITE):
        thread_safe = True
        int8_source = "onnx"
        fp16_source = "fp32-onnx"

        def status(self) -> TargetStatus:
            return TargetStatus(False, None, "not installed")

        def compile(self, source: Path, out: Path, **kwargs: Any) -> Compiled:
            raise NotImplementedError

        def load_runner(self, folder: Path, manifest: dict[str, Any]) -> Runner:
            raise NotImplementedError

    target = TfliteTarget()
    assert (target.name, target.title, target.profile) == (
        "tflite",
        "TensorFlow Lite",
        "onnxruntime",
    )
    assert target.install_hint == "pip install 'dense-edge[tflite]'"
    assert target.device_kind == "cpu" and not target.writes_kits
    with pytest.raises(LookupError, match=r"'tflite' is declared in dense_edge\.catalog but not"):
        registry._implementation(_TFLITE)


def test_a_target_class_without_a_declaration_is_refused() -> None:
    with pytest.raises(TypeError, match="declared"):

        class Undeclared(Target):  # type: ignore[call-arg]
            pass
