"""Running a PyTorch model over an image set: logits, top-1, in batches."""

from __future__ import annotations

import numpy as np
import torch

from dense_edge.data.imageset import ImageSet
from dense_edge.preprocess import Preprocess


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    images: ImageSet,
    preprocess: Preprocess,
    *,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = []
    try:
        for x, _ in images.batches(preprocess, batch_size):
            out.append(model(torch.from_numpy(x).to(device)).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out)


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    return float((logits.argmax(1) == labels).mean())


def evaluate(
    model: torch.nn.Module, images: ImageSet, preprocess: Preprocess, **kw: object
) -> float:
    logits = predict_logits(model, images, preprocess, **kw)  # type: ignore[arg-type]
    return top1(logits, images.labels)
