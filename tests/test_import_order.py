"""Data flows one way: no module imports a later stage.

    model -> export -> calibrate -> compile (per target) -> validate -> report -> pipeline/cli
                                           \\-> runtime (what device apps import)

Every ``import`` of every module under ``dense_edge/`` is read from its source (top-level,
function-local and ``TYPE_CHECKING`` ones alike: a hidden import is still a dependency) and
checked against the order below, defined here once. ARCHITECTURE.md describes the same order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dense_edge"

# Rank of each module (longest dotted prefix wins). A module may import its own rank or lower.
FOUNDATION = 0
ORDER: dict[str, int] = {
    # foundation: records, file handling, progress, the comparator; every stage may import them
    "dense_edge": FOUNDATION,
    "dense_edge.errors": FOUNDATION,
    "dense_edge.preprocess": FOUNDATION,
    "dense_edge.records": FOUNDATION,
    "dense_edge.fileio": FOUNDATION,
    "dense_edge.manifest": FOUNDATION,
    "dense_edge.stages": FOUNDATION,
    "dense_edge.rundir": FOUNDATION,
    "dense_edge.progress": FOUNDATION,
    "dense_edge.compare": FOUNDATION,
    "dense_edge.accuracy": FOUNDATION,
    "dense_edge.environment": FOUNDATION,
    "dense_edge.targets.bundle": FOUNDATION,  # the engine-manifest record (stdlib only)
    # leaves: the model definitions and the recipe, then the data (which reads model configs)
    "dense_edge.models": 1,
    "dense_edge.recipe": 1,
    "dense_edge.data": 2,
    # the stages, in the order data flows
    "dense_edge.train": 3,
    "dense_edge.export": 4,
    "dense_edge.calibrate": 5,
    "dense_edge.targets": 6,  # backends: compile an ONNX model, load a runner
    "dense_edge.compile": 7,  # the stage that drives a backend
    "dense_edge.validate": 8,
    "dense_edge.report": 9,
    # orchestration
    "dense_edge.pipeline": 10,
    "dense_edge.api": 10,  # the public Python API: orchestration, like the pipeline
    "dense_edge.cli": 10,
    "dense_edge.__main__": 10,
}
# runtime/ is what device apps import: the foundation and the targets' runners, nothing else.
RUNTIME = "dense_edge.runtime"
# and export's reader of the manifest it embeds in an ONNX file (export is upstream of compile, so
# this follows the flow; imported only when a device app loads a plain .onnx).
RUNTIME_MAY_IMPORT = ("dense_edge.targets", "dense_edge.export.metadata")
# preprocessing is a leaf every stage and the device runtime import: errors only.
LEAF_ONLY = {"dense_edge.preprocess": {"dense_edge.errors"}}

# The recipe and the manifest are configuration and records, not stages: issue 14 asks that the
# recipe's target/profile literals and the manifest's library list come from the one registry,
# so they read those declarations (inside functions: importing them loads no target).
KNOWN: dict[tuple[str, str], str] = {
    # Declarations read downwards, on purpose: the recipe schema's target and profile literals
    # and the manifest's library list are derived from the one registry (issue 14: the CLI
    # choices, recipe literals and report enums come from it). They import it inside functions,
    # so importing the recipe or the manifest never loads a target, and no cycle forms.
    ("dense_edge.manifest", "dense_edge.targets.registry"): "library list from the registry",
    ("dense_edge.recipe.schema", "dense_edge.targets.registry"): "target names from the registry",
    ("dense_edge.recipe.schema", "dense_edge.calibrate.profiles"): "profile names, declared once",
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every ``dense_edge`` module ``path`` imports, with its line: ``from a import b`` counts as
    ``a.b`` when ``b`` is a module (so ``from dense_edge.validate import budgets`` is
    ``dense_edge.validate.budgets``), else as ``a``."""
    here = _module(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("dense_edge")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("dense_edge"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if _exists(sub) else base, node.lineno))
    return out


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _rank(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in ORDER:
            return ORDER[key]
    raise AssertionError(f"{module} has no place in the stage order: add it to ORDER")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None when it may."""
    if imported == importer or _within(imported, importer) or _within(importer, imported):
        return None  # a package and its own modules
    if importer in LEAF_ONLY:
        allowed = LEAF_ONLY[importer]
        return None if imported in allowed else f"a leaf may import only {sorted(allowed)}"
    if _within(importer, RUNTIME):
        if _within(imported, RUNTIME) or _rank(imported) == FOUNDATION:
            return None
        if any(_within(imported, m) for m in RUNTIME_MAY_IMPORT):
            return None
        return "runtime/ may import the foundation and targets/ only"
    if _within(imported, RUNTIME):
        return None if _rank(importer) >= ORDER["dense_edge.targets"] else "runtime/ is for apps"
    if _rank(imported) > _rank(importer):
        return f"stage {_rank(importer)} imports the later stage {_rank(imported)}"
    return None


def _all_violations() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module(path)
        for imported, line in _imports(path):
            why = _violation(importer, imported)
            if why:
                found.append((importer, imported, f"{path.relative_to(PACKAGE.parent)}:{line}"))
                found[-1] = (*found[-1][:2], f"{found[-1][2]}: {why}")
    return found


def _known(importer: str, imported: str) -> bool:
    return any(importer == a and (imported == b or _within(imported, b)) for a, b in KNOWN)


def test_no_module_imports_a_later_stage() -> None:
    bad = [v for v in _all_violations() if not _known(v[0], v[1])]
    assert not bad, "imports against the stage order:\n" + "\n".join(
        f"  {a} -> {b} ({where})" for a, b, where in bad
    )


def test_every_known_exception_still_exists() -> None:
    """A known exception that no longer happens is removed from KNOWN, so it cannot hide a new
    import later."""
    found = {(a, b) for a, b, _ in _all_violations()}
    stale = [k for k in KNOWN if not any(a == k[0] and _within(b, k[1]) for a, b in found)]
    assert not stale, f"remove from KNOWN (fixed): {stale}"


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("dense_edge.validate.stage", "dense_edge.report.write", False),
        ("dense_edge.report.html", "dense_edge.validate.budgets", True),
        ("dense_edge.models.loading", "dense_edge.data.preprocess", False),
        ("dense_edge.models.loading", "dense_edge.preprocess", True),
        ("dense_edge.targets.tensorrt.export", "dense_edge.compile.stage", False),
        ("dense_edge.preprocess", "dense_edge.fileio", False),
        ("dense_edge.runtime.model", "dense_edge.targets.registry", True),
        ("dense_edge.runtime.model", "dense_edge.export.metadata", True),
        ("dense_edge.runtime.model", "dense_edge.export.stage", False),
        ("dense_edge.pipeline", "dense_edge.report.write", True),
    ],
)
def test_the_order_check_itself(importer: str, imported: str, allowed: bool) -> None:
    """The checker refuses what the issue names as wrong and lets the normal flow through."""
    assert (_violation(importer, imported) is None) is allowed


def test_function_local_imports_are_read_too() -> None:
    """An import inside a function is a dependency like any other."""
    src = PACKAGE / "pipeline.py"
    # run_recipe() imports the training stage inside the function (it imports torch)
    assert "    from dense_edge.train.stage import train_stage" in src.read_text()
    assert "dense_edge.train.stage" in {m for m, _ in _imports(src)}
