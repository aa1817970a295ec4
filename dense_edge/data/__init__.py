"""Data sources and the one preprocessing definition.

Sources: ``digits`` (scikit-learn's bundled handwritten digits), ``imagefolder`` (one folder per
class), ``cifar10`` (the python batch folder), ``synthetic`` (tests only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dense_edge.data import cifar10, digits, imagefolder, synthetic
from dense_edge.data.imageset import (
    ArrayImageSet,
    FileImageSet,
    ImageSet,
    Splits,
    check_labels,
    stratified_split,
)
from dense_edge.errors import DataError
from dense_edge.models.registry import check_input_size, get_config
from dense_edge.preprocess import Preprocess, for_config

if TYPE_CHECKING:
    from dense_edge.recipe import Recipe

__all__ = [
    "ArrayImageSet",
    "FileImageSet",
    "ImageSet",
    "Preprocess",
    "Splits",
    "load_splits",
    "preprocess_for",
]


def preprocess_for(recipe: Recipe) -> Preprocess:
    """The architecture's default preprocessing with the recipe's overrides applied."""
    config = get_config(recipe.model.arch)
    over = recipe.preprocess
    size = tuple(over.input_size) if over.input_size else None
    base = for_config(config, size)  # type: ignore[arg-type]
    values = base.to_dict()
    for key in ("resize", "crop", "color", "channel_order", "interpolation", "mean", "std"):
        v = getattr(over, key)
        if v is not None:
            values[key] = v
    if over.color is not None and over.mean is None:
        channels = 1 if over.color == "L" else 3
        if len(values["mean"]) != channels:
            values["mean"] = [sum(values["mean"]) / len(values["mean"])] * channels
            values["std"] = [sum(values["std"]) / len(values["std"])] * channels
    pre = Preprocess.from_dict(values)
    check_input_size(config, pre.input_size)
    return pre


def load_splits(recipe: Recipe, preprocess: Preprocess | None = None) -> Splits:
    """Train/val/test splits of the recipe's data source, labels checked against the classes."""
    d = recipe.data
    pre = preprocess or preprocess_for(recipe)
    if d.source in ("imagefolder", "cifar10") and not d.root:
        raise DataError(
            f"data.root is not set: the {d.source} source needs a folder",
            fix="pass --data-root DIR or --set data.root=DIR",
        )
    if d.source == "digits":
        splits = digits.load(d.val_fraction, d.test_fraction, d.split_seed)
    elif d.source == "imagefolder":
        assert d.root is not None
        splits = imagefolder.load(
            d.root, pre, d.val_fraction, d.test_fraction, d.split_seed, d.skip_corrupt
        )
    elif d.source == "cifar10":
        assert d.root is not None
        splits = cifar10.load(d.root, d.val_fraction, d.split_seed)
    else:
        n_classes = recipe.model.num_classes or 10
        splits = synthetic.load(
            d.synthetic_samples,
            pre.input_size,
            pre.channels,
            n_classes,
            d.val_fraction,
            d.test_fraction,
            d.split_seed,
        )
    if d.limit is not None:
        splits.train = _limit(splits.train, d.limit)
        splits.val = _limit(splits.val, d.limit)
        splits.test = _limit(splits.test, d.limit)
    for name in ("train", "val", "test"):
        check_labels(splits.split(name).labels, len(splits.classes), f"{splits.source} {name}")
    return splits


def _limit(images: ImageSet, n: int) -> ImageSet:
    if len(images) <= n:
        return images
    import numpy as np

    keep = stratified_split(images.labels, [n / len(images)], 0)[1]
    return images.subset(np.sort(keep))
