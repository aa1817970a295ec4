"""The one evaluation-split policy: which labelled images judge a model.

Validation, the quick check after ``export --target`` and the report's ``evaluation`` block all
come from :func:`evaluation_set`; calibration's accuracy-aware mode uses it with ``split="val"``
(it tunes on those images, so they must never be the test split). The policy:

- the images are a named split of the recipe's data (``validate.split``: ``test`` or ``val``),
  never the calibration (training) images;
- never random inputs: a recipe without labelled data is an error naming the fix, because
  agreement on noise proves nothing about an engine;
- a split that is not a held-out test split is said loudly (and recorded in the report);
- a limit takes a seeded, sorted sample, the same images on every run.

The set is a listing, not an array: its images are decoded when asked for, in batches
(:mod:`dense_edge.data.stream`), so a split of any size fits in memory. ``identity()`` names the
listing and its preprocessing by content, for caches of what is computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dense_edge.data import load_splits
from dense_edge.data.imageset import ArrayImageSet, FileImageSet, ImageSet
from dense_edge.errors import DataError
from dense_edge.fileio import sha256_bytes, sha256_json
from dense_edge.preprocess import Preprocess
from dense_edge.progress import info

if TYPE_CHECKING:
    from dense_edge.recipe import Recipe

SAMPLE_SEED = 0


@dataclass(frozen=True)
class EvaluationSet:
    part: ImageSet  # the split's images (a listing of files, or an array already in memory)
    preprocess: Preprocess
    labels: np.ndarray  # int [N]
    split: str  # "test" or "val"
    origin: str  # where the split's images come from, for people
    held_out_test: bool  # a test split the model never saw (not the validation images)
    warning: str | None  # why the figures may be optimistic; None for a held-out test split
    source: str  # the data source
    skipped_images: int  # unreadable images left out of the data

    def describe(self) -> dict[str, Any]:
        """The report's ``evaluation`` block."""
        return {
            "split": self.split,
            "split_origin": self.origin,
            "held_out_test": self.held_out_test,
            "warning": self.warning,
            "samples": len(self.labels),
            "source": self.source,
            "skipped_images": self.skipped_images,
        }

    @property
    def images(self) -> np.ndarray:
        """Every image preprocessed, float32 NCHW, in one array: for small sets only (the
        quick check after export); validation reads them in batches."""
        return self.part.to_array(self.preprocess)

    def identity(self) -> str:
        """sha256 of what the images are: the listing (each file's path, size and modification
        time, or the bytes of in-memory images), the labels and the preprocessing."""
        part = self.part
        listing: Any
        if isinstance(part, FileImageSet):
            listing = []
            for p in part.paths:
                st = p.stat()
                listing.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
            listing = sha256_json(listing)
        elif isinstance(part, ArrayImageSet):
            listing = sha256_bytes(np.ascontiguousarray(part.images).tobytes())
        else:
            listing = sha256_bytes(part.to_array(self.preprocess).tobytes())
        return sha256_json({
            "source": self.source, "split": self.split, "listing": listing,
            "labels": sha256_bytes(np.asarray(self.labels, np.int64).tobytes()),
            "preprocess": self.preprocess.to_dict(),
        })  # fmt: skip


def evaluation_set(
    recipe: Recipe,
    preprocess: Preprocess,
    *,
    split: str | None = None,
    limit: int | None = None,
    purpose: str = "validate",
    announce: bool = True,
) -> EvaluationSet:
    """Labelled images of ``split`` (default ``validate.split``), at most ``limit`` of them.

    Raises :class:`DataError` when the recipe has no labelled data. ``announce`` prints the
    warning for a split that is not a held-out test split, prefixed with ``purpose``.
    """
    name = split or recipe.validation.split
    try:
        splits = load_splits(recipe, preprocess)
    except DataError as exc:
        raise DataError(
            f"{purpose} needs labelled images and dense-edge never judges on random inputs: "
            f"{str(exc).removesuffix(f' ({exc.fix})') if exc.fix else exc}",
            fix=exc.fix or "set data.source (and data.root) in the recipe",
        ) from None
    part = splits.split(name)
    if len(part) == 0:
        raise DataError(
            f"{purpose}: the {name} split of the {splits.source} data is empty",
            fix="give the data more images, or raise data.val_fraction / data.test_fraction",
        )
    if limit and len(part) > limit:
        keep = np.random.default_rng(SAMPLE_SEED).permutation(len(part))[:limit]
        part = part.subset(np.sort(keep))
    origin = splits.origins.get(name, f"{name} split")
    held_out = name == "test" and not splits.test_is_val
    warning: str | None = None
    if name != "test":
        warning = (f"evaluated on the {name} split ({origin}), not a held-out test split: "
                   f"figures may be optimistic")  # fmt: skip
    elif splits.test_is_val:
        warning = (f"NOT A HELD-OUT TEST SPLIT: the 'test' images are {origin}; add a test/ "
                   f"folder for a held-out test")  # fmt: skip
    if warning and announce:
        info(f"{purpose}: {warning}")
    return EvaluationSet(
        part=part,
        preprocess=preprocess,
        labels=np.asarray(part.labels).copy(),
        split=name,
        origin=origin,
        held_out_test=held_out,
        warning=warning,
        source=splits.source,
        skipped_images=len(splits.skipped),
    )
