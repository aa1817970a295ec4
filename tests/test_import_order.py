"""Data flows one way: no module imports a later stage, and no import closes a circle.

    catalog -> foundation -> models, recipe -> data -> targets -> train -> export
        -> calibrate -> compile -> validate -> report -> pipeline, api, cli
                              targets -> runtime (what device apps import)

The targets (each runtime's runner and engine builder) sit below the stages, as Polygraphy's
backends do: export, calibrate and validate run a model through a runner, never a session built
by hand (calibration's statistics collection and layer debugger keep theirs: they read
intermediate tensors, a runner returns logits); the compile stage drives a target's builder.

Every ``import`` of every module under ``dense_edge/`` is read from its source (top-level,
function-local and ``TYPE_CHECKING`` ones alike: a hidden import is still a dependency) and
checked against the ranks below, defined here once. ARCHITECTURE.md draws the same table.

The rules, with nothing exempt and no whitelist:

- every module has an explicit rank: a top-level module is listed by its own name, a module in
  a stage folder by its folder (``dense_edge.calibrate.*``); a module neither names is an error;
- a module imports its own rank or lower; the foundation is ordered too (errors below file I/O
  below records below manifests below the stage contract below the run folder);
- the package root (``dense_edge/__init__.py``, the public API) ranks with the orchestration,
  so importing it from anywhere below is an import against the ranks like any other;
- no cycle between modules, counted over every import;
- heavy optional libraries are imported inside functions only.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dense_edge"
ROOT = "dense_edge"

# Rank of each module. A key ending in ".*" ranks every module in that folder (a stage); any
# other key ranks exactly that module. A module may import its own rank or lower.
ORDER: dict[str, int] = {
    # leaves: standard library only
    "dense_edge._version": 0,  # __version__
    "dense_edge.errors": 0,  # UserError and its kinds
    "dense_edge.catalog": 0,  # every name a user can type: targets, precisions, methods, profiles
    "dense_edge.progress": 0,  # messages and progress bars
    "dense_edge.tempdata": 0,  # our marked temporary folders; sweeps what a killed command left
    # the foundation, in order: every stage may import it
    "dense_edge.fileio": 1,  # atomic writes, checksums, the run-name rule
    "dense_edge.ovcore": 1,  # the process's one OpenVINO Core (errors only)
    "dense_edge.preprocess": 1,  # image -> tensor (errors only; device apps import it)
    "dense_edge.records": 0,  # the records stages write: file names and their TypedDicts
    "dense_edge.manifest": 3,  # model manifests, library versions
    "dense_edge.onnxfile": 4,  # a user's ONNX file: sizes checked, its embedded manifest read
    "dense_edge.accuracy": 3,  # top-1 and agreement over records
    "dense_edge.compare": 3,  # the comparator of two outputs (over accuracy)
    "dense_edge.environment": 4,  # host, CPU and library versions
    "dense_edge.bundle": 4,  # the engine bundle's record: seal, file table, reader
    "dense_edge.stages": 5,  # the stage contract (atomic folders, records, fingerprints)
    "dense_edge.rundir": 6,  # the run folder and its lock
    # configuration and model definitions
    "dense_edge.recipe.*": 10,
    "dense_edge.models.*": 10,
    "dense_edge.data.*": 11,  # reads model configs and the recipe
    # the backends, below every stage: load a runner, compile an ONNX model into an engine
    "dense_edge.targets.*": 12,
    # the stages, in the order data flows
    "dense_edge.train.*": 13,
    "dense_edge.export.*": 14,  # checks its ONNX through a runner
    "dense_edge.calibrate.*": 15,  # runs its models through runners
    "dense_edge.compile.*": 16,  # the stage that drives a backend's builder
    "dense_edge.validate.*": 17,
    "dense_edge.report.*": 18,
    # device build kits: written from the compile stage's source model, run on the device with
    # validate's metrics, their device report checked with report's shape checker and read by
    # report merge (the targets' own kit steps stay in targets/<name>/)
    "dense_edge.kits.*": 18,
    # orchestration
    "dense_edge.pipeline": 19,
    "dense_edge.api": 19,  # the public Python API
    "dense_edge": 19,  # the package root re-exports the API
    "dense_edge.cli.*": 20,
    "dense_edge.__main__": 20,
    # what device apps import: see RUNTIME below
    "dense_edge.runtime.*": 12,
}
FOUNDATION_TOP = ORDER["dense_edge.rundir"]  # ranks up to here are the foundation
# runtime/ is what device apps import: the foundation (the manifest embedded in an ONNX file is
# read there too) and the targets' runners.
RUNTIME = "dense_edge.runtime"
RUNTIME_MAY_IMPORT = ("dense_edge.targets",)
# runtime/ may be imported by what ranks at or above the compile stage (the CLI's `bundle`).
RUNTIME_USERS_FROM = ORDER["dense_edge.compile.*"]
# Leaves that import (almost) nothing, listed with all they may import.
LEAF_ONLY: dict[str, frozenset[str]] = {
    "dense_edge._version": frozenset(),
    "dense_edge.errors": frozenset(),
    "dense_edge.catalog": frozenset(),
    "dense_edge.records": frozenset(),
    "dense_edge.preprocess": frozenset({"dense_edge.errors"}),
}
# Heavy optional libraries: imported inside functions, so the light modules never load them.
HEAVY = ("torch", "torchvision", "onnx", "onnxruntime", "openvino", "nncf", "tensorrt",
         "onnxslim", "matplotlib")  # fmt: skip
# The light modules: what `import dense_edge`, the CLI's start, a recipe check and a device app's
# manifest reading load. None of them may reach a heavy library through top-level imports (a
# module that needs one at its top, like models/densenet.py, is imported inside functions).
LIGHT = ("dense_edge", "dense_edge.api", "dense_edge.recipe.*", "dense_edge.data",
         "dense_edge.models", "dense_edge.models.registry", "dense_edge.targets",
         "dense_edge.targets.base", "dense_edge.targets.registry", "dense_edge.runtime.*",
         *(m for m, r in ORDER.items() if r <= ORDER["dense_edge.rundir"]))  # fmt: skip


# -- reading a package -----------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    importer: str  # the module holding the import statement
    imported: str  # the dense_edge module it names (or an outside top-level package)
    where: str  # file:line
    local: bool  # inside a function (TYPE_CHECKING blocks are top-level: they count too)


@dataclass(frozen=True)
class Package:
    """A package's modules and their sources: the real one, or synthetic ones in tests."""

    sources: Mapping[str, str]  # module name -> source text
    paths: Mapping[str, str]  # module name -> path shown in messages

    @classmethod
    def read(cls, folder: Path = PACKAGE) -> Package:
        sources, paths = {}, {}
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            sources[name] = path.read_text(encoding="utf-8")
            paths[name] = str(path.relative_to(folder.parent))
        return cls(sources, paths)

    def is_package(self, module: str) -> bool:
        return self.paths.get(module, "").endswith("__init__.py")

    def imports(self) -> Iterator[Import]:
        for module, source in self.sources.items():
            yield from self._imports_of(module, source)

    def _imports_of(self, here: str, source: str) -> Iterator[Import]:
        """Every import in ``source``: ``from a import b`` counts as ``a.b`` when ``b`` is a
        module (``from dense_edge.validate import budgets`` is ``dense_edge.validate.budgets``),
        else as ``a``; ``from dense_edge import __version__`` is an import of the root."""
        package = here if self.is_package(here) else here.rpartition(".")[0]
        for base, level, names, line, local in _statements(source):
            if level:
                anchor = package.split(".")[: len(package.split(".")) - (level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if names is None:  # `import a.b`
                targets = [base]
            elif _within(base, ROOT):
                targets = [f"{base}.{n}" if f"{base}.{n}" in self.sources else base for n in names]
            else:
                targets = [base]
            where = f"{self.paths.get(here, here)}:{line}"
            for name in targets:
                imported = self._module_of(name) if _within(name, ROOT) else name
                yield Import(here, imported, where, local)

    def _module_of(self, name: str) -> str:
        """The module ``name`` is, or the nearest package holding it (``a.b.func`` is ``a.b``)."""
        parts = name.split(".")
        while len(parts) > 1 and ".".join(parts) not in self.sources:
            parts.pop()
        return ".".join(parts)


@functools.cache
def _statements(source: str) -> tuple[tuple[str, int, tuple[str, ...] | None, int, bool], ...]:
    """Each import statement of ``source`` as (module, level, names or None for a plain
    ``import``, line, inside a function)."""
    tree = ast.parse(source)
    local = {
        id(inner)
        for fn in ast.walk(tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for inner in ast.walk(fn)
    }
    out: list[tuple[str, int, tuple[str, ...] | None, int, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, 0, None, node.lineno, id(node) in local) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            out.append((node.module or "", node.level, names, node.lineno, id(node) in local))
    return tuple(out)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# -- the rules -------------------------------------------------------------------------------


def rank(module: str, order: Mapping[str, int] = ORDER) -> int:
    """``module``'s explicit rank: its own entry, or its stage folder's ``.*`` entry."""
    if module in order:
        return order[module]
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        folder = ".".join(parts[:n]) + ".*"
        if folder in order:
            return order[folder]
    raise LookupError(f"{module} has no rank: add it (or its folder) to ORDER")


def violation(importer: str, imported: str, order: Mapping[str, int] = ORDER) -> str | None:
    """Why ``importer`` may not import ``imported`` (both ranked), or None when it may."""
    if importer == imported or (_within(importer, imported) and imported != ROOT):
        return None  # a module of a package importing its own package
    if _within(imported, importer) and importer != ROOT:
        return None  # a package importing its own modules
    if importer in LEAF_ONLY:
        allowed = LEAF_ONLY[importer]
        return None if imported in allowed else f"a leaf may import only {sorted(allowed)}"
    if _within(importer, RUNTIME):
        if _within(imported, RUNTIME) or rank(imported, order) <= FOUNDATION_TOP:
            return None
        if any(_within(imported, m) for m in RUNTIME_MAY_IMPORT):
            return None
        return "runtime/ may import the foundation and targets/ only"
    if _within(imported, RUNTIME):
        if rank(importer, order) >= RUNTIME_USERS_FROM:
            return None
        return "runtime/ is for apps and the commands from the compile stage up"
    if rank(imported, order) > rank(importer, order):
        return f"rank {rank(importer, order)} imports the later rank {rank(imported, order)}"
    return None


def unranked(package: Package, order: Mapping[str, int] = ORDER) -> list[str]:
    out = []
    for module in package.sources:
        try:
            rank(module, order)
        except LookupError as exc:
            out.append(str(exc))
    return out


def violations(package: Package, order: Mapping[str, int] = ORDER) -> list[str]:
    found = []
    for imp in package.imports():
        if not _within(imp.imported, ROOT):
            continue
        try:
            why = violation(imp.importer, imp.imported, order)
        except LookupError as exc:
            why = str(exc)
        if why:
            found.append(f"{imp.importer} -> {imp.imported} ({imp.where}): {why}")
    return list(dict.fromkeys(found))  # `from a import b, c` is one line


def cycles(package: Package) -> list[list[str]]:
    """The import circles between modules (strongly connected components of two or more)."""
    graph: dict[str, set[str]] = {m: set() for m in package.sources}
    for imp in package.imports():
        if imp.imported in graph and imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def reaching(package: Package, heavy: Iterable[str] = HEAVY) -> dict[str, str]:
    """The modules that load a heavy library through top-level imports, each with the chain of
    imports that reaches it."""
    heavy = tuple(heavy)
    top = [i for i in package.imports() if not i.local and not _type_checking_only(package, i)]
    reaches: dict[str, str] = {}  # module -> the import by which it reaches a heavy library
    for i in top:
        if any(_within(i.imported, h) for h in heavy):
            reaches.setdefault(i.importer, f"{i.imported} ({i.where})")
    grew = True
    while grew:
        grew = False
        for i in top:
            if i.imported in reaches and i.importer not in reaches and i.importer != i.imported:
                reaches[i.importer] = f"{i.imported} ({i.where}) -> {reaches[i.imported]}"
                grew = True
    return reaches


def heavy_at_top(package: Package, heavy: Iterable[str] = HEAVY) -> list[str]:
    """The light modules that load a heavy library through top-level imports, each with the
    chain of imports that reaches it."""
    reaches = reaching(package, heavy)
    light = [m for m in package.sources if _is_light(m)]
    return [f"{m} -> {reaches[m]}" for m in light if m in reaches]


# Importing the package root must stay cheap: test_importing_the_package_root_is_cheap lists the
# only modules it loads, so the public API imports every other module of ours on use.
CHEAP_ROOT = ("dense_edge", "dense_edge.api")
CHEAP_ROOT_LOADS = (
    "dense_edge._version",
    "dense_edge.api",
    "dense_edge.catalog",
    "dense_edge.errors",
)


def needless_local_imports(package: Package) -> list[str]:
    """Imports of our own modules inside a function that no heavy library justifies.

    A function-local import of one of our modules is allowed when that module loads a heavy
    library through its top-level imports (importing it at the top would load torch, onnx or a
    runtime for every importer); the reason is that chain, which ``reaching`` names. Any other
    local import only hides a dependency: it belongs at the top of the module. The package
    root's API is the other reason: importing ``dense_edge`` loads only ``CHEAP_ROOT_LOADS``."""
    reaches = reaching(package)
    out = []
    for i in package.imports():
        if not i.local or not _within(i.imported, ROOT) or i.imported == i.importer:
            continue
        if i.importer in CHEAP_ROOT and i.imported not in CHEAP_ROOT_LOADS:
            continue
        if _within(i.importer, i.imported) or i.imported in reaches:
            continue
        out.append(f"{i.importer} -> {i.imported} ({i.where}): import it at the top")
    return list(dict.fromkeys(out))


def _is_light(module: str) -> bool:
    return any(module == key or (key.endswith(".*") and _within(module, key[:-2])) for key in LIGHT)


def _type_checking_only(package: Package, imp: Import) -> bool:
    """Whether ``imp`` sits in an ``if TYPE_CHECKING:`` block (it then loads nothing)."""
    line = int(imp.where.rpartition(":")[2])
    return any(a <= line <= b for a, b in _type_checking_blocks(package.sources[imp.importer]))


@functools.cache
def _type_checking_blocks(source: str) -> tuple[tuple[int, int], ...]:
    return tuple(
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


# -- the package obeys them ------------------------------------------------------------------

REAL = Package.read()


def test_every_module_has_an_explicit_rank() -> None:
    missing = unranked(REAL)
    assert not missing, "\n".join(missing)


def test_every_rank_entry_names_something_that_exists() -> None:
    """A stale entry could later rank a new module by accident."""
    stale = []
    for key in ORDER:
        if key.endswith(".*"):
            folder = key[:-2]
            if not any(_within(m, folder) and m != folder for m in REAL.sources):
                stale.append(key)
        elif key not in REAL.sources:
            stale.append(key)
    assert not stale, f"remove from ORDER (no such module): {stale}"


def test_no_module_imports_against_the_ranks() -> None:
    bad = violations(REAL)
    assert not bad, "imports against the ranks:\n  " + "\n  ".join(bad)


def test_no_import_cycle_between_modules() -> None:
    found = cycles(REAL)
    assert not found, "import cycles:\n  " + "\n  ".join(" <-> ".join(c) for c in found)


def test_heavy_libraries_stay_inside_functions() -> None:
    """torch, onnx, the runtimes and matplotlib load only when a function needs them: no module
    that imports one at the top is itself imported at the top by a module that does not."""
    bad = heavy_at_top(REAL)
    assert not bad, "\n  ".join(["heavy imports at the top of a light path:", *bad])


def test_our_modules_are_imported_inside_functions_only_to_keep_a_heavy_library_out() -> None:
    bad = needless_local_imports(REAL)
    assert not bad, "\n  ".join(["function-local imports that load nothing heavy:", *bad])


def test_importing_the_package_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    # (The CLI is not light yet: `dense-edge --help` loads onnx through kits/write.py and the
    # pipeline, which import ONNX-reading modules at their top.)
    code = (
        "import sys, dense_edge, dense_edge.recipe, dense_edge.stages, dense_edge.data\n"
        "import dense_edge.targets.registry, dense_edge.runtime, dense_edge.models\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_importing_the_package_root_is_cheap() -> None:
    """``import dense_edge`` (the public API) loads the API and its leaves: no numpy, no
    pydantic, no stage."""
    import subprocess
    import sys

    code = (
        "import json, sys, dense_edge\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dense_edge', 'numpy', 'pydantic'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert loaded == ["dense_edge", *CHEAP_ROOT_LOADS], loaded


def test_function_local_imports_are_read_too() -> None:
    """An import inside a function is a dependency like any other."""
    # run_recipe() imports the training stage inside the function (it imports torch)
    source = REAL.sources["dense_edge.pipeline"]
    assert "    from dense_edge.train.stage import train_stage" in source
    found = [i for i in REAL.imports() if i.importer == "dense_edge.pipeline"]
    assert any(i.imported == "dense_edge.train.stage" and i.local for i in found)


# -- the checker refuses what it should (synthetic packages, nothing planted in ours) ----------


def _plant(module: str, source: str, *, order: Mapping[str, int] = ORDER) -> Package:
    """The real package with one module added or replaced by ``source``."""
    sources = dict(REAL.sources)
    paths = dict(REAL.paths)
    sources[module] = source
    paths.setdefault(module, module.replace(".", "/") + ".py")
    return Package(sources, paths)


def test_a_planted_back_import_fails() -> None:
    """validate/ importing report/ (a later stage), inside a function: refused."""
    src = REAL.sources["dense_edge.validate.stage"] + (
        "\n\ndef _planted() -> None:\n    from dense_edge.report.write import write_report\n"
    )
    bad = violations(_plant("dense_edge.validate.stage", src))
    assert any("dense_edge.validate.stage -> dense_edge.report.write" in b for b in bad), bad
    assert not violations(REAL)


def test_a_planted_back_import_under_type_checking_fails() -> None:
    src = REAL.sources["dense_edge.fileio"].replace(
        "from dense_edge.errors import",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from dense_edge.stages import Stage\nfrom dense_edge.errors import",
        1,
    )
    bad = violations(_plant("dense_edge.fileio", src))
    assert any("dense_edge.fileio -> dense_edge.stages" in b for b in bad), bad


def test_the_foundation_is_ordered() -> None:
    """The foundation is not one flat rank: records may not import the stage contract."""
    src = REAL.sources["dense_edge.records"] + "\nfrom dense_edge.stages import read_record\n"
    bad = violations(_plant("dense_edge.records", src))
    assert any("dense_edge.records -> dense_edge.stages" in b for b in bad), bad


def test_an_unranked_module_fails() -> None:
    """A new top-level module nobody ranked: refused, not silently put at the bottom."""
    package = _plant("dense_edge.newthing", "from dense_edge.errors import UserError\n")
    assert unranked(package) == ["dense_edge.newthing has no rank: add it (or its folder) to ORDER"]
    # and an import of it is refused too, instead of passing as rank 0
    src = REAL.sources["dense_edge.fileio"] + "\nfrom dense_edge.newthing import x\n"
    planted = Package({**package.sources, "dense_edge.fileio": src}, {**package.paths})
    assert any("dense_edge.newthing has no rank" in b for b in violations(planted))


def test_an_import_of_the_root_from_the_foundation_fails() -> None:
    """``from dense_edge import __version__`` in manifest.py closed the old circle."""
    src = REAL.sources["dense_edge.manifest"].replace(
        "from dense_edge._version import __version__", "from dense_edge import __version__"
    )
    assert src != REAL.sources["dense_edge.manifest"]
    bad = violations(_plant("dense_edge.manifest", src))
    assert any("dense_edge.manifest -> dense_edge (" in b for b in bad), bad
    # and it closes a cycle through the API the root imports
    assert cycles(_plant("dense_edge.manifest", src))


def test_a_planted_cycle_is_found() -> None:
    """Two modules of one folder importing each other (the same rank): a cycle."""
    src = REAL.sources["dense_edge.data.identity"] + (
        "\n\ndef _planted() -> None:\n    from dense_edge.data import load_splits\n"
    )
    # data/__init__ importing identity closes it
    init = REAL.sources["dense_edge.data"] + "\nfrom dense_edge.data.identity import x\n"
    planted = Package(
        {**REAL.sources, "dense_edge.data.identity": src, "dense_edge.data": init},
        REAL.paths,
    )
    assert ["dense_edge.data", "dense_edge.data.identity"] in cycles(planted)
    assert not violations(planted)  # the ranks alone cannot see it


def test_a_heavy_import_at_the_top_of_a_light_path_fails() -> None:
    """The model registry importing, at its top, a module that imports torch at its top."""
    package = _plant("dense_edge.models.heavy", "import torch\n")
    src = REAL.sources["dense_edge.models.registry"] + "\nfrom dense_edge.models import heavy\n"
    planted = Package({**package.sources, "dense_edge.models.registry": src}, package.paths)
    bad = heavy_at_top(planted)
    assert any(b.startswith("dense_edge.models.registry -> dense_edge.models.heavy") for b in bad)
    assert not heavy_at_top(package)  # unimported, it loads nothing


def test_a_needless_local_import_fails_and_a_heavy_one_passes() -> None:
    """fileio (no heavy library) imported inside a function: refused; the DenseNet module
    (torch at its top) imported inside a function: the reason local imports exist."""
    src = REAL.sources["dense_edge.recipe.loader"] + (
        "\n\ndef _planted() -> None:\n    from dense_edge.fileio import read_json\n"
        "    from dense_edge.models.densenet import DenseNet\n"
    )
    bad = needless_local_imports(_plant("dense_edge.recipe.loader", src))
    assert [b for b in bad if b.startswith("dense_edge.recipe.loader -> dense_edge.fileio")], bad
    assert not [b for b in bad if "dense_edge.models.densenet" in b], bad


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("dense_edge.validate.stage", "dense_edge.report.write", False),
        ("dense_edge.report.html", "dense_edge.validate.budgets", True),
        ("dense_edge.models.loading", "dense_edge.data.imageset", False),
        ("dense_edge.models.loading", "dense_edge.preprocess", True),
        ("dense_edge.targets.tensorrt.export", "dense_edge.compile.stage", False),
        ("dense_edge.preprocess", "dense_edge.fileio", False),
        ("dense_edge.catalog", "dense_edge.errors", False),
        ("dense_edge.manifest", "dense_edge.catalog", True),
        ("dense_edge.manifest", "dense_edge.targets.registry", False),
        ("dense_edge.recipe.schema", "dense_edge.targets.registry", False),
        ("dense_edge.recipe.schema", "dense_edge.calibrate.profiles", False),
        ("dense_edge.recipe.schema", "dense_edge.catalog", True),
        ("dense_edge.fileio", "dense_edge.stages", False),
        ("dense_edge.stages", "dense_edge.bundle", True),
        ("dense_edge.stages", "dense_edge.targets.registry", False),
        ("dense_edge.manifest", "dense_edge", False),
        ("dense_edge.cli", "dense_edge", True),
        ("dense_edge.runtime.model", "dense_edge.targets.registry", True),
        ("dense_edge.runtime.model", "dense_edge.export.metadata", False),
        ("dense_edge.runtime.model", "dense_edge.onnxfile", True),
        ("dense_edge.targets.tensorrt.compiler", "dense_edge.export.metadata", False),
        ("dense_edge.targets.tensorrt.compiler", "dense_edge.onnxfile", True),
        ("dense_edge.calibrate.accuracy", "dense_edge.targets.openvino.runner", True),
        ("dense_edge.export.stage", "dense_edge.targets.onnxruntime.runner", True),
        ("dense_edge.targets.base", "dense_edge.calibrate.profiles", False),
        ("dense_edge.export.stage", "dense_edge.runtime.model", False),
        ("dense_edge.runtime.model", "dense_edge.export.stage", False),
        ("dense_edge.pipeline", "dense_edge.report.write", True),
        ("dense_edge.calibrate.dataset", "dense_edge.train.stage", True),
        ("dense_edge.calibrate.dataset", "dense_edge.data.identity", True),
    ],
)
def test_the_order_check_itself(importer: str, imported: str, allowed: bool) -> None:
    """The checker refuses what the issue names as wrong and lets the normal flow through."""
    assert (violation(importer, imported) is None) is allowed
