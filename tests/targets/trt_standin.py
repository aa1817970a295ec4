"""A ``tensorrt`` module whose surface is one real release's, generated from its surface file.

Every class, enum member, method, property and constructor of that release exists, and nothing
else: an attribute the release lacks raises AttributeError, a property it cannot set refuses the
assignment, a call whose arguments match none of the release's pybind signatures raises
TypeError, and so does None (or a value of another TensorRT type) where the signature names a
TensorRT class, as pybind does. Methods return a stand-in of the type the release declares
(``bool`` True, ``int`` 0, ...); ``behaviour`` overrides a method or property per test. No engine
exists: this drives the project's builder and runner logic, not a GPU.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable
from typing import Any

from tests.targets.trt_api import PREFIX, Surface, accepts, split_params

Behaviour = dict[tuple[str, str], Callable[..., Any]]
_DIMS = ("Dims", "Dims32", "Dims64", "Dims2", "Dims3", "Dims4", "DimsHW")


class EnumValue:
    def __init__(self, enum: str, name: str, value: int) -> None:
        self.enum, self.name, self.value = enum, name, value

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EnumValue) and (other.enum, other.value) == (self.enum, self.value)

    def __hash__(self) -> int:
        return hash((self.enum, self.value))

    def __repr__(self) -> str:
        return f"<{self.enum}.{self.name}: {self.value}>"

    __str__ = __repr__


def _type_name(annotation: str) -> str:
    return annotation.replace(PREFIX, "").strip()


def build_module(surface: Surface, behaviour: Behaviour | None = None) -> types.ModuleType:
    behaviour = behaviour or {}
    mod = types.ModuleType("tensorrt")
    mod.__file__ = f"<stand-in tensorrt {surface.version}>"
    mod.__version__ = surface.version  # type: ignore[attr-defined]
    classes: dict[str, type] = {}

    def instance_of(type_name: str) -> Any:
        name = surface.cls(type_name)
        if name is None:
            return None
        cls = classes[name]
        if surface.classes[name]["enum"]:
            first = next(iter(surface.classes[name]["values"].items()))
            return EnumValue(name, *first)
        obj = object.__new__(cls)
        object.__setattr__(obj, "_values", {})
        return obj

    def default(ret: str) -> Any:
        ret = _type_name(ret)
        simple = {"bool": True, "int": 0, "float": 0.0, "str": "", "None": None}
        if ret in simple:
            return simple[ret]
        if ret.startswith(("typing.Optional", "Optional")) or ret.endswith("| None"):
            return None
        return instance_of(ret)

    def check_types(sig: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        params = split_params(sig)[1:]  # without self
        named = dict(zip([re.split(r"[:=]", p)[0].strip() for p in params], params, strict=True))
        given = dict(zip(list(named), args, strict=False)) | kwargs
        for pname, value in given.items():
            ann = named.get(pname, "")
            ann = _type_name(ann.split(":", 1)[1].split("=")[0]) if ":" in ann else ""
            simple = {"int": int, "typing.SupportsInt": int, "str": str, "bool": bool}
            if ann in simple:
                if not isinstance(value, simple[ann]) or (
                    ann != "bool" and isinstance(value, bool)
                ):
                    return f"{pname}: expected {ann}, got {type(value).__name__} ({value!r})"
                continue
            cls_name = surface.cls(ann) if ann else None
            if cls_name is None or "Optional" in ann:
                continue
            if cls_name in _DIMS and isinstance(value, (list, tuple)):
                continue
            expected = classes[cls_name]
            ok = isinstance(value, EnumValue) and value.enum == cls_name if surface.classes[
                cls_name]["enum"] else isinstance(value, expected)  # fmt: skip
            if not ok:
                return f"{pname}: expected {cls_name}, got {type(value).__name__} ({value!r})"
        return None

    def method(owner: str, name: str, sigs: list[str]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            matching = [s for s in sigs if accepts(s, len(args), tuple(kwargs), bound=True)]
            if sigs and not matching:
                raise TypeError(f"{owner}.{name}(): incompatible arguments {args} {kwargs}; "
                                f"TensorRT {surface.version} takes {sigs}")  # fmt: skip
            for s in matching:
                if (problem := check_types(s, args, kwargs)) is None:
                    break
            else:
                if matching:
                    raise TypeError(f"{owner}.{name}(): {problem}")
            if (owner, name) in behaviour:
                return behaviour[(owner, name)](self, *args, **kwargs)
            return default(sigs[0].rsplit("->", 1)[-1]) if sigs else None

        call.__name__ = name
        return call

    def prop(owner: str, name: str, entry: dict[str, Any]) -> property:
        def get(self: Any) -> Any:
            if (owner, name) in behaviour:
                return behaviour[(owner, name)](self)
            values = self.__dict__.setdefault("_values", {})
            if name in values:
                return values[name]
            return default(entry.get("type", "None") or "None")

        def set_(self: Any, value: Any) -> None:
            self.__dict__.setdefault("_values", {})[name] = value

        return property(get, set_ if entry.get("settable") else None)

    def strict_setattr(self: Any, name: str, value: Any) -> None:
        cls = type(self)
        if cls.__module__ == "tensorrt" or (not name.startswith("_") and hasattr(cls, name)):
            static = getattr(cls, name, None)
            settable = isinstance(static, property) and static.fset is not None
            if not settable and (cls.__module__ == "tensorrt" or isinstance(static, property)):
                raise AttributeError(
                    f"TensorRT {surface.version}: {cls.__name__}.{name} cannot be set"
                )
        object.__setattr__(self, name, value)

    def make_class(name: str) -> type:
        if name in classes:
            return classes[name]
        entry = surface.classes[name]
        parents = [b for b in entry["bases"] if b in surface.classes and b != name]
        direct = tuple(make_class(b) for b in parents[:1])  # the nearest TensorRT base
        ns: dict[str, Any] = {"__module__": "tensorrt", "__setattr__": strict_setattr}
        if not entry["enum"]:
            init_sigs = entry["members"].get("__init__", {}).get("signatures", [])
            init_call = method(name, "__init__", init_sigs)

            def __init__(
                self: Any, *a: Any, _init: Callable[..., Any] = init_call, **k: Any
            ) -> None:
                object.__setattr__(self, "_values", {})
                _init(self, *a, **k)

            ns["__init__"] = __init__
        for attr, m in entry["members"].items():
            if attr == "__init__" or attr.startswith("_pybind"):
                continue
            if m["kind"] == "method":
                ns[attr] = method(name, attr, m.get("signatures", []))
            elif m["kind"] == "property":
                ns[attr] = prop(name, attr, m)
        if name == "IHostMemory":
            ns["__bytes__"] = lambda self: bytes(self.__dict__.get("_values", {}).get("data", b""))
        classes[name] = type(name, direct, ns)
        return classes[name]

    for name in surface.classes:
        make_class(name)

    for name, entry in surface.classes.items():
        cls = classes[name]
        if entry["enum"]:
            for member, value in entry["values"].items():
                type.__setattr__(cls, member, EnumValue(name, member, value))
        for attr, m in entry["members"].items():
            if m["kind"] == "value" and m.get("int") is not None and attr not in cls.__dict__:
                enum = surface.cls(m["type"]) or m["type"]
                type.__setattr__(cls, attr, EnumValue(enum, attr, int(m["int"])))
            elif m["kind"] == "class":
                nested = surface.cls(m["name"])
                if nested is not None:
                    type.__setattr__(cls, attr, classes[nested])
        setattr(mod, name, cls)
    for name, f in surface.functions.items():
        setattr(mod, name, functools.partial(method("<module>", name, f["signatures"]), None))
    return mod


def host_memory(module: types.ModuleType, data: bytes) -> Any:
    """An ``IHostMemory`` holding ``data`` (what build_serialized_network returns)."""
    obj = object.__new__(module.IHostMemory)
    object.__setattr__(obj, "_values", {"data": data})
    return obj
