"""The report format: its name, version, and the JSON Schema that documents it.

Version 2 is described field by field in ``report.schema.json`` next to this file. A report
with another ``schema`` or a newer ``schema_version`` is refused by ``report compare``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any, cast

from dense_edge.catalog import PYTORCH
from dense_edge.errors import UserError
from dense_edge.records import REPORT_FILE, EngineRow, Report
from dense_edge.records import REPORT_SCHEMA as SCHEMA
from dense_edge.records import REPORT_SCHEMA_VERSION as SCHEMA_VERSION
from dense_edge.report import shape
from dense_edge.targets.registry import names

__all__ = ["SCHEMA", "SCHEMA_VERSION", "engine_row", "json_schema", "load"]

REFERENCE_TARGET = PYTORCH  # the float model's row


def json_schema() -> dict[str, Any]:
    text = resources.files("dense_edge.report").joinpath("report.schema.json").read_text()
    schema = dict(json.loads(text))
    # An engine's target: the float reference, or any registered target (the registry is the list).
    target = schema["properties"]["engines"]["items"]["properties"]["target"]
    target["enum"] = [REFERENCE_TARGET, *names()]
    return schema


def load(path: str | Path) -> Report:
    """A report from disk, refused with a clear message unless its schema is this version's."""
    p = Path(path)
    if p.is_dir():
        p = p / REPORT_FILE
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("report not found", path=p) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"not a readable JSON report ({exc})", path=p) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError("not a dense-edge report (no 'schema': 'dense-edge/report')", path=p)
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UserError(
            f"report schema version {version!r} is not {SCHEMA_VERSION}, the version this "
            f"dense-edge reads",
            path=p,
            fix="compare reports made by the same dense-edge version, or re-run validate",
        )
    problem = _structure_problem(data)
    if problem:
        raise UserError(f"incomplete report: {problem}", path=p, fix="re-run dense-edge validate")
    return cast(Report, data)  # every required key was checked just above


def engine_row(data: object) -> EngineRow:
    """One engine row read from JSON (a report's, or the last report's device rows), its shape
    checked: the one loader of an engine row. A row that does not fit raises ``ValueError``
    naming the first problem."""
    problem = engine_row_problem(data)
    if problem is not None:
        raise ValueError(problem)
    return cast(EngineRow, data)  # the keys compare and the renderers read were checked


def engine_row_problem(data: object) -> str | None:
    """The first way ``data`` is not an engine row (the keys every row needs, then a measured
    row's), or None."""
    if not isinstance(data, dict):
        return f"an engine row is an object, not {type(data).__name__}"
    name = data.get("name", "?")
    required, kit_required, measured_required = _engine_keys()
    kit = data.get("status") == "kit"
    missing = [k for k in required + (kit_required if kit else measured_required) if k not in data]
    if missing:
        return f"engine {name!r} has no {missing[0]!r}"
    if not kit and (wrong := shape.problem(data, _MEASURED, f"engine {name!r}")):
        return wrong
    return None


@functools.cache
def _engine_keys() -> tuple[list[str], list[str], list[str]]:
    """The keys every engine row needs, then a kit row's, then a measured row's (the schema's)."""
    items = json_schema()["properties"]["engines"]["items"]
    return items["required"], items["then"]["required"], items["else"]["required"]


def _structure_problem(data: dict[str, Any]) -> str | None:
    """The first required key the report lacks (the keys compare and render read)."""
    schema = json_schema()
    for key in schema["required"]:
        if key not in data:
            return f"no {key!r}"
    for key in ("cpu", "versions"):
        if not isinstance(data["environment"], dict) or key not in data["environment"]:
            return f"no environment.{key!r}"
    if not isinstance(data["engines"], list) or not data["engines"]:
        return "no engines"
    if (wrong := shape.problem(data, _TOP, "report")) is not None:
        return wrong
    for e in data["engines"]:
        if (wrong := engine_row_problem(e)) is not None:
            return wrong
    return None


# The fields compare and the renderers read, typed: a damaged report is refused in one line.
# A measurement may be null (report.json never holds NaN: a non-finite value is written as null).
_MAYBE = shape.Opt(shape.Num())
_MEASURED = shape.Obj({
    "name": (shape.Str(200), True),
    "precision": (shape.Str(64), True),
    "size_bytes": (shape.Num(low=0), True),
    "accuracy": (shape.Obj({"agreement_fraction": (_MAYBE, True),
                            "top1_fraction": (_MAYBE, False),
                            "top1_drop_points": (_MAYBE, False)}), True),
    "latency": (shape.Map(shape.Obj({
        "p50_ms": (shape.Num(low=0), True),
        "iterations": (shape.Int(), False),
        **{k: (_MAYBE, False) for k in ("p50_ci_low_ms", "p50_ci_high_ms", "p99_ms",
                                        "wall_p50_ms")},
    }), key=r"[0-9]{1,6}"), True),
    "measured_on": (shape.Opt(shape.Obj({})), False),
    "engine_sha256": (shape.Opt(shape.Str(200)), False),
    "engine_content_sha256": (shape.Opt(shape.Str(200)), False),
})  # fmt: skip
_TOP = shape.Obj({
    "engines": (shape.List(shape.Obj({"name": (shape.Str(200), True)}), 1000), True),
    "model": (shape.Obj({"weights_sha256": (shape.Opt(shape.Str(200)), False),
                         "weights_tensor_sha256": (shape.Opt(shape.Str(200)), False)}), True),
    "environment": (shape.Obj({"cpu": (shape.Obj({"model": (shape.Str(500), True)}), True),
                               "versions": (shape.Obj({}), True),
                               "gpu": (shape.Opt(shape.Obj({})), False)}), True),
})  # fmt: skip
