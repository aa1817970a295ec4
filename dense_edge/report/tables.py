"""The report's tables, as rows: shared by the terminal, Markdown and HTML renderers.

One convention everywhere: accuracy as percentages for people (report.json keeps fractions in
``*_fraction`` fields), "top-1 drop (points)" = float top-1 minus the engine's, positive = worse.
"""

from __future__ import annotations

from typing import Any

from dense_edge.records import EngineRow, Latency, Report
from dense_edge.targets.base import WALL_CLOCK
from dense_edge.targets.registry import TARGETS, all_targets
from dense_edge.validate.budgets import describe_check, fmt_pair
from dense_edge.validate.latency import clock_of, wall_p50_of

KIT_STATUS = "kit written, not built here"


def _fmt(v: Any, digits: int = 4) -> Any:
    if v is None:
        return None
    if isinstance(v, float):
        return round(v, digits)
    return v


def pct(v: float | None, digits: int = 2) -> str | None:
    """A fraction as a percentage for people: 0.99164 -> '99.16%'."""
    return None if v is None else f"{v * 100:.{digits}f}%"


def decision_batch(report: Report) -> str:
    bench = report.get("benchmark", {})
    if bench.get("decision_batch") is not None:
        return str(bench["decision_batch"])
    measured = [e for e in report["engines"] if e.get("latency")]
    return str(min(int(b) for b in measured[0]["latency"])) if measured else "1"


def where(e: EngineRow) -> str:
    """``measured here`` / ``kit written, not built here`` / ``measured on device HOST (GPU)``."""
    if e.get("status") == "kit":
        return KIT_STATUS
    on = e.get("measured_on")
    if on and e.get("stand_in"):
        by = TARGETS.get(str(e.get("target")))
        kit = next((t for t in all_targets() if by and t.kit_stand_in == by.name), None)
        return (f"kit checked with {by.title if by else e.get('target')} on "
                f"{on.get('host', '?')}: not a {kit.title if kit else 'device'} "
                "measurement, not recommended")  # fmt: skip
    if on:
        runtimes = [f"{t.title} {on[t.name]}" for t in all_targets() if on.get(t.name)]
        extra = ", ".join(str(x) for x in (on.get("gpu"), *runtimes) if x)
        ev = e.get("evaluation") or {}
        subset = (f", accuracy on {ev['samples']} of {ev['of']} images"
                  if ev.get("of") and ev.get("samples") != ev["of"] else "")  # fmt: skip
        return (
            f"measured on {on.get('where', 'device')} {on.get('host', '?')}"
            + (f" ({extra})" if extra else "")
            + subset
        )
    return "reference" if e.get("is_reference") else "measured here"


def budget_cell(e: EngineRow) -> str:
    state = e.get("budget_status")
    if e.get("is_reference") or state == "reference":
        return "reference"
    if e.get("status") == "kit":
        return "not built"
    bad = [c for c in e.get("budget_checks", []) if c["status"] != "pass"]
    if not bad:
        return "pass" if e.get("budget_checks") else "pass (no budgets set)"
    return f"{state}: " + "; ".join(describe_check(c).rsplit(":", 1)[0] for c in bad[:2])


def ms(v: float) -> str:
    """Milliseconds with three significant digits, never in scientific notation."""
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}" if v >= 0.001 else f"{v:.4f}"


def p50_cell(lat: Latency) -> str | None:
    if not lat:
        return None
    low, high = lat.get("p50_ci_low_ms"), lat.get("p50_ci_high_ms")
    if low is None or high is None:
        return ms(lat["p50_ms"])
    return f"{ms(lat['p50_ms'])} [{ms(low)}, {ms(high)}]"


def p99_cell(lat: Latency) -> str | None:
    if not lat:
        return None
    p99 = lat.get("p99_ms")
    if p99 is None:
        return f"n={lat['iterations']} too small"
    return ms(p99)


def summary_columns(report: Report) -> list[str]:
    b = decision_batch(report)
    return ["engine", "status", "precision", "runs in", "size MiB", "top-1", "top-5",
            "top-1 drop (points)", "agreement", f"p50 ms b{b} [95% CI]", f"p99 ms b{b}",
            "clock", f"speedup b{b}", "budgets", "cold start s", "peak MiB"]  # fmt: skip


