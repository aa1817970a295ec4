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
    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    hidden = [name for name in found if name.startswith(".")]
    if hidden:
        # A hidden folder is a class to some users and tool litter to others: never guess.
        raise DataError(
            f"class folder {hidden[0]!r} starts with '.' (hidden): it would be a class of "
            f"its own, or silently one class fewer",
            path=root / hidden[0],
            fix="rename it if it is a class, or move it out of the data folder",
        )
    odd = [name for name in found if not name.isprintable()]
    if odd:
        # labels.txt holds one class per line, and the C++ apps read it so: a newline in a
        # name would shift every later label.
        raise DataError(
            f"class folder {odd[0]!r} has a newline or other control character in its name",
            path=root,
            fix="rename the folder to printable characters",
        )
    if not found:
        raise DataError(
            "no class folders", path=root, fix="put each class's images in root/<class name>/"
        )
    if classes is None:
        classes = found
        if len(classes) < 2:
            raise DataError(
                f"only one class folder ({classes[0]!r}): a classifier needs two or more",
                path=root,
                fix="put each class's images in its own folder root/<class name>/",
            )
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
    _check_split_sizes(
        root, full, [("train", 1.0, tr), ("val_fraction", val_fraction, va),
                     ("test_fraction", test_fraction, te)]
    )  # fmt: skip
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


def _check_split_sizes(
    root: Path, full: FileImageSet, parts: list[tuple[str, float, np.ndarray]]
) -> None:
    """Refuse, before any training, a split that rounds to no images (2 images per class
    and ``val_fraction: 0.1`` leave nothing to validate on: top-1 would be nan)."""
    if len(full) == 0:
        return
    for key, fraction, idx in parts:
        if len(idx) == 0 and fraction > 0:  # a fraction of 0 asks for no images
            per_class = np.bincount(np.asarray(full.labels)).min()
            what = "the training split" if key == "train" else f"data.{key}"
            raise DataError(
                f"{what} rounds to 0 of {len(full)} images ({per_class} in the smallest class)",
                path=root,
                fix="add images, or raise data.val_fraction / data.test_fraction "
                "(or give train/ and val/ folders)",
            )
