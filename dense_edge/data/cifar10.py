"""CIFAR-10 from the python batch folder a user already has (``cifar-10-batches-py``).

The batches are pickles; they are read with an unpickler that admits only the numpy types the
format needs, so a crafted file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.data.imageset import ArrayImageSet, Splits, check_labels, stratified_split
from dense_edge.errors import DataError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
DEFAULT_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_batch(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise DataError(
            "CIFAR-10 batch not found", path=path, fix="point data.root at cifar-10-batches-py"
        )
    try:
        with open(path, "rb") as fh:
            raw = _SafeUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"not a CIFAR-10 python batch ({exc})", path=path) from None
    if not isinstance(raw, dict):
        raise DataError("not a CIFAR-10 python batch (expected a dict)", path=path)
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _images_labels(batch: dict[str, Any], path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(batch.get("data"))
    labels = np.asarray(batch.get("labels", batch.get("fine_labels", [])), dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
        raise DataError(
            f"expected uint8 rows of 3072 pixels, got {data.dtype} {data.shape}", path=path
        )
    if len(labels) != len(data):
        raise DataError(f"{len(data)} images but {len(labels)} labels", path=path)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def load(root: str | Path, val_fraction: float, split_seed: int) -> Splits:
    root = Path(root)
    if not root.exists():
        raise DataError("CIFAR-10 folder not found", path=root, fix="check data.root")
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    classes = DEFAULT_CLASSES
    meta = root / "batches.meta"
    if meta.exists():
        names = _read_batch(meta).get("label_names")
        if names:
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    xs, ys = [], []
    for name in TRAIN_BATCHES:
        x, y = _images_labels(_read_batch(root / name), root / name)
        check_labels(y, len(classes), str(root / name))
        xs.append(x)
        ys.append(y)
    x_test, y_test = _images_labels(_read_batch(root / "test_batch"), root / "test_batch")
    check_labels(y_test, len(classes), str(root / "test_batch"))
    train_all = ArrayImageSet(np.concatenate(xs), np.concatenate(ys), "cifar10-train")
    tr, va = stratified_split(train_all.labels, [val_fraction], split_seed)
    return Splits(
        train=train_all.subset(tr),
        val=train_all.subset(va),
        test=ArrayImageSet(x_test, y_test, "cifar10-test"),
        classes=list(classes),
        source=f"cifar10:{root}",
    )
