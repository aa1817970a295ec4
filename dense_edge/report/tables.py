"""The report's tables, as rows: shared by the terminal, Markdown and HTML renderers."""

from __future__ import annotations

from typing import Any

SUMMARY_COLUMNS = [
    "engine", "precision", "runs in", "size MiB", "top-1", "top-5", "Δ top-1 pts", "agreement",
    "cosine", "p50 ms b1", "p99 ms b1", "speedup b1", "cold start s", "peak MiB",
]  # fmt: skip


def _fmt(v: Any, digits: int = 4) -> Any:
    if v is None:
        return None
    if isinstance(v, float):
        return round(v, digits)
    return v


def summary_rows(report: dict[str, Any], batch: str | None = None) -> list[list[Any]]:
    rows = []
    batch = batch or str(min(int(b) for b in report["engines"][0]["latency"]))
    for e in report["engines"]:
        acc, lat = e["accuracy"], e["latency"].get(batch, {})
        rows.append([
            e["name"], e["precision"], e["precision_run"], round(e["size_bytes"] / 2**20, 2),
            _fmt(acc.get("top1")), _fmt(acc.get("top5")), _fmt(acc.get("top1_drop_points"), 2),
            _fmt(acc.get("agreement")), _fmt(acc.get("cosine"), 6), _fmt(lat.get("p50_ms"), 3),
            _fmt(lat.get("p99_ms"), 3), _fmt(e["speedup"].get(batch), 2),
            _fmt(e["cold_start_s"], 3), _fmt(e["peak_rss_mib"], 0),
        ])  # fmt: skip
    return rows


LATENCY_COLUMNS = ["engine", "batch", "p50 ms", "p90 ms", "p99 ms", "mean ms", "min ms", "max ms",
                   "images/s", "speedup"]  # fmt: skip


def latency_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for e in report["engines"]:
        for batch, lat in sorted(e["latency"].items(), key=lambda kv: int(kv[0])):
            rows.append([
                e["name"], int(batch), _fmt(lat["p50_ms"], 3), _fmt(lat["p90_ms"], 3),
                _fmt(lat["p99_ms"], 3), _fmt(lat["mean_ms"], 3), _fmt(lat["min_ms"], 3),
                _fmt(lat["max_ms"], 3), _fmt(lat["throughput_ips"], 1),
                _fmt(e["speedup"].get(batch), 2),
            ])  # fmt: skip
    return rows


CLASS_COLUMNS = ["engine", "class", "accuracy", "Δ pts vs float"]


def worst_class_rows(report: dict[str, Any], per_engine: int = 3) -> list[list[Any]]:
    rows = []
    for e in report["engines"]:
        if e["name"].startswith(report["reference"]):
            continue
        for c in e["accuracy"].get("worst_classes", [])[:per_engine]:
            rows.append([e["name"], c["class"], _fmt(c["accuracy"]), _fmt(c["delta_points"], 2)])
    return rows


def environment_lines(report: dict[str, Any]) -> list[str]:
    env = report["environment"]
    cpu = env["cpu"]
    lines = [f"CPU: {cpu['model']} ({cpu.get('logical_cores')} logical cores; "
             f"{', '.join(cpu['flags']) or 'no AVX-512/AMX'})"]  # fmt: skip
    gpu = env.get("gpu")
    lines.append(f"GPU: {gpu['name']} (sm {gpu['compute_capability']})" if gpu else "GPU: none")
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines.append(f"Versions: {versions}")
    return lines
