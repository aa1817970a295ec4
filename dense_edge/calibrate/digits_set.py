"""The digits calibration set shipped in ``calibration/digits/``.

Exactly the images that ``calibration.source: data`` draws for the digits recipe (300 from the
training split, stratified, seed 0), written as 8x8 grey PNGs with a manifest of sha256 sums, so
a user can see what a calibration folder looks like and the quick start calibrates from files.

    python -m dense_edge.calibrate.digits_set calibration/digits
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dense_edge.data import load_splits
from dense_edge.data.imageset import stratified_split
from dense_edge.fileio import sha256_file, write_json
from dense_edge.recipe import load_recipe


def chosen_indices(samples: int = 300, seed: int = 0) -> tuple[np.ndarray, object]:

    train = load_splits(load_recipe()).train
    rest, pick = stratified_split(train.labels, [samples / len(train)], seed)
    if len(pick) < samples:
        extra = np.random.default_rng(seed).permutation(rest)[: samples - len(pick)]
        pick = np.sort(np.concatenate([pick, extra]))
    return pick[:samples], train


def write(folder: Path, samples: int = 300, seed: int = 0) -> Path:
    from PIL import Image

    pick, train = chosen_indices(samples, seed)
    entries = []
    for n, i in enumerate(pick):
        label = int(train.labels[i])  # type: ignore[attr-defined]
        rel = Path(str(label)) / f"digit-{n:03d}.png"
        (folder / rel.parent).mkdir(parents=True, exist_ok=True)
        Image.fromarray(train.image(int(i))[:, :, 0]).save(folder / rel)  # type: ignore[attr-defined]
        entries.append({"path": str(rel), "sha256": sha256_file(folder / rel), "label": label})
    manifest = folder / "manifest.json"
    write_json(
        manifest,
        {
            "description": "scikit-learn digits, training split, stratified, seed 0 "
            "(disjoint from the test split)",
            "images": entries,
        },
    )
    return manifest


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "calibration/digits")))