def clock_cell(lat: Latency) -> str | None:
    """Which clock timed a row, in a word: ``wall``, or ``own: <the runtime's clock>`` (which
    leaves out what the wall clock includes, so its p99 reads better than a wall p99)."""
    if not lat:
        return None
    clock = clock_of(lat)
    return "wall" if clock == WALL_CLOCK else f"own: {clock}"


def _count(e: EngineRow, report: Report) -> str:
    """`` (300 images)`` when a row's accuracy is from another number of images than the
    header's, else nothing."""
    n = (e.get("evaluation") or {}).get("samples")
    return f" ({n} images)" if n is not None and n != report["evaluation"].get("samples") else ""


def summary_rows(report: Report, batch: str | None = None) -> list[list[Any]]:
    rows: list[list[Any]] = []
    batch = batch or decision_batch(report)
    for e in report["engines"]:
        if e.get("status") == "kit":
            rows.append([e["name"], f"{KIT_STATUS}: {e.get('kit_path')}", e["precision"]]
                        + [None] * 10 + [budget_cell(e), None, None])  # fmt: skip
            continue
        acc, lat = e["accuracy"], e["latency"].get(batch, {})
        drop = acc.get("top1_drop_points")
        n = _count(e, report)
        top1, agree = pct(acc.get("top1_fraction")), pct(acc.get("agreement_fraction"))
        rows.append([
            e["name"], where(e), e["precision"], e["precision_run"],
            round(e["size_bytes"] / 2**20, 2), top1 and top1 + n,
            pct(acc.get("top5_fraction")), None if drop is None else f"{drop:+.2f}",
            agree and agree + n, p50_cell(lat), p99_cell(lat), clock_cell(lat),
            _fmt(e["speedup"].get(batch), 2), budget_cell(e), _fmt(e.get("cold_start_s"), 3),
            _fmt(e.get("peak_rss_mib"), 0),
        ])  # fmt: skip
    return rows


LATENCY_COLUMNS = ["engine", "batch", "samples", "p50 ms", "p50 95% CI ms", "p90 ms", "p99 ms",
                   "mean ms", "min ms", "max ms", "images/s", "speedup", "clock",
                   "wall p50 ms"]  # fmt: skip


def latency_rows(report: Report) -> list[list[Any]]:
    rows = []
    for e in report["engines"]:
        for batch, lat in sorted(e.get("latency", {}).items(), key=lambda kv: int(kv[0])):
            low, high = lat.get("p50_ci_low_ms"), lat.get("p50_ci_high_ms")
            ci = f"{ms(low)}-{ms(high)}" if low is not None and high is not None else None
            rows.append([
                e["name"], int(batch), lat["iterations"], _fmt(lat["p50_ms"], 3), ci,
                _fmt(lat["p90_ms"], 3), p99_cell(lat), _fmt(lat["mean_ms"], 3),
                _fmt(lat["min_ms"], 3), _fmt(lat["max_ms"], 3), _fmt(lat["throughput_ips"], 1),
                _fmt(e["speedup"].get(batch), 2), clock_of(lat), _fmt(wall_p50_of(lat), 3),
            ])  # fmt: skip
    return rows


BUDGET_COLUMNS = ["engine", "budget", "batch", "value", "limit", "status"]


def clock_note(report: Report) -> str:
    """One sentence on what measured the latencies, engine by engine."""
    by_clock: dict[str, list[str]] = {}
    for e in report["engines"]:
        clocks = {clock_of(lat) for lat in e.get("latency", {}).values()}
        for c in sorted(clocks):
            by_clock.setdefault(c, []).append(e["name"])
    parts = []
    for c, names in sorted(by_clock.items(), key=lambda kv: kv[0] != WALL_CLOCK):
        if c == WALL_CLOCK:
            parts.append(f"the wall clock around each call (Python's call overhead, and on a "
                         f"GPU the copies, included) for {', '.join(names)}")  # fmt: skip
        else:
            parts.append(f"the runtime's own clock ({c}), as its own benchmark tool quotes it, "
                         f"for {', '.join(names)}")  # fmt: skip
    if not parts:
        return ""
    return ("Latency is measured by " + "; by ".join(parts) + ". "
            "The clock column says which timed each row. Speedups compare wall-clock medians "
            "on both sides; the Latency table of report.md/report.html gives every engine's "
            "wall-clock median.")  # fmt: skip


