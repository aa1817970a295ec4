"""One path from a target to engines or device kits (pipeline.build_engines), used by both
``export --target X`` and ``run``."""

from __future__ import annotations

import ast

from dense_edge.pipeline import build_engines
from dense_edge.targets import registry
from tests.conftest import REPO, digits_recipe


def _callers(function: str) -> set[str]:
    found = set()
    for path in (REPO / "dense_edge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if name == function:
                    found.add(path.relative_to(REPO).as_posix())
    return found


def test_engines_or_kits_are_decided_in_one_place():
    assert _callers("write_device_kit") == {"dense_edge/pipeline.py"}
    assert _callers("build_engines") == {"dense_edge/pipeline.py"}  # export_target and run_recipe
    assert "dense_edge/cli/export.py" not in _callers("compile_stage")


def test_a_target_that_builds_here_gets_engines(run_copy):
    engines, note = build_engines(digits_recipe(), run_copy, "onnxruntime", ["fp32"])
    assert note is None
    assert [(e.target, e.precision, e.path.name) for e in engines] == [
        ("onnxruntime", "fp32", "onnxruntime-fp32")
    ]
    assert (engines[0].path / "model.onnx").exists()


def test_a_kit_target_that_cannot_build_here_gets_kits_and_a_note(run_copy):
    for target in (t for t in registry.all_targets() if t.writes_kits):
        reason = target.cannot_build_here()
        if reason is None:  # it builds here: covered by the target's own tests
            continue
        precision = "fp16" if "fp16" in target.precisions else target.precisions[0]
        engines, note = build_engines(digits_recipe(), run_copy, target.name, [precision])
        kit = run_copy.root / "kits" / f"{target.name}-{precision}"
        assert engines == []
        assert note is not None and reason in note and str(kit) in note
        assert target.kit_steps in note and target.install_hint in note
        assert target.read_kit(kit, verify=True)["kind"] == target.kit_kind
        assert not (run_copy.root / "engines" / f"{target.name}-{precision}").exists()
