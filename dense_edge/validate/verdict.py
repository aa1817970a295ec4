"""The decision a report carries: is the reference sound, which engine to ship, does the run pass.

- **Reference check**: agreement with a useless float model is trivially high, so the float
  model is judged first: top-1 within ``CHANCE_MARGIN_POINTS`` of chance (1 / classes), or below
  the recipe's ``validate.min_reference_top1``, makes the reference unsound.
- **Recommendation**, per target: the fastest engine (p50 at the recipe's
  ``validate.decision_batch``) that meets every budget, with the reason.
- **Verdict** of the run: ``PASSED`` only when the reference is sound, every requested engine was
  built and measured, and every engine meets every budget; ``FAILED`` when a budget broke or the
  reference is unsound; otherwise ``INCOMPLETE`` (an engine only has a build kit here, a requested
  engine was not built, a budget could not be checked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dense_edge.records import (
    EngineRow,
    EvaluationSummary,
    Latency,
    Recommendation,
    ReferenceCheck,
    Report,
    Verdict,
    Violation,
)
from dense_edge.validate.budgets import describe_check

CHANCE_MARGIN_POINTS = 5.0


def reference_check(
    top1: float | None,
    num_classes: int,
    min_top1: float | None,
    evaluation: EvaluationSummary,
    zero_classes: list[str] | None = None,
) -> ReferenceCheck:
    """Whether the float model is good enough to judge engines against."""
    chance = 1.0 / num_classes

    def found(status: Literal["sound", "unsound", "unverified"], message: str) -> ReferenceCheck:
        return {
            "top1_fraction": top1,
            "chance_top1_fraction": round(chance, 6),
            "chance_margin_points": CHANCE_MARGIN_POINTS,
            "min_top1_fraction": min_top1,
            "split": evaluation.get("split"),
            "samples": evaluation.get("samples"),
            "classes_never_right": list(zero_classes or []),
            "status": status,
            "message": message,
        }

    if top1 is None:
        return found("unverified", "no labelled data: the float model's own accuracy is "
                     "unknown, so agreement with it proves nothing about accuracy")  # fmt: skip
    where = f"on {evaluation.get('samples')} images of the {evaluation.get('split')} split"
    if top1 * 100 < chance * 100 + CHANCE_MARGIN_POINTS:
        message = (
            f"the float reference itself is the problem: its top-1 is {top1 * 100:.1f}% {where}, "
            f"within {CHANCE_MARGIN_POINTS:g} points of chance ({chance * 100:.1f}% for "
            f"{num_classes} classes); agreement with it means nothing. Fix the model or its data "
            f"(training, labels, class folders) before judging engines"
        )
        return found("unsound", message)
    if min_top1 is not None and top1 < min_top1:
        message = (
            f"the float reference itself is the problem: its top-1 is {top1 * 100:.1f}% {where}, "
            f"below validate.min_reference_top1 = {min_top1 * 100:.1f}%. Fix the model or its "
            f"data before judging engines"
        )
        return found("unsound", message)
    message = f"float top-1 {top1 * 100:.2f}% {where} (chance {chance * 100:.1f}%)"
    if zero_classes:
        message += f"; never right on {len(zero_classes)} class(es): {', '.join(zero_classes[:5])}"
    return found("sound", message)


def _p50(e: EngineRow, batch: str) -> float | None:
    lat = e.get("latency", {}).get(batch)
    return None if lat is None else float(lat["p50_ms"])


def recommendations(
    engines: Sequence[EngineRow],
    targets: list[str],
    batch: int,
    reference: ReferenceCheck,
) -> list[Recommendation]:
    """Per target, the engine to ship and why (``engine`` is ``None`` when there is none)."""
    out: list[Recommendation] = []
    for target in targets:
        # a stand-in row (a TensorRT kit run by ONNX Runtime) is shown, never recommended
        mine = [e for e in engines if e["target"] == target and not e.get("stand_in")]
        if reference["status"] == "unsound":
            why = "none: the float reference is unsound, no engine can be judged"
            out.append({"target": target, "batch": batch, "engine": None, "p50_ms": None,
                        "reason": why})  # fmt: skip
        else:
            out.append(_recommend(target, mine, batch))
    return out


def _recommend(target: str, mine: list[EngineRow], batch: int) -> Recommendation:
    """The engine of ``target`` to ship at ``batch``, among its rows ``mine``, and why."""
    b = str(batch)
    kits = [e for e in mine if e.get("status") == "kit"]
    measured = [e for e in mine if e.get("status", "measured") == "measured"]
    good = [e for e in measured if e.get("budget_status") == "pass" and _p50(e, b) is not None]
    if not good:
        if measured:
            why = "; ".join(f"{e['name']} {e.get('budget_status')}" for e in measured)
            reason = f"none: no {target} engine meets every budget ({why})"
        elif kits:
            names = ", ".join(e["name"] for e in kits)
            reason = (
                f"none measured: {names} kit written, not built here; build and validate "
                f"on the device, then dense-edge report merge"
            )
        else:
            reason = f"none: no {target} engine was measured at batch {batch}"
        return {"target": target, "batch": batch, "engine": None, "p50_ms": None,
                "reason": reason}  # fmt: skip
    good.sort(key=lambda e: _p50(e, b) or 0.0)
    # Engines whose median intervals overlap the fastest's are tied on speed: a re-run could
    # order them either way. Among them the choice is stable: the smallest top-1 drop, then
    # the smallest engine, then the name.
    fastest = _interval(good[0]["latency"][b])
    tied = [e for e in good if _interval(e["latency"][b])[0] <= fastest[1]]
    best = min(tied, key=_tie_break)
    lat = best["latency"][b]
    low, high = _interval(lat)
    others = [e for e in good if e is not best]
    if len(tied) > 1:
        names = ", ".join(f"{e['name']} ({e['latency'][b]['p50_ms']:.3g} ms)"
                          for e in tied if e is not best)  # fmt: skip
        reason = (f"tied on speed with {names} at batch {batch} (overlapping 95% intervals); "
                  f"chosen for {_why_tied(best, tied)}: p50 {lat['p50_ms']:.3g} ms (95% CI "
                  f"{low:.3g}-{high:.3g})")  # fmt: skip
    else:
        reason = (f"fastest of {len(good)} {target} engine(s) meeting every budget at batch "
                  f"{batch}: p50 {lat['p50_ms']:.3g} ms (95% CI {low:.3g}-"
                  f"{high:.3g})")  # fmt: skip
        if others:
            second = others[0]
            lat2 = second["latency"][b]
            reason += (f"; {lat2['p50_ms'] / lat['p50_ms']:.2f}x faster than "
                       f"{second['name']} ({lat2['p50_ms']:.3g} ms)")  # fmt: skip
    drop = best["accuracy"].get("top1_drop_points")
    if drop is not None:
        reason += f"; top-1 drop {drop:.2f} points"
    return {"target": target, "batch": batch, "engine": best["name"], "p50_ms": lat["p50_ms"],
            "reason": reason}  # fmt: skip


def _interval(lat: Latency) -> tuple[float, float]:
    """A median's 95% interval (the median itself, where a device report gave none)."""
    low, high = lat.get("p50_ci_low_ms"), lat.get("p50_ci_high_ms")
    return (lat["p50_ms"] if low is None else low, lat["p50_ms"] if high is None else high)


