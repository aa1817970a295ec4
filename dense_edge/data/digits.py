"""scikit-learn's handwritten digits: 1,797 real 8x8 grey images of 0-9, bundled with the package.

Pixel values 0..16 are stored as uint8 ``round(v * 255 / 16)``, the same values a PNG of the digit
holds, so the digits read from ``calibration/digits`` and from here preprocess identically.
"""

from __future__ import annotations

import numpy as np

from dense_edge.data.imageset import ArrayImageSet, Splits, stratified_split

CLASSES = [str(i) for i in range(10)]


def load_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, :, :, None]
    return images, bunch.target.astype(np.int64)


def load(val_fraction: float, test_fraction: float, split_seed: int) -> Splits:
    images, labels = load_arrays()
    train_idx, val_idx, test_idx = stratified_split(
        labels, [val_fraction, test_fraction], split_seed
    )
    full = ArrayImageSet(images, labels, name="digits")
    return Splits(
        train=full.subset(train_idx),
        val=full.subset(val_idx),
        test=full.subset(test_idx),
        classes=list(CLASSES),
        source="digits",
    )
