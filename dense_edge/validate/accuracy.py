"""Accuracy of a model's logits on labelled images, and against the float model's logits.

Top-1, top-1 drop and agreement come from :mod:`dense_edge.accuracy` (the one accuracy record);
this module adds what only the report shows: top-5, logit errors and the classes that lost.
"""

from __future__ import annotations

import numpy as np

from dense_edge.accuracy import compare_top1, correct, predictions, top1
from dense_edge.compare import agreement
from dense_edge.records import EngineAccuracy, WorstClass


def topk(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    if len(labels) == 0:
        return float("nan")
    k = min(k, logits.shape[1])
    hits, step = 0, max(1, (1 << 20) // max(1, logits.shape[1]))  # rows at a time: bounded memory
    for i in range(0, len(labels), step):
        best = np.argpartition(-logits[i : i + step], k - 1, axis=1)[:, :k]
        hits += int((best == labels[i : i + step, None]).any(axis=1).sum())
    return hits / len(labels)


def per_class(pred: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    acc = np.full(n_classes, np.nan)
    for c in range(n_classes):
        mask = labels == c
        if mask.any():
            acc[c] = top1(pred[mask], labels[mask])
    return acc


def evaluate(
    logits: np.ndarray,
    labels: np.ndarray | None,
    reference: np.ndarray,
    classes: list[str],
) -> EngineAccuracy:
    """Top-1/top-5, agreement and logit errors against ``reference``, classes that lost accuracy.

    Fractions are in ``*_fraction`` fields; ``top1_drop_points`` is float top-1 minus this
    model's top-1 in percentage points (positive = worse than float).
    """
    a = agreement(reference, logits)
    out: EngineAccuracy = {
        "agreement_fraction": round(a.top1_agreement, 6),
        "cosine": round(a.cosine, 8),
        "min_cosine": round(a.min_cosine, 8),
        "max_abs_error": round(a.max_abs_error, 8),
        "mean_abs_error": round(a.mean_abs_error, 8),
    }
    if labels is None:
        return out
    vs_float = compare_top1(reference, logits, labels)
    assert vs_float.top1 is not None and vs_float.top1_drop_points is not None  # labelled
    out["top1_fraction"] = round(vs_float.top1, 6)
    out["top5_fraction"] = round(topk(logits, labels, 5), 6)
    out["top1_drop_points"] = round(vs_float.top1_drop_points, 4)
    ref_pred, pred = predictions(reference), predictions(logits)
    losses: list[WorstClass] = []
    for c in range(len(classes)):
        mask = labels == c
        n = int(mask.sum())
        mine, theirs = correct(pred[mask], labels[mask]), correct(ref_pred[mask], labels[mask])
        if n and mine < theirs:
            losses.append({"class": classes[c], "images": n, "correct": mine,
                           "float_correct": theirs, "top1_fraction": round(mine / n, 6),
                           "top1_drop_points": round((theirs - mine) / n * 100, 4)})  # fmt: skip
    out["worst_classes"] = sorted(losses, key=lambda d: -float(d["top1_drop_points"]))[:5]
    return out


def classes_never_right(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> list[str]:
    """Classes with images of which the model gets none right."""
    acc = per_class(predictions(logits), labels, len(classes))
    return [classes[c] for c in range(len(classes)) if not np.isnan(acc[c]) and acc[c] == 0.0]
