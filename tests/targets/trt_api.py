"""Every TensorRT name the project touches, collected from its code, checked against the surface
of each real release (``scripts/trt_bindings.py`` writes the surfaces from NVIDIA's bindings).

The collector reads the source (AST), not a list: ``trt.X`` and ``trt.X.Y``; methods, properties
and property assignments on values whose TensorRT type it can tell (annotations ``trt.X``,
``x = trt.X(...)``, and the return/property types the real bindings declare, e.g.
``builder.create_builder_config()`` is an ``IBuilderConfig``); subclasses of TensorRT classes
(their overrides must exist in the base). A use is required in every supported release, except:

- a probe (``hasattr(x, "n")``, ``getattr(x, "n", default)``) is never required;
- code guarded by a probe (``if hasattr(x, "n"):`` body, ``a if hasattr(x, "n") else b``, the rest
  of a block after ``if not hasattr(x, "n"): return``) is required only where ``n`` exists.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MODULE = "<module>"  # owner of trt.X
PREFIX = "tensorrt_bindings.tensorrt."


@dataclass(frozen=True)
class Use:
    file: str
    line: int
    owner: str  # MODULE or a class name
    name: str
    kind: str  # attr | call | set | override
    nargs: int = 0
    kwargs: tuple[str, ...] = ()
    guards: tuple[tuple[str, str], ...] = ()
    probe: bool = False

    def where(self) -> str:
        return f"{self.file}:{self.line}"


class Surface:
    """One release's classes and functions, as scripts/trt_bindings.py dumped them."""

    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.label: str = data["label"]
        self.version: str = data["version"]
        self.classes: dict[str, Any] = data["classes"]
        self.functions: dict[str, Any] = data["functions"]
        self.values: dict[str, str] = data["values"]

    def cls(self, name: str) -> str | None:
        """The class a C++ or Python type name means here, or None."""
        name = name.replace(PREFIX, "").split("::")[-1].strip()
        for candidate in (name, name.split(".")[-1], name[1:] if name.startswith("I") else ""):
            if candidate in self.classes:
                return candidate
        return None

    def member(self, owner: str, name: str) -> dict[str, Any] | None:
        if owner == MODULE:
            if name in self.classes:
                return {"kind": "class"}
            if name in self.functions:
                return {"kind": "function", **self.functions[name]}
            if name in self.values:
                return {"kind": "value"}
            return None
        entry = self.classes.get(owner)
        if entry is None:
            return None
        m = entry["members"].get(name)
        return dict(m) if m is not None else None

    def has(self, owner: str, name: str) -> bool:
        return self.member(owner, name) is not None

    def returns(self, owner: str, name: str) -> str | None:
        """The TensorRT class a method/property/constructor gives, in this release."""
        m = self.member(owner, name)
        if m is None:
            return None
        if m["kind"] == "class":
            return name
        if m["kind"] == "property":
            return self.cls(m.get("type", ""))
        for sig in m.get("signatures", []):
            ret = sig.rsplit("->", 1)[-1].strip()
            found = self.cls(ret.replace("typing.Optional[", "").rstrip("]"))
            if found:
                return found
        return None


def split_params(sig: str) -> list[str]:
    inner = sig[sig.index("(") + 1 : sig.rindex(")")]
    out, depth, cur = [], 0, ""
    for ch in inner:
        depth += ch in "([{<"
        depth -= ch in ")]}>"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def accepts(sig: str, nargs: int, kwargs: tuple[str, ...], *, bound: bool) -> bool:
    """Whether a pybind signature accepts ``nargs`` positional and these keyword arguments."""
    params = split_params(sig)
    if bound and params and params[0].startswith("self"):
        params = params[1:]
    if any(p.startswith("*") for p in params):
        return True
    names = [re.split(r"[:=]", p, maxsplit=1)[0].strip() for p in params]
    required = [("=" in p.split(":", 1)[-1] or "=" in p) is False for p in params]
    if nargs > len(params):
        return False
    given = set(names[:nargs]) | set(kwargs)
    if not set(kwargs) <= set(names) or set(names[:nargs]) & set(kwargs):
        return False
    return all(n in given for n, req in zip(names, required, strict=True) if req)