def _tie_break(e: EngineRow) -> tuple[float, int, str]:
    drop = e["accuracy"].get("top1_drop_points")
    return (drop if drop is not None else 0.0, int(e.get("size_bytes") or 0), e["name"])


def _why_tied(best: EngineRow, tied: list[EngineRow]) -> str:
    drops = {_tie_break(e)[0] for e in tied}
    if len(drops) > 1:
        return "the smallest top-1 drop among them"
    sizes = {_tie_break(e)[1] for e in tied}
    return "the smallest size among them" if len(sizes) > 1 else "its name (all else equal)"


def verdict(
    reference: ReferenceCheck, engines: Sequence[EngineRow], missing: list[str]
) -> tuple[Verdict, list[str]]:
    """``PASSED``/``FAILED``/``INCOMPLETE`` and the reasons (empty when PASSED)."""
    failed, incomplete = [], []
    if reference["status"] == "unsound":
        failed.append(reference["message"])
    elif reference["status"] == "unverified":
        incomplete.append(reference["message"])
    for e in engines:
        if e.get("is_reference") or e.get("stand_in"):
            continue
        if e.get("status") == "kit":
            incomplete.append(f"{e['name']}: kit written, not built here ({e.get('kit_path')})")
            continue
        state = e.get("budget_status")
        if state == "fail":
            broken = [c for c in e.get("budget_checks", []) if c["status"] == "fail"]
            failed += [f"{e['name']}: {describe_check(c)}" for c in broken]
        elif state == "unverified":
            unverified = [c for c in e.get("budget_checks", []) if c["status"] == "unverified"]
            incomplete += [f"{e['name']}: {describe_check(c)}" for c in unverified]
    for name in missing:
        incomplete.append(f"{name}: requested but not built (dense-edge compile or run)")
    if failed:
        return "FAILED", failed + incomplete
    if incomplete:
        return "INCOMPLETE", incomplete
    return "PASSED", []


def violations(engines: Sequence[EngineRow]) -> list[Violation]:
    """Every budget check of every row that did not pass, with its engine's name."""
    return [
        {"engine": e["name"], **c}
        for e in engines
        for c in e.get("budget_checks", [])
        if c["status"] != "pass"
    ]


@dataclass(frozen=True)
class Decision:
    """What a report concludes from its rows: violations, recommendations and verdict."""

    violations: list[Violation]
    recommendations: list[Recommendation]
    verdict: Verdict
    reasons: list[str]


def decide(
    reference: ReferenceCheck,
    engines: Sequence[EngineRow],
    targets: list[str],
    batch: int,
    missing: list[str],
) -> Decision:
    """Violations, recommendations (per target, at ``batch``) and the verdict of a report's rows."""
    state, reasons = verdict(reference, engines, missing)
    recs = recommendations(engines, targets, batch, reference)
    return Decision(violations(engines), recs, state, reasons)


def decide_again(report: Report, engines: list[EngineRow], targets: list[str]) -> Report:
    """``report`` with ``engines`` as its rows and its conclusions drawn again from them (rows
    added after validation: kit and device rows)."""
    batch = int(report.get("benchmark", {}).get("decision_batch", 1))
    missing = report.get("missing_engines", [])
    d = decide(report["reference_check"], engines, targets, batch, missing)
    return {
        **report,
        "engines": engines,
        "violations": d.violations,
        "recommendations": d.recommendations,
        "verdict": d.verdict,
        "verdict_reasons": d.reasons,
        "passed": d.verdict == "PASSED",
    }
