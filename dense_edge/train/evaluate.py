"""Running a PyTorch model over an image set: logits in batches, and their top-1
(:func:`dense_edge.accuracy.top1`)."""

from __future__ import annotations

import numpy as np
import torch

from dense_edge.accuracy import top1
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


def evaluate(
    model: torch.nn.Module, images: ImageSet, preprocess: Preprocess, **kw: object
) -> float:
    logits = predict_logits(model, images, preprocess, **kw)  # type: ignore[arg-type]
    return top1(logits, images.labels)
