"""The device report: what a kit's run on the device measured, defined once here.

``dense-edge kit validate`` (:mod:`dense_edge.kits.device_run`) writes it with
:func:`write_device_report`; the kit's own validator (``validate_kit.py``, a verbatim copy of
:mod:`dense_edge.targets.tensorrt.device` that runs without dense-edge) writes the same schema and
repeats its id and version (a test checks they agree). ``dense-edge report merge`` reads it with
:func:`load_device_report`, which checks its id, version and shape (:func:`device_spec`) before
anything is read, so a damaged or foreign file is one line naming it, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

from dense_edge.errors import UserError
from dense_edge.fileio import write_json
from dense_edge.kits.seal import KitIdentity
from dense_edge.records import DeviceEvaluation, EngineAccuracy, Latency
from dense_edge.report import shape
from dense_edge.report.schema import REFERENCE_TARGET
from dense_edge.targets.base import KitEngine
from dense_edge.targets.registry import all_targets

SCHEMA = "dense-edge/device-report"
VERSION = 1
FILE = "device_report.json"  # its name beside the kit, unless told otherwise
KIT_TARGETS = tuple(t.name for t in all_targets() if t.writes_kits)  # what device reports measure


class MeasuredKit(TypedDict):
    """The device report's ``kit``: which kit was measured."""

    path: str
    name: str
    identity: KitIdentity  # measured from the files the run read
    precision: str
    arch: str | None
    model_sha256: str
    run: dict[str, str | None]  # the run that exported it: dir, weights_sha256


class MeasuredEngine(KitEngine):
    """The device report's ``engine``: the row ``report merge`` adds."""

    name: str
    target: str
    precision: str
    precision_run: str
    runtime: str | None
    device: str | list[str] | None


class DeviceReport(TypedDict):
    """What ``dense-edge kit validate`` writes (the kit's ``validate_kit.py`` adds ``validator``,
    and its ``peak_rss_mib`` may be None)."""

    schema: str
    schema_version: int
    created: str
    measured_by: str  # the runner: the kit's target or its stand-in
    note: str | None
    kit: MeasuredKit
    engine: MeasuredEngine
    evaluation: DeviceEvaluation
    accuracy: EngineAccuracy
    latency: dict[str, Latency]  # batch size (as text) -> its latency
    cold_start_s: float
    peak_rss_mib: float
    environment: dict[str, str | None]  # host, device and runtime versions


def write_device_report(report: DeviceReport, path: Path) -> Path:
    """Write ``report`` to ``path`` (a temporary file, then one rename); the path."""
    return write_json(path, report)


def load_device_report(path: Path) -> dict[str, Any]:
    """The device report at ``path``, once its schema id, version and shape are checked."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("device report not found", path=path) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"not a readable JSON device report ({exc})", path=path) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(
            f"not a dense-edge device report (no 'schema': '{SCHEMA}')",
            path=path,
            fix="make one on the device with the kit's validate.sh (dense-edge kit validate)",
        )
    if data.get("schema_version") != VERSION:
        raise UserError(
            f"device report version {data.get('schema_version')!r} is not {VERSION}",
            path=path,
            fix="validate the kit with the same dense-edge version as this one",
        )
    wrong = shape.problem(data, device_spec(), "device report")
    if wrong is not None:
        raise UserError(
            f"not a valid device report: {wrong}",
            path=path,
            fix="make it again on the device with the kit's validate.sh (dense-edge kit validate)",
        )
    return data


_HASH = shape.Str(64, r"[0-9a-f]{64}")
_NAME = shape.Str(128, r"[A-Za-z0-9][A-Za-z0-9._+@-]*")  # an engine name is an identifier
_SHORT = shape.Opt(shape.Str(200))


def device_spec() -> shape.Obj:
    """The device report's shape: what ``report merge`` reads, typed and bounded."""

    targets = tuple(t.name for t in all_targets())
    latency = shape.Obj({
        "p50_ms": (shape.Num(low=0), True),
        "iterations": (shape.Int(low=1), True),
        "clock": (_SHORT, False),
        **{k: (shape.Opt(shape.Num(low=0)), False) for k in (
            "p99_ms", "p90_ms", "mean_ms", "min_ms", "max_ms", "p50_ci_low_ms", "p50_ci_high_ms",
            "throughput_ips", "wall_p50_ms")},
        "samples_ms": (shape.Opt(shape.List(shape.Num(low=0))), False),
    })  # fmt: skip
    worst = shape.Obj({
        "class": (shape.Str(200), True),
        "images": (shape.Int(), True),
        "float_correct": (shape.Int(), True),
        "correct": (shape.Int(), True),
        "top1_fraction": (shape.Opt(shape.Num(0, 1)), True),
        "top1_drop_points": (shape.Num(-100, 100), True),
    })  # fmt: skip
    return shape.Obj({
        "created": (_SHORT, False),
        "measured_by": (shape.Str(64, choices=(*targets, REFERENCE_TARGET)), True),
        "note": (shape.Opt(shape.Str(2000)), False),
        "kit": (shape.Obj({
            "path": (shape.Str(4096), True),
            "precision": (_SHORT, False),
            "arch": (_SHORT, False),
            "model_sha256": (shape.Opt(_HASH), False),
            "run": (shape.Obj({
                "weights_sha256": (_HASH, True),
                "dir": (shape.Opt(shape.Str(4096)), False),
            }), True),
        }), True),
        "engine": (shape.Obj({
            "name": (_NAME, True),
            "target": (shape.Str(64, choices=targets), True),
            "precision": (shape.Str(8, choices=("fp32", "fp16", "bf16", "int8")), True),
            "precision_run": (shape.Str(64), True),
            "runtime": (_SHORT, False),
            "device": (shape.Any_(), False),
            "size_bytes": (shape.Int(), False),
        }), True),
        "evaluation": (shape.Obj({
            "split": (_SHORT, False),
            "samples": (shape.Int(low=1), True),
            "of": (shape.Opt(shape.Int(low=1)), False),
            "source": (shape.Opt(shape.Str(500)), False),
            "float_top1": (shape.Opt(shape.Num(0, 1)), False),
        }), True),
        "accuracy": (shape.Obj({
            "agreement_fraction": (shape.Num(0, 1), True),
            "top1_fraction": (shape.Opt(shape.Num(0, 1)), False),
            "top5_fraction": (shape.Opt(shape.Num(0, 1)), False),
            "top1_drop_points": (shape.Opt(shape.Num(-100, 100)), False),
            "worst_classes": (shape.List(worst, 10_000), False),
        }), True),
        "latency": (shape.Map(latency, key=r"[1-9][0-9]{0,4}", min_items=1, max_items=32), True),
        "cold_start_s": (shape.Num(low=0), True),
        "peak_rss_mib": (shape.Opt(shape.Num(low=0)), True),
        "environment": (shape.Obj({
            "host": (shape.Str(253, r"[A-Za-z0-9][A-Za-z0-9._-]*"), True),
            "gpu": (_SHORT, False),
            "cuda": (_SHORT, False),
            "jetpack": (_SHORT, False),
            **{name: (_SHORT, False) for name in KIT_TARGETS},
        }), True),
    })  # fmt: skip
