"""Checking the shape of JSON that came from elsewhere: types, required fields, bounded sizes.

A device report is written on another machine and handed over as a file; a report given to
``report compare`` may be old, edited or damaged. Before either is read, its shape is checked
here against a small declarative spec, and the first problem is named by its JSON path in one
line (``engine.name: expected a string of at most 128 characters``), never a traceback.

Specs are plain data: :class:`Str`, :class:`Num`, :class:`Int`, :class:`Bool`, :class:`Obj`,
:class:`Map`, :class:`List`, :class:`Any_` (any JSON, bounded), and ``Opt(spec)`` for "or null".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 1000  # characters of a free-form string
MAX_ITEMS = 100_000  # items of a list (a latency sample list is the longest)
MAX_DEPTH = 8


@dataclass(frozen=True)
class Str:
    max_len: int = MAX_TEXT
    pattern: str | None = None  # a full match is required
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Num:
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Int:
    low: int | None = 0


@dataclass(frozen=True)
class Bool:
    pass


@dataclass(frozen=True)
class Any_:
    """Any JSON value whose strings, lists and nesting are bounded."""


@dataclass(frozen=True)
class Opt:
    spec: Spec


@dataclass(frozen=True)
class Obj:
    fields: dict[str, tuple[Spec, bool]]  # name -> (spec, required)
    extra: Spec | None = field(default_factory=Any_)  # other keys: this spec (None: refused)
    max_keys: int = 200


@dataclass(frozen=True)
class Map:
    """An object used as a mapping: keys match ``key``, every value fits ``value``."""

    value: Spec
    key: str = r".{1,200}"
    min_items: int = 0
    max_items: int = 1000


@dataclass(frozen=True)
class List:
    item: Spec
    max_items: int = MAX_ITEMS


Spec = Str | Num | Int | Bool | Any_ | Opt | Obj | Map | List


def problem(value: Any, spec: Spec, path: str = "$") -> str | None:
    """The first way ``value`` does not fit ``spec``, as ``path: what``; None when it fits."""
    return _check(value, spec, path, 0)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(v: Any, spec: Spec, path: str, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"{path}: nested deeper than {MAX_DEPTH} levels"
    if isinstance(spec, Opt):
        return None if v is None else _check(v, spec.spec, path, depth)
    if isinstance(spec, Str):
        if not isinstance(v, str) or len(v) > spec.max_len:
            return f"{path}: expected a string of at most {spec.max_len} characters"
        if spec.choices is not None and v not in spec.choices:
            return f"{path}: {v[:40]!r} is not one of {', '.join(spec.choices)}"
        if spec.pattern is not None and not re.fullmatch(spec.pattern, v):
            return f"{path}: {v[:40]!r} is not of the form {spec.pattern}"
        return None
    if isinstance(spec, Num):
        if not _is_num(v) or not math.isfinite(v):
            return f"{path}: expected a finite number, got {_kind(v)}"
        if (spec.low is not None and v < spec.low) or (spec.high is not None and v > spec.high):
            return f"{path}: {v!r} is outside [{spec.low}, {spec.high}]"
        return None
    if isinstance(spec, Int):
        if not isinstance(v, int) or isinstance(v, bool):
            return f"{path}: expected an integer, got {_kind(v)}"
        if spec.low is not None and v < spec.low:
            return f"{path}: {v} is below {spec.low}"
        return None
    if isinstance(spec, Bool):
        return None if isinstance(v, bool) else f"{path}: expected true or false, got {_kind(v)}"
    if isinstance(spec, Any_):
        return _bounded(v, path, depth)
    if isinstance(spec, List):
        if not isinstance(v, list) or len(v) > spec.max_items:
            return f"{path}: expected a list of at most {spec.max_items} items"
        for i, item in enumerate(v):
            if (p := _check(item, spec.item, f"{path}[{i}]", depth + 1)) is not None:
                return p
        return None
    if isinstance(spec, Map):
        if not isinstance(v, dict) or not spec.min_items <= len(v) <= spec.max_items:
            return f"{path}: expected an object of {spec.min_items}..{spec.max_items} entries"
        for k, item in v.items():
            if not re.fullmatch(spec.key, k):
                return f"{path}: key {k[:40]!r} is not of the form {spec.key}"
            if (p := _check(item, spec.value, f"{path}.{k}", depth + 1)) is not None:
                return p
        return None
    assert isinstance(spec, Obj)
    if not isinstance(v, dict) or len(v) > spec.max_keys:
        return f"{path}: expected an object, got {_kind(v)}"
    for name, (sub, required) in spec.fields.items():
        if name not in v:
            if required:
                return f"{path}.{name}: missing"
            continue
        if (p := _check(v[name], sub, f"{path}.{name}", depth + 1)) is not None:
            return p
    for k, item in v.items():
        if k in spec.fields:
            continue
        if spec.extra is None:
            return f"{path}: unexpected key {k[:40]!r}"
        if len(k) > 200:
            return f"{path}: a key longer than 200 characters"
        if (p := _check(item, spec.extra, f"{path}.{k}", depth + 1)) is not None:
            return p
    return None


def _bounded(v: Any, path: str, depth: int) -> str | None:
    if v is None or isinstance(v, bool):
        return None
    if _is_num(v):
        return None if math.isfinite(v) else f"{path}: not a finite number"
    if isinstance(v, str):
        return None if len(v) <= MAX_TEXT else f"{path}: longer than {MAX_TEXT} characters"
    if isinstance(v, list):
        return _check(v, List(Any_()), path, depth)
    if isinstance(v, dict):
        return _check(v, Obj({}), path, depth)
    return f"{path}: not JSON"


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if _is_num(v):
        return repr(v) if not math.isfinite(v) else "a number"
    if isinstance(v, str):
        return "a string"
    return "a list" if isinstance(v, list) else "an object"
