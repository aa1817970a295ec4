"""``report compare BASE NEW``: deltas between two reports and regressions beyond tolerance.

Engines are matched by name (``openvino-int8``...). Accuracy regressions are judged anywhere;
latency regressions only between reports from the same machine (CPU model and GPU), because a
latency delta across machines measures the machines. Differences of machine or library versions
are always printed, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dense_edge.errors import UserError


@dataclass(frozen=True)
class Tolerance:
    top1_points: float = 0.5  # top-1 may drop this many points
    agreement: float = 0.01  # agreement with float may drop this much (fraction)
    latency_pct: float = 10.0  # p50/p99 may grow this many percent
    size_pct: float = 10.0  # engine size may grow this many percent

    @classmethod
    def parse(cls, items: tuple[str, ...] | list[str]) -> Tolerance:
        keys = {"top1": "top1_points", "agreement": "agreement", "latency": "latency_pct",
                "size": "size_pct"}  # fmt: skip
        values: dict[str, float] = {}
        for item in items:
            key, sep, text = item.partition("=")
            if not sep or key not in keys:
                raise UserError(
                    f"--tolerance {item!r}: expected one of {', '.join(k + '=N' for k in keys)}",
                    fix="e.g. --tolerance top1=0.5 --tolerance latency=10%",
                )
            try:
                values[keys[key]] = float(text.rstrip("%"))
            except ValueError:
                raise UserError(f"--tolerance {item!r}: {text!r} is not a number") from None
        return cls(**values)


@dataclass
class Row:
    engine: str
    metric: str
    base: float | None
    new: float | None
    delta: str
    status: str  # "ok", "REGRESSION", "improved", "not compared"


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status == "REGRESSION"]


def _machine(report: dict[str, Any]) -> tuple[str, str]:
    env = report["environment"]
    gpu = env.get("gpu") or {}
    return env["cpu"]["model"], gpu.get("name", "no GPU")


def compare(
    base: dict[str, Any], new: dict[str, Any], tol: Tolerance, *, across_machines: bool = False
) -> Comparison:
    out = Comparison()
    same_machine = _machine(base) == _machine(new)
    if not same_machine:
        out.notes.append(
            f"different machines: {_machine(base)} vs {_machine(new)}; latency is "
            + ("compared anyway (--across-machines)" if across_machines else "not judged")
        )
    vb, vn = base["environment"]["versions"], new["environment"]["versions"]
    changed = [
        f"{k} {vb.get(k)} -> {vn.get(k)}"
        for k in sorted(set(vb) | set(vn))
        if vb.get(k) != vn.get(k)
    ]
    if changed:
        out.notes.append("library versions differ: " + ", ".join(changed))
    if base["model"].get("weights_sha256") != new["model"].get("weights_sha256"):
        out.notes.append("the reports are of different model weights")
    if base["evaluation"] != new["evaluation"]:
        out.notes.append("the evaluation data differ (split, samples or source)")
    judge_latency = same_machine or across_machines

    engines_b = {e["name"]: e for e in base["engines"]}
    engines_n = {e["name"]: e for e in new["engines"]}
    for name in sorted(set(engines_b) - set(engines_n)):
        # An engine that disappeared is a regression of coverage, not a detail.
        out.rows.append(Row(name, "engine", None, None, "missing in new report", "REGRESSION"))
    for name in sorted(set(engines_n) - set(engines_b)):
        out.notes.append(f"engine {name} is new")
    for name in sorted(set(engines_b) & set(engines_n)):
        b, n = engines_b[name], engines_n[name]
        out.rows += _accuracy_rows(name, b, n, tol)
        for batch in sorted(set(b["latency"]) & set(n["latency"]), key=int):
            for metric in ("p50_ms", "p99_ms"):
                out.rows.append(
                    _pct_row(name, f"{metric[:3]} ms b{batch}", b["latency"][batch][metric],
                             n["latency"][batch][metric], tol.latency_pct, judge=judge_latency)
                )  # fmt: skip
        out.rows.append(
            _pct_row(
                name, "size MiB", b["size_bytes"] / 2**20, n["size_bytes"] / 2**20, tol.size_pct
            )
        )
    return out


def _accuracy_rows(name: str, b: dict[str, Any], n: dict[str, Any], tol: Tolerance) -> list[Row]:
    rows = []
    ab, an = b["accuracy"], n["accuracy"]
    if ab.get("top1") is not None and an.get("top1") is not None:
        d = (an["top1"] - ab["top1"]) * 100
        status = "REGRESSION" if -d > tol.top1_points + 1e-9 else ("improved" if d > 0 else "ok")
        rows.append(Row(name, "top-1", ab["top1"], an["top1"], f"{d:+.2f} pts", status))
    elif ab.get("top1") is not None or an.get("top1") is not None:
        rows.append(Row(name, "top-1", ab.get("top1"), an.get("top1"), "one report has no labels",
                        "not compared"))  # fmt: skip
    d = an["agreement"] - ab["agreement"]
    status = "REGRESSION" if -d > tol.agreement + 1e-9 else ("improved" if d > 0 else "ok")
    rows.append(Row(name, "agreement", ab["agreement"], an["agreement"], f"{d:+.4f}", status))
    return rows


def _pct_row(
    name: str, metric: str, base: float, new: float, pct: float, *, judge: bool = True
) -> Row:
    change = (new - base) / base * 100 if base else 0.0
    if not judge:
        status = "not compared"
    elif change > pct + 1e-9:
        status = "REGRESSION"
    else:
        status = "improved" if change < -pct else "ok"
    return Row(name, metric, round(base, 4), round(new, 4), f"{change:+.1f}%", status)
