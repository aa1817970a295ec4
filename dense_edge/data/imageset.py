"""Labelled image collections: in-memory arrays or files on disk, one interface.

An image set yields uint8 HWC images in the model's colour mode and integer labels; turning them
into tensors is the preprocessing's job (:mod:`dense_edge.preprocess`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dense_edge.errors import DataError
from dense_edge.preprocess import Preprocess


class ImageSet:
    """Base: ``len``, ``image(i)``, ``labels``, ``subset(indices)``."""

    labels: np.ndarray
    name: str = "images"

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageSet:
        raise NotImplementedError

    def describe(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def batches(
        self, preprocess: Preprocess, batch_size: int, indices: Sequence[int] | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Preprocessed ``(float32 NCHW, int64 labels)`` batches, in order."""
        order = np.arange(len(self)) if indices is None else np.asarray(indices)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield self.preprocessed(preprocess, idx), self.labels[idx].astype(np.int64)

    def preprocessed(
        self, preprocess: Preprocess, indices: Sequence[int] | np.ndarray
    ) -> np.ndarray:
        """float32 NCHW of the images at ``indices``; an image that does not fit is named."""
        images = [self.image(int(i)) for i in indices]
        try:
            return preprocess.batch(images)
        except DataError:
            for i, img in zip(indices, images, strict=True):  # name the image that does not fit
                try:
                    preprocess.batch([img])
                except DataError as exc:
                    where = self.describe(int(i))
                    raise DataError(f"{where}: {exc}".replace(f"{where}: {where}", where)) from None
            raise

    def to_array(self, preprocess: Preprocess, batch_size: int = 256) -> np.ndarray:
        parts = [x for x, _ in self.batches(preprocess, batch_size)]
        if not parts:
            return np.zeros((0, *preprocess.input_shape), dtype=np.float32)
        return np.concatenate(parts)


class ArrayImageSet(ImageSet):
    def __init__(self, images: np.ndarray, labels: np.ndarray, name: str = "images"):
        if images.ndim == 3:
            images = images[:, :, :, None]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise DataError(
                f"{name}: expected uint8 NxHxWxC images, got {images.dtype} {images.shape}"
            )
        if len(images) != len(labels):
            raise DataError(f"{name}: {len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.name = name

    def image(self, index: int) -> np.ndarray:
        out: np.ndarray = self.images[index]
        return out

    def subset(self, indices: Sequence[int] | np.ndarray) -> ArrayImageSet:
        idx = np.asarray(indices, dtype=np.int64)
        return ArrayImageSet(self.images[idx], self.labels[idx], self.name)


class FileImageSet(ImageSet):
    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int] | np.ndarray,
        color: str,
        name: str = "images",
        convert: bool = True,
    ):
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.color = color
        self.name = name
        self.convert = convert  # colour to grey only where the preprocessing declares a resize
        # Only the colour conversion of Preprocess is used to decode.
        self._decoder = Preprocess(
            input_size=(1, 1),
            color=color,
            resize=(1, 1) if convert else None,
            mean=(0.0,) * (1 if color == "L" else 3),
            std=(1.0,) * (1 if color == "L" else 3),
        )

    def image(self, index: int) -> np.ndarray:
        try:
            return self._decoder.load_image(self.paths[index])
        except DataError as exc:
            if exc.fix is None or "skip_corrupt" in exc.fix:
                raise
            raise DataError(
                str(exc).rsplit(" (", 1)[0],
                fix="remove or replace the file, or set data.skip_corrupt: true to skip such files",
            ) from None

    def subset(self, indices: Sequence[int] | np.ndarray) -> FileImageSet:
        idx = [int(i) for i in indices]
        return FileImageSet([self.paths[i] for i in idx], self.labels[idx], self.color, self.name,
                            self.convert)  # fmt: skip

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def drop_unusable(self, preprocess: Preprocess) -> tuple[FileImageSet, list[tuple[str, str]]]:
        """Decode and preprocess every file once; return the ones ``preprocess`` takes and
        ``(path, reason)`` for the rest: unreadable files, and images whose size or colour the
        preprocessing would refuse (it declares no resize)."""
        keep, skipped = [], []
        for i, p in enumerate(self.paths):
            try:
                preprocess.batch([self._decoder.load_image(p)])
            except DataError as exc:
                skipped.append((str(p), str(exc)))
            else:
                keep.append(i)
        return self.subset(keep), skipped


@dataclass
class Splits:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    classes: list[str]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # where each split's images come from, for people ("test/ folder", "val/ folder (no test/)")
    origins: dict[str, str] = field(default_factory=dict)
    test_is_val: bool = False  # the "test" split is the validation images (no held-out test)

    def split(self, name: str) -> ImageSet:
        if name not in ("train", "val", "test"):
            raise DataError(f"unknown split {name!r} (train, val or test)")
        split: ImageSet = getattr(self, name)
        return split

    def summary(self) -> dict[str, object]:
        return {
            "source": self.source,
            "classes": len(self.classes),
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "skipped": len(self.skipped),
        }


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    if len(labels) == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise DataError(
            f"{where}: label {bad} is out of range for {num_classes} classes",
            fix="labels must be 0..num_classes-1",
        )


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split indices into len(fractions)+1 parts, the rest first, each stratified by label."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        start = 0
        counts = [round(f * len(idx)) for f in fractions]
        for k, n in enumerate(counts, start=1):
            parts[k].extend(idx[start : start + n].tolist())
            start += n
        parts[0].extend(idx[start:].tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def short_list(items: Sequence[object], limit: int = 6, width: int = 24) -> str:
    """A bounded rendering of a list of names for one-line errors: at most ``limit`` items of
    at most ``width`` characters each, then how many more."""
    shown = [repr(str(x)[:width] + ("..." if len(str(x)) > width else "")) for x in items[:limit]]
    more = f", ... {len(items) - limit} more" if len(items) > limit else ""
    return f"[{', '.join(shown)}{more}]"