def budget_rows(report: Report) -> list[list[Any]]:
    rows = []
    for e in report["engines"]:
        for c in e.get("budget_checks", []):
            status = c["status"] + (f" ({c['note']})" if c.get("note") else "")
            value, limit = fmt_pair(c["value"], c["limit"], c["unit"])
            op = "<=" if c["budget"].startswith("max") else ">="
            rows.append([e["name"], c["budget"], c.get("batch") or "-", value, f"{op} {limit}",
                         status])  # fmt: skip
    return rows


CLASS_COLUMNS = ["engine", "class", "images", "float correct", "engine correct", "top-1",
                 "top-1 drop (points)"]  # fmt: skip


def worst_class_rows(report: Report, per_engine: int = 3) -> list[list[Any]]:
    """Classes where an engine got fewer images right than the float model, worst first."""
    rows = []
    for e in report["engines"]:
        if e.get("is_reference") or e.get("status") == "kit":
            continue
        for c in e["accuracy"].get("worst_classes", [])[:per_engine]:
            if c["top1_drop_points"] <= 0:
                continue
            rows.append([e["name"], c["class"], c["images"], c["float_correct"], c["correct"],
                         pct(c["top1_fraction"]), f"{c['top1_drop_points']:+.2f}"])  # fmt: skip
    return rows


RECOMMENDATION_COLUMNS = ["target", "ship", "at batch", "p50 ms", "why"]


def recommendation_rows(report: Report) -> list[list[Any]]:
    return [[r["target"], r["engine"] or "none", r["batch"], _fmt(r["p50_ms"], 3), r["reason"]]
            for r in report.get("recommendations", [])]  # fmt: skip


def header_lines(report: Report) -> list[str]:
    """Verdict, reference, evaluation data: what a reader must know before any table."""
    ev = report["evaluation"]
    ref = report.get("reference_check", {})
    lines = [f"verdict: {report['verdict']}"]
    lines += [f"  - {r}" for r in report.get("verdict_reasons", [])]
    split = ev.get("split") or "none"
    origin = ev.get("split_origin")
    lines.append(f"evaluation: {ev['samples']} images, {split} split of {ev['source']}"
                 + (f" ({origin})" if origin and origin != f"{split} split" else ""))  # fmt: skip
    if ev.get("warning"):
        lines.append(f"WARNING: {ev['warning']}")
    if ev.get("skipped_images"):
        lines.append(f"skipped images: {ev['skipped_images']} (data.skip_corrupt)")
    lines.append(f"reference {report['reference']}: {ref.get('status', '?')}: "
                 f"{ref.get('message', '')}")  # fmt: skip
    lines.append(machine_line(report))
    return lines


def machine_line(report: Report) -> str:
    """``timed on: AMD EPYC (2 cores), load average 3.1 at the start, 5.2 at the end``: latency
    is only read beside how busy the machine was."""
    env = report["environment"]
    cpu = env.get("cpu") or {}
    load = env.get("load_average")

    def one(reading: Any) -> str:
        return f"{reading[0]:.2f}" if isinstance(reading, list) and reading else "unknown"

    text = f"timed on: {cpu.get('model', '?')} ({cpu.get('logical_cores', '?')} logical cores)"
    if load:
        text += (f"; load average (1 min) {one(load.get('start'))} at the start, "
                 f"{one(load.get('end'))} at the end")  # fmt: skip
    else:
        text += "; load average not recorded"
    return text


def environment_lines(report: Report) -> list[str]:
    env = report["environment"]
    cpu = env["cpu"]
    lines = [f"CPU: {cpu['model']} ({cpu.get('logical_cores')} logical cores; "
             f"{', '.join(cpu['flags']) or 'no AVX-512/AMX'})"]  # fmt: skip
    gpu = env.get("gpu")
    lines.append(f"GPU: {gpu['name']} (sm {gpu['compute_capability']})" if gpu else "GPU: none")
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines.append(f"Versions: {versions}")
    return lines
