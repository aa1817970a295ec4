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
from pathlib import Path
from typing import Any

from dense_edge.errors import UserError
from dense_edge.records import REPORT_FILE, Report
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
    return data


KIT_TARGETS = tuple(t.name for t in all_targets() if t.writes_kits)  # what device reports measure


def engine_entry(device: dict[str, Any], path: Path) -> dict[str, Any]:
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


def _today(lat: dict[str, Any]) -> dict[str, Any]:
    """A device latency entry under today's clock names, with its wall-clock median where known
    (device reports made before the clock had one name per runtime spell it otherwise)."""
    out = {**lat, "clock": clock_of(lat)}
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
    theirs = device["kit"].get("run", {}).get("weights_sha256")
    ours = report.get("model", {}).get("weights_sha256")
    if theirs and ours and theirs != ours:
        raise UserError(
            "this device report measured a kit of another model (weights sha256 "
            f"{theirs[:12]}..., this run's {ours[:12]}...)",
            path=path,
            fix="merge it into the run its kit was exported from (--run)",
        )
    entry = engine_entry(device, path)
    host = entry["measured_on"]["host"]
    engines = []
    for e in report["engines"]:
        same = e["name"] == entry["name"]
        replaced = same and (
            e.get("status") == "kit" or (e.get("measured_on") or {}).get("host") == host
        )
        if replaced:
            continue
        if same:  # an engine measured here keeps its row: the device row gets its own name
            entry["name"] = f"{entry['name']}@{host}"
        engines.append(e)
    budgets = budgets_mod.Budgets(**report.get("budgets", {}))
    entry["is_reference"] = False
    entry["budget_checks"] = budgets_mod.checks(entry, budgets)
    entry["budget_status"] = budgets_mod.status(entry["budget_checks"])
    engines.append(entry)
    violations = [
        {"engine": e["name"], **c}
        for e in engines
        for c in e.get("budget_checks", [])
        if c["status"] != "pass"
    ]
    reference = report["reference_check"]
    state, reasons = verdict_mod.verdict(reference, engines, report.get("missing_engines", []))
    targets = list(dict.fromkeys(e["target"] for e in engines if not e.get("is_reference")))
    batch = int(report.get("benchmark", {}).get("decision_batch", 1))
    return {
        **report,
        "engines": engines,
        "violations": violations,
        "recommendations": verdict_mod.recommendations(engines, targets, batch, reference),
        "verdict": state,
        "verdict_reasons": reasons,
        "passed": state == "PASSED",
    }


def merge_into_run(device_path: Path, report_dir: Path) -> Report:
    """Merge the device report at ``device_path`` into ``report_dir/report.json``; re-render."""
    device = load_device_report(device_path)
    kitseal.check(device, report_dir.parent, device_path)  # the kit is the one the run wrote
    merged = merge(load(report_dir / REPORT_FILE), device, device_path)
    write_reports(merged, report_dir)
    return merged
