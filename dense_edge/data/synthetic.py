"""Synthetic images for tests only: each class is a bright square at its own place on noise."""

from __future__ import annotations

import numpy as np

from dense_edge.data.imageset import ArrayImageSet, Splits, stratified_split


def make(n: int, hw: tuple[int, int], channels: int, num_classes: int, seed: int) -> ArrayImageSet:
    rng = np.random.default_rng(seed)
    h, w = hw
    labels = np.arange(n) % num_classes
    images = rng.integers(0, 60, size=(n, h, w, channels), dtype=np.uint8)
    side = max(1, min(h, w) // 3)
    for i, c in enumerate(labels):
        top = (c * 7) % max(1, h - side + 1)
        left = (c * 3) % max(1, w - side + 1)
        images[i, top : top + side, left : left + side] = 220
    return ArrayImageSet(images, labels, name="synthetic")


def load(
    n: int,
    hw: tuple[int, int],
    channels: int,
    num_classes: int,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> Splits:
    full = make(n, hw, channels, num_classes, split_seed)
    tr, va, te = stratified_split(full.labels, [val_fraction, test_fraction], split_seed)
    return Splits(
        full.subset(tr),
        full.subset(va),
        full.subset(te),
        [f"class{i}" for i in range(num_classes)],
        "synthetic",
    )
