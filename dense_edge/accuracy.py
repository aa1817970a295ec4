"""The one accuracy record and the one budget check: top-1, top-1 drop and agreement.

Training, validation, the quick check after ``export --target``, calibration (its record and
its accuracy-aware search) and the report all score a model here, so "top-1 drop 0.28 points"
means the same everywhere:

- ``top1``: fraction of labelled images whose arg-max is the label (``correct``: how many);
- ``top1_drop_points``: float top-1 minus the candidate's, in percentage points (positive =
  worse than float);
- ``agreement``: fraction of images whose arg-max equals the float model's.

:func:`compare_top1` makes the record from logits (or predicted classes); :func:`judge` checks
one value against one budget; :class:`AccuracyBudget` holds the accuracy budgets and checks a
record against them (what calibration's accuracy-aware search asks of each candidate; the
validation budgets extend it with latency). :func:`calibration_accuracy` turns a comparison into
calibration.json's ``validation`` record.
numpy and :mod:`dense_edge.records` only: every stage may import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from dense_edge.records import CalibrationAccuracy

Status = Literal["pass", "fail", "unverified"]
EPS = 1e-12  # a value this close to its limit meets it: rounding is never a failure


def predictions(outputs: np.ndarray) -> np.ndarray:
    """Predicted classes: the arg-max of 2-D logits, or 1-D classes as they are."""
    out = np.asarray(outputs)
    return out if out.ndim == 1 else out.reshape(len(out), -1).argmax(1)


def correct(outputs: np.ndarray, labels: np.ndarray) -> int:
    """How many images' predicted class is the label (logits or predicted classes)."""
    return int((predictions(outputs) == np.asarray(labels)).sum())


def top1(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of images whose predicted class is the label (logits or predicted classes)."""
    if len(labels) == 0:
        return float("nan")
    return correct(outputs, labels) / len(labels)


def agreeing(reference: np.ndarray, candidate: np.ndarray) -> int:
    """How many images' predicted class is the reference's (logits or predicted classes)."""
    return int((predictions(reference) == predictions(candidate)).sum())


def top1_drop_points(reference_top1: float, top1: float) -> float:
    """Top-1 lost against the reference, in percentage points (positive = worse)."""
    return (reference_top1 - top1) * 100


@dataclass(frozen=True)
class Top1Comparison:
    """A candidate (engine, int8 model) against its float reference on the same images."""

    samples: int
    agreement: float  # fraction of images whose top-1 equals the reference's
    reference_top1: float | None  # None without labels
    top1: float | None
    top1_drop_points: float | None  # reference top-1 minus candidate top-1, in points


def compare_top1(
    reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None
) -> Top1Comparison:
    """Agreement and (with labels) top-1 and top-1 drop of ``candidate`` against ``reference``;
    each is logits ``[N, classes]`` or predicted classes ``[N]``."""
    ref, got = predictions(reference), predictions(candidate)
    if ref.shape != got.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape}, candidate {got.shape}")
    agree = agreeing(ref, got) / len(ref) if len(ref) else 1.0
    if labels is None:
        return Top1Comparison(len(ref), agree, None, None, None)
    f_top1, c_top1 = top1(ref, labels), top1(got, labels)
    return Top1Comparison(len(ref), agree, f_top1, c_top1, top1_drop_points(f_top1, c_top1))


def judge(budget: str, limit: float, value: float | None) -> Status:
    """One value against one budget: ``max_*`` budgets are upper limits, ``min_*`` lower ones;
    no value (nothing to measure it on) is ``unverified``, never a pass."""
    if value is None:
        return "unverified"
    if budget.startswith("max"):
        return "pass" if value <= limit + EPS else "fail"
    return "pass" if value >= limit - EPS else "fail"


@dataclass(frozen=True)
class AccuracyBudget:
    """The accuracy budgets: top-1 drop (points) and agreement with the float model (fraction);
    ``None`` is not set."""

    max_top1_drop: float | None = None  # points of top-1 lost against the float model
    min_agreement: float | None = None  # fraction of images whose top-1 equals the float's

    def met(self, comparison: Top1Comparison) -> bool:
        """True when every budget that is set passes (an unmeasurable one does not)."""
        checks = []
        if self.max_top1_drop is not None:
            checks.append(judge("max_top1_drop", self.max_top1_drop, comparison.top1_drop_points))
        if self.min_agreement is not None:
            checks.append(judge("min_agreement", self.min_agreement, comparison.agreement))
        return all(c == "pass" for c in checks)


def calibration_accuracy(
    comparison: Top1Comparison, *, split: str, runtime: str
) -> CalibrationAccuracy:
    """calibration.json's ``validation`` record: an int8 model against its float model on a
    labelled split (``runtime`` says what ran both)."""
    if comparison.reference_top1 is None or comparison.top1 is None:
        raise ValueError("calibration accuracy needs labels")
    drop = comparison.top1_drop_points
    assert drop is not None  # labelled
    return {
        "split": split,
        "samples": comparison.samples,
        "runtime": runtime,
        "float_top1": round(comparison.reference_top1, 5),
        "int8_top1": round(comparison.top1, 5),
        "top1_drop_points": round(drop, 3),
        "agreement": round(comparison.agreement, 5),
    }