# -- the collector ----------------------------------------------------------------------------
def _trt_attr(node: ast.AST, aliases: set[str]) -> str | None:
    """``trt.X`` -> ``X``."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
    ):
        return node.attr
    return None


def _annotation_class(node: ast.AST | None, aliases: set[str]) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(node, ast.BinOp):  # trt.X | None
        return _annotation_class(node.left, aliases) or _annotation_class(node.right, aliases)
    return _trt_attr(node, aliases)


class _Collector:
    def __init__(self, file: str, tree: ast.Module, surfaces: list[Surface]) -> None:
        self.file = file
        self.tree = tree
        self.surfaces = surfaces
        self.uses: list[Use] = []
        self.aliases = {
            a.asname or a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
            if a.name == "tensorrt"
        }
        # Functions of this module that return a TensorRT type (by annotation).
        self.func_returns = {
            f.name: c
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef)
            and (c := _annotation_class(f.returns, self.aliases)) is not None
        }

    def returns(self, owner: str, name: str) -> str | None:
        for s in self.surfaces:
            if (r := s.returns(owner, name)) is not None:
                return r
        return None

    def add(
        self, node: ast.AST, owner: str, name: str, kind: str, guards: tuple, **kw: Any
    ) -> None:
        line = getattr(node, "lineno", 0)
        self.uses.append(Use(self.file, line, owner, name, kind, guards=guards, **kw))

    # -- types ---------------------------------------------------------------------------------
    def typeof(self, node: ast.AST, env: dict[str, str]) -> str | None:
        """``X`` for an instance of trt.X, ``type:X`` for the class object itself."""
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if (name := _trt_attr(node, self.aliases)) is not None:
            return f"type:{name}"
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return env.get(f"self.{node.attr}")
            owner = self.typeof(node.value, env)
            if owner and not owner.startswith("type:"):
                return self.returns(owner, node.attr)
            if owner and owner.startswith("type:"):
                # an enum member's type is its enum; a nested class is a class object
                for s in self.surfaces:
                    m = s.member(owner[5:], node.attr)
                    if m and m["kind"] == "value":
                        return s.cls(m["type"])
                    if m and m["kind"] == "class":
                        return f"type:{m['name'].split('.')[-1]}"
            return None
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in self.func_returns:
                return self.func_returns[func.id]
            f = self.typeof(func, env) if isinstance(func, ast.Attribute) else None
            if f and f.startswith("type:"):
                return f[5:]  # a constructor
            if isinstance(func, ast.Attribute):
                owner = self.typeof(func.value, env)
                if owner and not owner.startswith("type:"):
                    return self.returns(owner, func.attr)
        return None

    def _self_env(self, cls: ast.ClassDef) -> dict[str, str]:
        env: dict[str, str] = {}
        for _ in range(2):  # attributes typed from attributes assigned earlier
            for n in ast.walk(cls):
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Attribute):
                    if (c := _annotation_class(n.annotation, self.aliases)) is not None:
                        env[f"self.{n.target.attr}"] = c
                elif isinstance(n, ast.Assign) and len(n.targets) == 1:
                    t = n.targets[0]
                    is_self = isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                    if is_self and t.value.id == "self" and (c := self.typeof(n.value, env)):  # type: ignore[attr-defined]
                        env.setdefault(f"self.{t.attr}", c)  # type: ignore[attr-defined]
        return env

    # -- walking -------------------------------------------------------------------------------
    def run(self) -> list[Use]:
        if self.aliases:
            self.block(self.tree.body, {}, ())
        return self.uses

    def block(self, body: list[ast.stmt], env: dict[str, str], guards: tuple) -> None:
        for stmt in body:
            if isinstance(stmt, ast.If):
                probe = self.probe(stmt.test, env)
                negated = isinstance(stmt.test, ast.UnaryOp) and isinstance(stmt.test.op, ast.Not)
                self.expr(stmt.test, env, guards)
                inner = (*guards, probe) if probe and not negated else guards
                self.block(stmt.body, env, inner)
                self.block(stmt.orelse, env, (*guards, probe) if probe and negated else guards)
                exits = stmt.body and isinstance(stmt.body[-1], (ast.Return, ast.Raise))
                if probe and negated and exits:
                    guards = (*guards, probe)  # the rest of the block runs only where it exists
                continue
            if isinstance(stmt, ast.ClassDef):
                self.classdef(stmt, env, guards)
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                local = dict(env)
                for a in [*stmt.args.posonlyargs, *stmt.args.args, *stmt.args.kwonlyargs]:
                    if (c := _annotation_class(a.annotation, self.aliases)) is not None:
                        local[a.arg] = c
                self.block(stmt.body, local, guards)
                continue
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                value = stmt.value
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if value is not None:
                    self.expr(value, env, guards)
                for t in targets:
                    self.assign_target(t, value, env, guards, stmt)
                continue
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.stmt):
                    continue
                if isinstance(child, ast.expr):
                    self.expr(child, env, guards)
                if isinstance(child, ast.withitem):
                    self.expr(child.context_expr, env, guards)
            for field in ("body", "orelse", "finalbody", "handlers"):
                sub = getattr(stmt, field, None)
                if sub:
                    for s in sub:
                        if isinstance(s, ast.ExceptHandler):
                            self.block(s.body, env, guards)
                    self.block([s for s in sub if isinstance(s, ast.stmt)], env, guards)

    def assign_target(self, t: ast.AST, value: ast.AST | None, env: dict[str, str], guards: tuple,
                      stmt: ast.stmt) -> None:  # fmt: skip
        ann = _annotation_class(getattr(stmt, "annotation", None), self.aliases)
        typ = ann or (self.typeof(value, env) if value is not None else None)
        if isinstance(t, ast.Name):
            if typ:
                env[t.id] = typ
            else:
                env.pop(t.id, None)
        elif isinstance(t, ast.Attribute):
            if isinstance(t.value, ast.Name) and t.value.id == "self":
                if typ:
                    env[f"self.{t.attr}"] = typ
                return
            owner = self.typeof(t.value, env)
            if owner and not owner.startswith("type:"):
                self.add(t, owner, t.attr, "set", guards)
            self.expr(t.value, env, guards)

    def classdef(self, cls: ast.ClassDef, env: dict[str, str], guards: tuple) -> None:
        bases = [b for b in (_trt_attr(base, self.aliases) for base in cls.bases) if b]
        for base in cls.bases:
            self.expr(base, env, guards)
        for base in bases:
            for f in cls.body:
                if isinstance(f, ast.FunctionDef) and not f.name.startswith("_"):
                    self.add(f, base, f.name, "override", guards)
        local = {**env, **self._self_env(cls)}
        self.block(cls.body, local, guards)

    def probe(self, test: ast.AST, env: dict[str, str]) -> tuple[str, str] | None:
        """``hasattr(x, "n")`` / ``not hasattr(...)`` / ``a and hasattr(...)`` -> (type of x, n)."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test = test.operand
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
            found = [p for v in test.values if (p := self.probe(v, env)) is not None]
            return found[0] if found else None
        if (
            isinstance(test, ast.Call)
            and isinstance(test.func, ast.Name)
            and test.func.id == "hasattr"
            and len(test.args) == 2
            and isinstance(test.args[1], ast.Constant)
        ):
            owner = self.typeof(test.args[0], env)
            if owner:
                return (owner[5:] if owner.startswith("type:") else owner, test.args[1].value)
            if isinstance(test.args[0], ast.Name) and test.args[0].id in self.aliases:
                return (MODULE, test.args[1].value)
        return None

    def expr(self, node: ast.AST, env: dict[str, str], guards: tuple) -> None:
        if isinstance(node, ast.IfExp):
            probe = self.probe(node.test, env)
            self.expr(node.test, env, guards)
            self.expr(node.body, env, (*guards, probe) if probe else guards)
            self.expr(node.orelse, env, guards)
            return
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") and node.args:
                obj = node.args[0]
                name = node.args[1] if len(node.args) > 1 else None
                owner = self.typeof(obj, env)
                if isinstance(obj, ast.Name) and obj.id in self.aliases:
                    owner = f"type:{MODULE}"
                if owner and isinstance(name, ast.Constant) and isinstance(name.value, str):
                    probe = func.id == "hasattr" or len(node.args) == 3
                    o = owner[5:] if owner.startswith("type:") else owner
                    self.add(node, o, name.value, "attr", guards, probe=probe)
                for a in node.args:
                    self.expr(a, env, guards)
                return
            if (cls := _trt_attr(func, self.aliases)) is not None:
                kws = tuple(k.arg for k in node.keywords if k.arg)
                self.add(func, MODULE, cls, "call", guards, nargs=len(node.args), kwargs=kws)
                for a in [*node.args, *(k.value for k in node.keywords)]:
                    self.expr(a, env, guards)
                return
            if isinstance(func, ast.Attribute):
                owner = self.typeof(func.value, env)
                if owner:
                    unbound = owner.startswith("type:") and owner != f"type:{MODULE}"
                    o = owner[5:] if owner.startswith("type:") else owner
                    nargs = len(node.args) - (1 if unbound else 0)
                    kws = tuple(k.arg for k in node.keywords if k.arg)
                    self.add(func, o, func.attr, "call", guards, nargs=nargs, kwargs=kws)
                    self.expr(func.value, env, guards)
                    for a in [*node.args, *(k.value for k in node.keywords)]:
                        self.expr(a, env, guards)
                    return
        if isinstance(node, ast.Attribute):
            if (name := _trt_attr(node, self.aliases)) is not None:
                self.add(node, MODULE, name, "attr", guards)
                return
            owner = self.typeof(node.value, env)
            if owner:
                o = owner[5:] if owner.startswith("type:") else owner
                self.add(node, o, node.attr, "attr", guards)
        for child in ast.iter_child_nodes(node):
            self.expr(child, env, guards)


