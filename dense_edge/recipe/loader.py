"""Load a YAML recipe, apply command-line overrides, validate, explain errors in one line."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dense_edge.errors import RecipeError
from dense_edge.fileio import check_name
from dense_edge.recipe.schema import PATH_KEYS, Recipe


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)

_TYPE_NAMES = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "string": "str",
    "str": "str",
    "list": "list",
    "dict": "mapping",
    "model": "mapping",
}


def load_recipe(
    path: str | Path | None = None,
    overrides: Mapping[str, object] | None = None,
    labels: dict[str, str] | None = None,
) -> Recipe:
    """Read ``path`` (or the built-in digits default), apply ``overrides`` ("a.b" -> value).

    An error in an override names how it was given (``labels``, e.g. ``--set a.b=1``), not
    the recipe file."""
    raw: dict[str, object] = {}  # the YAML as read: unchecked until Recipe validates it
    where = "built-in default recipe"
    if path is not None:
        p = Path(path)
        where = str(p)
        raw = _read_yaml(p)
        _resolve_paths(raw, p.parent, where)
    given: dict[str, str] = {}  # override key -> how the user gave it (flag or --set)
    for key, value in (overrides or {}).items():
        if value is None and key not in (labels or {}):
            continue  # a flag not given; an explicit ``--set KEY=null`` is kept
        if key in PATH_KEYS and isinstance(value, (str, Path)) and value != "data":
            value = str(Path(value).expanduser().resolve())
        given[key] = (labels or {}).get(key) or f"command-line {key}={value}"
        _set_key(raw, key, value, given[key])
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        loc = ".".join(str(p) for p in exc.errors(include_url=False)[0]["loc"])
        blame = next((g for k, g in given.items() if loc == k or loc.startswith(k + ".")), where)
        raise RecipeError(f"{blame}: {format_validation_error(exc, Recipe)}") from None
    check_name(recipe.name, given.get("name", where))
    _check_files(recipe, where, given)
    return recipe


def _read_yaml(p: Path) -> dict[str, object]:
    if not p.exists():
        raise RecipeError(f"{p}: recipe not found", fix="check the --recipe path")
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise RecipeError(f"{p}: {problem}{at}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{p}: cannot read recipe ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{p}: a recipe is a mapping of sections, got {type(data).__name__}")
    return data


def _resolve_paths(raw: dict[str, object], base: Path, where: str) -> None:
    for dotted in PATH_KEYS:
        section, key = dotted.split(".")
        sec = raw.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str):
            value = sec[key]
            if dotted == "calibration.source" and value == "data":
                continue
            sec[key] = str((base / Path(value).expanduser()).resolve())


def _set_key(raw: dict[str, object], dotted: str, value: object, where: str) -> None:
    parts = dotted.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise RecipeError(f"{where}: {'.'.join(parts[: i + 1])}: cannot set {dotted} inside it")
        node = child
    node[parts[-1]] = value


def parse_set_option(item: str) -> tuple[str, Any]:
    """``--set a.b=value``: the value is read as YAML, so numbers and lists get their types."""
    if "=" not in item:
        raise RecipeError(f"--set {item!r}: expected KEY=VALUE, e.g. calibration.samples=256")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def _check_files(recipe: Recipe, where: str, given: dict[str, str] | None = None) -> None:
    checks = [
        ("model.weights", recipe.model.weights),
        ("data.root", recipe.data.root),
    ]
    if recipe.calibration.source != "data":
        checks.append(("calibration.source", recipe.calibration.source))
    for key, value in checks:
        if value is not None and not Path(value).exists():
            flag = {"model.weights": "--weights", "data.root": "--data-root"}.get(key, "--set")
            blame = (given or {}).get(key, where)
            raise RecipeError(
                f"{blame}: {key}: file not found: {value}", fix=f"fix the path or pass {flag}"
            )


def short_repr(value: Any) -> str:
    """``repr`` of a recipe value, bounded: a YAML alias bomb (a few hundred bytes that stand
    for billions of list items) is shown by its first items, never expanded."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 2, 4, 4, 4, 4
    r.maxstring, r.maxother, r.maxlong = 60, 60, 40
    return r.repr(value)


def format_validation_error(exc: ValidationError, model: type[BaseModel]) -> str:
    """The first error, as ``key.path: what was expected, what was found``."""
    err = exc.errors(include_url=False)[0]
    loc = ""
    for part in err["loc"]:
        if isinstance(part, int):
            loc += f"[{part}]"
        elif not str(part).startswith("function-after") and not any(c in str(part) for c in "-["):
            # (union members such as 'constrained-int' or 'list[int]' are no recipe keys)
            loc += f".{part}" if loc else str(part)
    loc = loc.replace("validate_", "validate")
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, err["loc"][:-1])
        close = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
        return f"{loc}: unknown key ({hint})"
    if kind == "missing":
        return f"{loc}: required key is missing"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{loc}: expected one of {expected}, got {short_repr(value)}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        want = _TYPE_NAMES.get(kind.split("_")[0], kind.split("_")[0])
        return f"{loc}: expected {want}, got {short_repr(value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{loc}: {err['msg'].lower()}, got {short_repr(value)}"
    msg = str(err["msg"])[:300]  # bounded, like the values above
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    # Validators name the key they judge first ("root: required ..."): attach it to the path.
    head, sep, rest = msg.partition(": ")
    if sep and head.isidentifier():
        return f"{loc}.{head}: {rest}" if loc else f"{head}: {rest}"
    return f"{loc}: {msg}" if loc else msg


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    cls: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = _field_by_name(cls, str(part))
        if field is None:
            return []
        cls = _model_of(field.annotation)
        if cls is None:
            return []
    return [f.alias or name for name, f in cls.model_fields.items()]


def _field_by_name(cls: Any, name: str) -> Any:
    for fname, f in cls.model_fields.items():
        if name in (fname, f.alias):
            return f
    return None


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None
