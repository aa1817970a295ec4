"""Accuracy of a model's logits on labelled images, and against the float model's logits."""

from __future__ import annotations

from typing import Any

import numpy as np

from dense_edge.compare import agreement


def topk(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    if len(labels) == 0:
        return float("nan")
    k = min(k, logits.shape[1])
    best = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((best == labels[:, None]).any(axis=1).mean())


def per_class(pred: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    acc = np.full(n_classes, np.nan)
    for c in range(n_classes):
        mask = labels == c
        if mask.any():
            acc[c] = float((pred[mask] == c).mean())
    return acc


def evaluate(
    logits: np.ndarray,
    labels: np.ndarray | None,
    reference: np.ndarray,
    classes: list[str],
) -> dict[str, Any]:
    """Top-1/top-5, agreement and logit errors against ``reference``, per-class deltas."""
    a = agreement(reference, logits)
    out: dict[str, Any] = {
        "agreement": round(a.top1_agreement, 6),
        "cosine": round(a.cosine, 8),
        "min_cosine": round(a.min_cosine, 8),
        "max_abs_error": round(a.max_abs_error, 8),
        "mean_abs_error": round(a.mean_abs_error, 8),
    }
    if labels is None:
        return out
    ref_pred, pred = reference.argmax(1), logits.argmax(1)
    top1, ref_top1 = float((pred == labels).mean()), float((ref_pred == labels).mean())
    out.update(
        top1=round(top1, 6),
        top5=round(topk(logits, labels, 5), 6),
        top1_drop_points=round((ref_top1 - top1) * 100, 4),
    )
    mine = per_class(pred, labels, len(classes))
    theirs = per_class(ref_pred, labels, len(classes))
    deltas: list[dict[str, Any]] = [
        {"class": classes[c], "accuracy": round(float(mine[c]), 6),
         "delta_points": round(float((mine[c] - theirs[c]) * 100), 4)}
        for c in range(len(classes)) if not np.isnan(mine[c])
    ]  # fmt: skip
    out["worst_classes"] = sorted(deltas, key=lambda d: float(d["delta_points"]))[:5]
    return out
