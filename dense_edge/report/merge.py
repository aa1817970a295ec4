"""``dense-edge report merge DEVICE_REPORT``: a kit's device measurement joins the run's report.

The device report (written by ``dense-edge kit validate`` on the device) becomes one engine entry
with the same accuracy and latency fields as the engines measured here, plus ``measured_on``:
where, on which GPU and with which TensorRT, CUDA and JetPack it was measured, and the device
report's path. It replaces the run's ``kit`` entry of the same engine (a kit written here but not
built), or an earlier merge from the same host; the budgets are checked on it, and report.md and
report.html are rendered again. A device report of another model is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from dense_edge.errors import UserError
from dense_edge.kits import seal
from dense_edge.kits.device_report import KIT_TARGETS, load_device_report
from dense_edge.records import REPORT_FILE, EngineRow, Latency, MeasuredOn, Report
from dense_edge.report.schema import load
from dense_edge.report.write import write_reports
from dense_edge.targets.registry import TARGETS
from dense_edge.validate import budgets as budgets_mod
from dense_edge.validate import verdict as verdict_mod
from dense_edge.validate.latency import clock_of, wall_p50_of


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
    seal.check(device, report_dir.parent, device_path)  # the kit is the one the run wrote
    merged = merge(load(report_dir / REPORT_FILE), device, device_path)
    write_reports(merged, report_dir)
    return merged