def collect(files: list[Path], surfaces: list[Surface]) -> list[Use]:
    out: list[Use] = []
    for f in files:
        tree = ast.parse(f.read_text(), str(f))
        name = str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f)
        out += _Collector(name, tree, surfaces).run()
    return out


def files_importing_tensorrt(*folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        for f in sorted(folder.rglob("*.py")):
            tree = ast.parse(f.read_text(), str(f))
            if any(isinstance(n, ast.Import) and any(a.name == "tensorrt" for a in n.names)
                   for n in ast.walk(tree)):  # fmt: skip
                found.append(f)
    return found


def problems(uses: list[Use], surface: Surface) -> list[str]:
    """Uses this release cannot satisfy."""
    out = []
    for u in uses:
        if u.probe or not all(surface.has(*g) for g in u.guards):
            continue
        m = surface.member(u.owner, u.name)
        label = f"{u.owner}.{u.name}" if u.owner != MODULE else f"tensorrt.{u.name}"
        if m is None:
            if u.owner == MODULE or u.owner in surface.classes:
                out.append(f"{u.where()}: {label} does not exist in TensorRT {surface.version}")
            continue
        if u.kind == "set" and not (m["kind"] == "property" and m.get("settable")):
            out.append(f"{u.where()}: {label} cannot be set in TensorRT {surface.version}")
        if u.kind == "call":
            sigs = m.get("signatures", [])
            if m["kind"] == "class":
                sigs = surface.classes[u.name]["members"].get("__init__", {}).get("signatures", [])
            if sigs and not any(accepts(s, u.nargs, u.kwargs, bound=True) for s in sigs):
                out.append(
                    f"{u.where()}: {label}({u.nargs} positional, keywords {list(u.kwargs)}) "
                    f"matches no signature in TensorRT {surface.version}: {sigs}"
                )
        if u.kind == "override" and m["kind"] != "method":
            out.append(f"{u.where()}: {label} overrides nothing in TensorRT {surface.version}")
    return out
