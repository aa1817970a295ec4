"""An image folder: one sub-folder per class (``root/<class>/*.png``).

If ``root`` holds ``train/`` and ``val/`` and/or ``test/``, those are the splits, as in ImageNet's
layout; otherwise the one folder is split, stratified and seeded. With ``train/`` + ``val/`` but no
``test/``, the "test" split is ``val/``: there is no held-out test, and reports say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dense_edge.data.imageset import FileImageSet, Splits, stratified_split
from dense_edge.errors import DataError
from dense_edge.preprocess import Preprocess

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def scan(root: Path, classes: list[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    """Files and labels under ``root/<class>/``; ``classes`` fixes the label order if given."""
    if not root.exists():
        raise DataError("image folder not found", path=root, fix="check data.root")
    if not root.is_dir():
        raise DataError("expected a folder of class folders", path=root)
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not found:
        raise DataError(
            "no class folders", path=root, fix="put each class's images in root/<class name>/"
        )
    if classes is None:
        classes = found
    else:
        extra = sorted(set(found) - set(classes))
        if extra:
            raise DataError(
                f"class folder {extra[0]!r} is not one of the model's {len(classes)} classes",
                path=root / extra[0],
            )
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = root / name
        files = (
            sorted(
                f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
            if folder.is_dir()
            else []
        )
        if not files and name in found:
            raise DataError(
                "class folder holds no images", path=folder, fix="add images or remove the folder"
            )
        paths.extend(files)
        labels.extend([label] * len(files))
    return paths, labels, classes


def load(
    root: str | Path,
    preprocess: Preprocess,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    skip_corrupt: bool,
) -> Splits:
    """Colour images may be made grey only where ``preprocess`` declares a resize. With
    ``skip_corrupt``, files it cannot use (unreadable, or of a size or colour it would refuse)
    are left out and listed in ``Splits.skipped``; without, the first one is an error."""
    root = Path(root)
    color, convert = preprocess.color, preprocess.resize is not None
    skipped: list[tuple[str, str]] = []
    if (root / "train").is_dir():
        paths, labels, classes = scan(root / "train")
        train = _checked(
            FileImageSet(paths, labels, color, "train", convert), preprocess, skip_corrupt, skipped
        )
        sets = {}
        for name in ("val", "test"):
            if (root / name).is_dir():
                p, lab, _ = scan(root / name, classes)
                sets[name] = _checked(
                    FileImageSet(p, lab, color, name, convert), preprocess, skip_corrupt, skipped
                )
        if "val" not in sets and "test" not in sets:
            raise DataError(
                "has train/ but neither val/ nor test/", path=root, fix="add a val/ or test/ folder"
            )
        val = sets.get("val") or sets["test"]
        test = sets.get("test") or sets["val"]
        origins = {
            "train": f"{root / 'train'}/",
            "val": f"{root / 'val'}/" if "val" in sets else f"{root / 'test'}/ (no val/ folder)",
            "test": f"{root / 'test'}/" if "test" in sets else f"{root / 'val'}/ (no test/ folder)",
        }
        return Splits(train, val, test, classes, f"imagefolder:{root}", skipped, origins,
                      test_is_val="test" not in sets)  # fmt: skip
    paths, labels, classes = scan(root)
    full = _checked(
        FileImageSet(paths, labels, color, "images", convert), preprocess, skip_corrupt, skipped
    )
    tr, va, te = stratified_split(
        np.asarray(full.labels), [val_fraction, test_fraction], split_seed
    )
    origins = {
        "train": f"the rest of {root}",
        "val": f"{val_fraction:g} of {root}, stratified, seed {split_seed}",
        "test": f"{test_fraction:g} of {root}, stratified, seed {split_seed} (held out)",
    }
    return Splits(full.subset(tr), full.subset(va), full.subset(te), classes,
                  f"imagefolder:{root}", skipped, origins)  # fmt: skip


def _checked(
    images: FileImageSet,
    preprocess: Preprocess,
    skip_corrupt: bool,
    skipped: list[tuple[str, str]],
) -> FileImageSet:
    if not skip_corrupt:
        return images
    good, bad = images.drop_unusable(preprocess)
    skipped.extend(bad)
    return good
