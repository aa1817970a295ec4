"""Accuracy and latency budgets: what a user's CI gates on, checked per engine.

Every budget of every engine gets a check record, passed or not, so a report shows what was
checked, not only what broke:

    {"budget": "max_p99_ms", "batch": 1, "value": 0.41, "limit": 2.0, "unit": "ms",
     "status": "pass" | "fail" | "unverified", "note": null | "why it could not be checked"}

Units: top-1 drop in points (percentage points of top-1 lost against the float model, positive =
worse), agreement as a fraction, latency in ms, speedup as a ratio (x).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from dense_edge.accuracy import AccuracyBudget, judge
from dense_edge.records import BudgetCheck, BudgetLimits, EngineRow, Report, Violation

UNITS = {"max_top1_drop": "points", "min_agreement": "fraction", "max_p99_ms": "ms",
         "min_speedup": "x"}  # fmt: skip


@dataclass(frozen=True)
class Budgets(AccuracyBudget):
    """The accuracy budgets (:class:`dense_edge.accuracy.AccuracyBudget`, the ones calibration's
    search meets too), then latency."""

    max_p99_ms: float | None = None  # at every measured batch size
    min_speedup: float | None = None  # float p50 / engine p50, at every batch size

    @classmethod
    def of(cls, report: Report) -> Budgets:
        """The budgets a report was judged by."""
        return cls(**report.get("budgets", {}))

    def to_dict(self) -> BudgetLimits:
        return {"max_top1_drop": self.max_top1_drop, "min_agreement": self.min_agreement,
                "max_p99_ms": self.max_p99_ms, "min_speedup": self.min_speedup}  # fmt: skip


def _check(
    budget: str, limit: float, value: float | None, batch: int | None, note: str | None = None
) -> BudgetCheck:
    return {
        "budget": budget,
        "batch": batch,
        "value": value,
        "limit": limit,
        "unit": UNITS[budget],
        "status": judge(budget, limit, value),
        "note": note if value is None else None,
    }


def checks(engine: EngineRow, b: Budgets) -> list[BudgetCheck]:
    """Every set budget of one measured engine entry, each with its status."""
    out = []
    acc = engine.get("accuracy", {})
    if b.max_top1_drop is not None:
        out.append(_check("max_top1_drop", b.max_top1_drop, acc.get("top1_drop_points"), None,
                          "no labelled data to measure top-1"))  # fmt: skip
    if b.min_agreement is not None:
        out.append(_check("min_agreement", b.min_agreement, acc.get("agreement_fraction"), None))
    for batch, lat in sorted(engine.get("latency", {}).items(), key=lambda kv: int(kv[0])):
        if b.max_p99_ms is not None:
            note = f"only {lat['iterations']} samples; p99 needs more (raise validate.iterations)"
            out.append(_check("max_p99_ms", b.max_p99_ms, lat.get("p99_ms"), int(batch), note))
        if b.min_speedup is not None:
            speed = engine.get("speedup", {}).get(batch)
            out.append(_check("min_speedup", b.min_speedup, speed, int(batch), "no float time"))
    return out


def check_row(row: EngineRow, b: Budgets) -> None:
    """Check every budget on an engine row (measured here or on a device): sets its
    ``budget_checks`` and ``budget_status``."""
    row["budget_checks"] = checks(row, b)
    row["budget_status"] = status(row["budget_checks"])


def status(checks_: list[BudgetCheck]) -> str:
    """``fail`` if any check failed, else ``unverified`` if any could not be made, else ``pass``."""
    states = {c["status"] for c in checks_}
    return "fail" if "fail" in states else ("unverified" if "unverified" in states else "pass")


def fmt_value(v: float | None, unit: str) -> str:
    """A budget value as people read it: points with 2 decimals, fractions as percent."""
    if v is None:
        return "n/a"
    if unit == "fraction":
        return f"{v * 100:.2f}%"
    if unit == "points":
        return f"{v:.2f} points"
    if unit == "x":
        return f"{v:.2f}x"
    return f"{v:.3g} ms"


_NAMES = {"max_top1_drop": "top-1 drop", "min_agreement": "agreement", "max_p99_ms": "p99",
          "min_speedup": "speedup"}  # fmt: skip


def fmt_pair(value: float | None, limit: float, unit: str) -> tuple[str, str]:
    """Value and limit as people read them, with as many decimals as it takes for the two to
    differ when they do (1.005 against 1.00 reads ``1.005 points``, never ``1.00 points``)."""
    if value is None or not math.isfinite(value) or value == limit:
        return fmt_value(value, unit), fmt_value(limit, unit)
    for digits in range(2, 8):
        a, b = _fmt_digits(value, unit, digits), _fmt_digits(limit, unit, digits)
        if a != b:
            return a, b
    return fmt_value(value, unit), fmt_value(limit, unit)


def _fmt_digits(v: float, unit: str, digits: int) -> str:
    if unit == "fraction":
        return f"{v * 100:.{digits}f}%"
    if unit == "points":
        return f"{v:.{digits}f} points"
    if unit == "x":
        return f"{v:.{digits}f}x"
    return f"{v:.{digits + 1}g} ms"


def describe_check(c: BudgetCheck) -> str:
    """``top-1 drop 0.28 points (limit <= 1.00 points): pass``: the value, then the rule it
    must meet, then the verdict, so a failing line never reads as a true inequality."""
    at = f" at batch {c['batch']}" if c.get("batch") else ""
    op = "<=" if c["budget"].startswith("max") else ">="
    value, limit = fmt_pair(c["value"], c["limit"], c["unit"])
    text = f"{_NAMES[c['budget']]}{at} {value} (limit {op} {limit}): {c['status']}"
    return text + (f" ({c['note']})" if c.get("note") else "")


def describe(v: Violation) -> str:
    """One broken or unverified budget of an engine, for people."""
    return f"{v['engine']}: {describe_check(v)}"


def describe_budgets(b: Mapping[str, object]) -> str:
    """The budgets a report was judged by (its ``budgets``), for people."""
    parts = [f"{_NAMES[k]} {'<=' if k.startswith('max') else '>='} {fmt_value(v, UNITS[k])}"
             for k, v in b.items() if isinstance(v, (int, float)) and k in UNITS]  # fmt: skip
    return ", ".join(parts) or "none set"
