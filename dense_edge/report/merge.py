"""``dense-edge report merge DEVICE_REPORT``: a kit's device measurement joins the run's report.

The device report (written by ``dense-edge kit validate`` on the device) becomes one engine entry
with the same accuracy and latency fields as the engines measured here, plus ``measured_on``:
where, on which GPU and with which TensorRT, CUDA and JetPack it was measured, and the device
report's path. It replaces the run's ``kit`` entry of the same engine (a kit written here but not
built), or an earlier merge from the same host; the budgets are checked on it, and report.md and
report.html are rendered again. A device report of another model is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from dense_edge.errors import UserError
from dense_edge.records import REPORT_FILE, EngineRow, Latency, MeasuredOn, Report
from dense_edge.report import shape
from dense_edge.report.schema import load
from dense_edge.report.write import write_reports
from dense_edge.targets import kitseal
from dense_edge.targets.registry import TARGETS, all_targets
from dense_edge.validate import budgets as budgets_mod
from dense_edge.validate import verdict as verdict_mod
from dense_edge.validate.latency import clock_of, wall_p50_of

DEVICE_SCHEMA = "dense-edge/device-report"
DEVICE_VERSION = 1


def load_device_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("device report not found", path=path) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"not a readable JSON device report ({exc})", path=path) from None
    if not isinstance(data, dict) or data.get("schema") != DEVICE_SCHEMA:
        raise UserError(
            f"not a dense-edge device report (no 'schema': '{DEVICE_SCHEMA}')",
            path=path,
            fix="make one on the device with the kit's validate.sh (dense-edge kit validate)",
        )
    if data.get("schema_version") != DEVICE_VERSION:
        raise UserError(
            f"device report version {data.get('schema_version')!r} is not {DEVICE_VERSION}",
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
    from dense_edge.report.schema import REFERENCE_TARGET

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


KIT_TARGETS = tuple(t.name for t in all_targets() if t.writes_kits)  # what device reports measure


def engine_entry(device: dict[str, Any], path: Path) -> EngineRow:
    """The report.json engine entry for a device report."""
    e, env = device["engine"], device["environment"]
    return {
        "name": e["name"],
        "target": e["target"],
        "precision": e["precision"],
        "precision_run": e["precision_run"],
        "path": device["kit"]["path"],
        "size_bytes": int(e.get("size_bytes", 0)),
        "runtime": e.get("runtime"),
        "device": e.get("device"),
        "device_kind": _device_kind(device["measured_by"]),
        "accuracy": device["accuracy"],
        "latency": {b: _today(lat) for b, lat in device["latency"].items()},
        "cold_start_s": device["cold_start_s"],
        "peak_rss_mib": device["peak_rss_mib"] if device["peak_rss_mib"] is not None else 0.0,
        "speedup": {},  # the float model was not timed on the device
        "status": "measured",
        "measured_on": {
            "where": "device",
            "host": env.get("host"),
            "gpu": env.get("gpu"),
            **{name: env.get(name) for name in KIT_TARGETS},
            "cuda": env.get("cuda"),
            "jetpack": env.get("jetpack"),
            "report": str(Path(path).resolve()),
        },
        "evaluation": device["evaluation"],
        "note": device.get("note"),
        # measured by a stand-in runner (ONNX Runtime over the kit's ONNX), not by TensorRT:
        # shown, never recommended, never what makes a run pass
        "stand_in": device["measured_by"] not in KIT_TARGETS,
    }


def _replaceable(old: EngineRow, entry: EngineRow) -> bool:
    """Whether a merged row may take ``old``'s place: only the run's kit row of that engine (a
    kit written, nothing measured), or an earlier merge from the same device. Never a row
    measured here, the float reference, or another device's row."""
    if old.get("is_reference"):
        return False
    if old.get("status") == "kit":
        return True
    before = old.get("measured_on")
    return isinstance(before, dict) and device_identity(before) == device_identity(
        entry["measured_on"]
    )


def device_identity(measured_on: MeasuredOn) -> tuple[str, ...]:
    """What makes two device measurements comparable: the same host, GPU and runtimes."""
    keys = ("where", "host", "gpu", *KIT_TARGETS, "cuda", "jetpack")
    return tuple(str(measured_on.get(k) or "") for k in keys)


def _today(lat: Mapping[str, Any]) -> Latency:
    """A device latency entry under today's clock names, with its wall-clock median where known
    (device reports made before the clock had one name per runtime spell it otherwise)."""
    out = cast(Latency, {**lat, "clock": clock_of(lat)})  # its shape was checked on reading
    wall = wall_p50_of(lat)
    if wall is not None:
        out["wall_p50_ms"] = wall
    return out


def _device_kind(runner: str) -> str:
    """Where the device report's runner measured (a kit's own target, or its stand-in)."""
    target = TARGETS.get(runner)
    return target.device_kind if target is not None else "cpu"


def merge(report: Report, device: dict[str, Any], path: Path) -> Report:
    """``report`` with the device report's engine entry in place; budgets and verdict updated."""
    theirs = device["kit"]["run"]["weights_sha256"]  # required by the device report's shape
    ours = report.get("model", {}).get("weights_sha256")
    if not ours:
        raise UserError(
            "the run's report does not record which model it measured (no weights sha256), so "
            "no device row can be shown to be of the same model",
            path=path,
            fix="validate the run again with this dense-edge, then merge",
        )
    if theirs != ours:
        raise UserError(
            "this device report measured a kit of another model (weights sha256 "
            f"{theirs[:12]}..., this run's {ours[:12]}...)",
            path=path,
            fix="merge it into the run its kit was exported from (--run)",
        )
    entry = engine_entry(device, path)
    engines = []
    for e in report["engines"]:
        if e["name"] == entry["name"] and _replaceable(e, entry):
            continue
        engines.append(e)
    names = {e["name"] for e in engines}
    if entry["name"] in names:  # a row it did not measure keeps its place: the device row is
        host = entry["measured_on"]["host"]  # named after its device
        entry["name"] = f"{entry['name']}@{host}"
        if entry["name"] in names:
            raise UserError(
                f"the report already has a row {entry['name']!r} that this device report did "
                "not measure",
                path=path,
                fix="merge it into a fresh copy of the run's report (validate again)",
            )
    entry["is_reference"] = False
    budgets_mod.check_row(entry, budgets_mod.Budgets.of(report))
    engines.append(entry)
    targets = list(dict.fromkeys(e["target"] for e in engines if not e.get("is_reference")))
    return verdict_mod.decide_again(report, engines, targets)


def merge_into_run(device_path: Path, report_dir: Path) -> Report:
    """Merge the device report at ``device_path`` into ``report_dir/report.json``; re-render."""
    device = load_device_report(device_path)
    kitseal.check(device, report_dir.parent, device_path)  # the kit is the one the run wrote
    merged = merge(load(report_dir / REPORT_FILE), device, device_path)
    write_reports(merged, report_dir)
    return merged
