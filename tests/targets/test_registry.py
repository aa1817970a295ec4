"""One registry: every list of targets derives from it, and no module outside targets/ spells
target names (issue 14)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import click

from dense_edge.recipe import load_recipe
from dense_edge.targets import registry
from tests.conftest import REPO

PACKAGE = REPO / "dense_edge"

# The modules outside dense_edge/targets/ allowed to spell a target name as a string (at most 3).
ALLOWED = {
    # the catalogue declares every name once (targets, and the calibration profiles named after
    # the runtimes they serve); everything else reads it
    "dense_edge/catalog.py",
}
# Profile-name branches in calibrate that issue 14's Profile object (branch i14b) removes; they
# are calibration profile names, not target lookups. Drop each entry as it goes.
PENDING_PROFILE_OBJECT: set[str] = set()  # all gone with the Profile object


def _modules_spelling_target_names() -> dict[str, list[int]]:
    names = set(registry.names())
    found: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("dense_edge/targets/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        lines = sorted(
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value in names
        )  # fmt: skip
        if lines:
            found[rel] = lines
    return found


def test_target_names_are_spelled_in_at_most_three_modules_outside_targets():
    assert len(ALLOWED) <= 3
    found = _modules_spelling_target_names()
    unexpected = {m: lines for m, lines in found.items()
                  if m not in ALLOWED | PENDING_PROFILE_OBJECT}  # fmt: skip
    assert unexpected == {}, (
        "these modules spell a target name: ask the Target (dense_edge.targets.registry) instead"
    )
    assert len(set(found) - PENDING_PROFILE_OBJECT) <= 3


def test_the_counter_sees_a_spelled_name(tmp_path: Path):
    """The AST count is not vacuous: a module that branches on a name is found."""
    assert "dense_edge/catalog.py" in _modules_spelling_target_names()
    names = set(registry.names())
    tree = ast.parse('if target == "tensorrt":\n    pass\n')
    assert any(isinstance(n, ast.Constant) and n.value in names for n in ast.walk(tree))


def test_targets_import_no_stage():
    """Backends sit below the stages (export, calibrate and validate run models through their
    runners): nothing in targets/ imports the data sources, a stage, the device kits, the
    orchestration or the CLI."""
    stages = ("dense_edge.data", "dense_edge.kits", "dense_edge.train", "dense_edge.export",
              "dense_edge.calibrate",
              "dense_edge.compile", "dense_edge.validate", "dense_edge.report",
              "dense_edge.pipeline", "dense_edge.api", "dense_edge.cli")  # fmt: skip
    offenders = []
    for path in sorted((PACKAGE / "targets").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            offenders += [f"{path.relative_to(REPO)}: {m}" for m in mods if m.startswith(stages)]
    assert offenders == []


def test_registry_imports_no_runtime():
    code = (
        "import sys, dense_edge, dense_edge.targets.registry, dense_edge.cli, "
        "dense_edge.recipe; dense_edge.targets.registry.all_targets(); "
        "print(sorted({'openvino', 'tensorrt', 'onnxruntime'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _choice(command: click.Command, option: str) -> list[str]:
    param = next(p for p in command.params if p.name == option)
    assert isinstance(param.type, click.Choice)
    return list(param.type.choices)


def test_cli_choices_derive_from_the_registry():
    from dense_edge.cli.compile import compile_cmd
    from dense_edge.cli.export import export
    from dense_edge.cli.kit import validate

    assert _choice(compile_cmd, "target") == list(registry.names())
    assert _choice(export, "target") == [registry.ONNX, *registry.names()]
    kit_targets = [t for t in registry.all_targets() if t.writes_kits]
    runners = _choice(validate, "runner")
    assert runners[: len(kit_targets)] == [t.name for t in kit_targets]
    assert set(runners) <= set(registry.names())


def test_recipe_schema_derives_from_the_registry():
    recipe = load_recipe(None, {})
    default = [t for t in registry.all_targets() if t.in_default_recipe]
    assert [t.name for t in recipe.targets] == [t.name for t in default]
    assert [list(t.precisions) for t in recipe.targets] == [
        list(t.default_precisions) for t in default
    ]
    for name in (registry.ONNX, *registry.names()):
        assert load_recipe(None, {"targets": [{"name": name}]}).targets[0].name == name
    import pytest

    from dense_edge.errors import RecipeError

    with pytest.raises(RecipeError, match=r"targets\[0\]\.name: expected one of 'onnx'"):
        load_recipe(None, {"targets": [{"name": "tflite"}]})


def test_report_schema_target_enum_equals_the_registry():
    from dense_edge.report.schema import json_schema

    enums = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            target = node.get("properties", {}).get("target")
            if isinstance(target, dict) and "enum" in target:
                enums.append(target["enum"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json_schema())
    assert enums, "the report schema lost its target enum"
    for enum in enums:  # the float reference (pytorch) and every registered target
        assert sorted(enum) == sorted(["pytorch", *registry.names()])
    # the file itself enumerates no target, so it cannot fall behind the registry
    raw = json.loads((PACKAGE / "report" / "report.schema.json").read_text(encoding="utf-8"))
    enums.clear()
    walk(raw)
    assert enums == []
