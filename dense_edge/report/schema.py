"""The report format: its name, version, and the JSON Schema that documents it.

Version 2 is described field by field in ``report.schema.json`` next to this file. A report
with another ``schema`` or a newer ``schema_version`` is refused by ``report compare``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, cast

from dense_edge.catalog import PYTORCH
from dense_edge.errors import UserError
from dense_edge.records import REPORT_FILE, Report
from dense_edge.records import REPORT_SCHEMA as SCHEMA
from dense_edge.records import REPORT_SCHEMA_VERSION as SCHEMA_VERSION
from dense_edge.report import shape
from dense_edge.targets.registry import names

__all__ = ["SCHEMA", "SCHEMA_VERSION", "json_schema", "load", "load_previous"]

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


def load_previous(folder: Path) -> dict[str, Any] | None:
    """The run's last report as it is, or None when there is none or it is unreadable: what a
    new validation keeps device rows from. Never an error (a new report replaces it)."""
    try:
        data = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _structure_problem(data: dict[str, Any]) -> str | None:
    """The first required key the report lacks (the keys compare and render read)."""
    schema = json_schema()
    for key in schema["required"]:
        if key not in data:
            return f"no {key!r}"
    for key in ("cpu", "versions"):
        if not isinstance(data["environment"], dict) or key not in data["environment"]:
            return f"no environment.{key!r}"
    items = schema["properties"]["engines"]["items"]
    if not isinstance(data["engines"], list) or not data["engines"]:
        return "no engines"
    if (wrong := shape.problem(data, _TOP, "report")) is not None:
        return wrong
    for e in data["engines"]:
        kit = e.get("status") == "kit"
        keys = items["required"] + (items["then"] if kit else items["else"])["required"]
        missing = [k for k in keys if k not in e]
        if missing:
            return f"engine {e.get('name', '?')!r} has no {missing[0]!r}"
        if not kit and (wrong := shape.problem(e, _MEASURED, f"engine {e['name']!r}")):
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
