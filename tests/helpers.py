"""Small real things for the run-folder tests: digit PNG folders, engines, fault injection."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def digit_pngs(root: Path, per_class: int = 12, classes: int = 10) -> Path:
    """``root/<digit>/<n>.png``: real scikit-learn digits as 8x8 grey PNG files."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images * (255 / 16)).clip(0, 255).astype(np.uint8)
    count = dict.fromkeys(range(classes), 0)
    for img, label in zip(images, d.target, strict=True):
        label = int(label)
        if label >= classes or count[label] >= per_class:
            continue
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="L").save(folder / f"{count[label]:03d}.png")
        count[label] += 1
    return root


@contextlib.contextmanager
def fault(spec: str) -> Iterator[None]:
    """``DENSE_EDGE_FAULT=spec`` for the block (a kill, or an OSError, at a named point)."""
    old = os.environ.get("DENSE_EDGE_FAULT")
    os.environ["DENSE_EDGE_FAULT"] = spec
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DENSE_EDGE_FAULT", None)
        else:
            os.environ["DENSE_EDGE_FAULT"] = old


def copy_run(src: Path, dst: Path, parts: tuple[str, ...] = ("model", "onnx")) -> Path:
    for part in parts:
        shutil.copytree(src / part, dst / part)
    return dst


def leftovers(root: Path) -> list[Path]:
    """Temporary or swapped-out folders our commits leave only while a command runs."""
    return [p for p in root.rglob(".*dense-edge-*") if p.is_dir()]
