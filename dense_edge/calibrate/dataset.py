"""Calibration sets: the images whose activations set the INT8 ranges.

Three ways to supply them (``calibration.source``):

- ``data``: drawn from the recipe's training split, N samples, stratified by class, seeded.
  Never from the test split: validation must not see the images that set the ranges.
- an image folder: every image below it (class sub-folders are allowed and ignored).
- a manifest file (``.json``): ``{"images": [{"path": "...", "sha256": "..."}, ...]}`` with paths
  relative to the file; every image's checksum is verified before use.

Preprocessing always comes from the model's manifest. Images that cannot be read, or whose size or
channels do not fit the model, are errors that name the file, or counted skips when
``calibration.skip_unreadable`` is set. Asking for more samples than the source holds is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.data import load_splits
from dense_edge.data.identity import data_identity
from dense_edge.data.imagefolder import IMAGE_SUFFIXES
from dense_edge.data.imageset import FileImageSet, stratified_split
from dense_edge.errors import DataError
from dense_edge.fileio import sha256_bytes, sha256_file, sha256_json
from dense_edge.preprocess import Preprocess, decode_image


@dataclass
class CalibrationSet:
    images: np.ndarray  # float32 NCHW, preprocessed
    source: str
    identity: str  # changes whenever the images change
    skipped: list[tuple[str, str]] = field(default_factory=list)
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "samples": len(self),
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "identity": self.identity,
        }


def load_calibration_set(
    recipe: Any, preprocess: Preprocess, *, samples: int | None = None
) -> CalibrationSet:
    cfg = recipe.calibration
    n = samples or cfg.samples
    if cfg.source == "data":
        return _from_data(recipe, preprocess, n)
    path = Path(cfg.source)
    if path.is_dir():
        return _from_files(_folder_images(path), None, preprocess, n, cfg, str(path))
    if path.suffix == ".json":
        files, checksums = _read_listing(path)
        return _from_files(files, checksums, preprocess, n, cfg, str(path))
    raise DataError(
        "calibration.source must be 'data', an image folder or a .json manifest", path=path
    )


def calibration_identity(recipe: Any) -> str:
    """Which images calibrate, without decoding one: the sha256 of every candidate file (a
    folder or a .json listing); for ``source: data``, the data's listing and the draw, and for
    an image folder the sha256 of every file drawn."""
    c = recipe.calibration
    draw = {"samples": c.samples, "seed": c.seed, "skip_unreadable": c.skip_unreadable}
    if c.source == "data":
        return sha256_json(
            {"data": data_identity(recipe), **draw, "drawn": _drawn_file_digests(recipe)}
        )
    path = Path(c.source)
    files: list[Path]
    if path.is_dir():
        files = _folder_images(path)
        names = [f.relative_to(path).as_posix() for f in files]
    elif path.suffix == ".json":
        files, _ = _read_listing(path)
        names = [str(f) for f in files]
    else:
        raise DataError(
            "calibration.source must be 'data', an image folder or a .json manifest", path=path
        )
    digests = [sha256_file(f) if f.is_file() else None for f in files]
    return sha256_json({"files": list(zip(names, digests, strict=True)), **draw})


def _folder_images(path: Path) -> list[Path]:
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            "calibration folder holds no images",
            path=path,
            fix=f"add images ({', '.join(sorted(IMAGE_SUFFIXES))}) or use source: data",
        )
    return files


def _drawn_file_digests(recipe: Any) -> list[list[str]] | None:
    """For data read from files: each file ``source: data`` draws, with its sha256 (the draw
    is made on the folder's listing, so nothing is decoded). None for in-memory data, whose
    identity is its settings and listing."""

    if recipe.data.source != "imagefolder":
        return None
    # skip_corrupt decodes every file to drop the unreadable ones: draw from the listing
    # instead (the same draw when no file is corrupt; the listing's sizes cover the rest).
    listed = recipe.model_copy(
        update={"data": recipe.data.model_copy(update={"skip_corrupt": False})}
    )
    try:
        train = load_splits(listed).train
    except DataError:
        return None  # the data cannot be read: loading the set will say why
    if not isinstance(train, FileImageSet) or len(train) < recipe.calibration.samples:
        return None
    chosen = train.subset(_draw(train.labels, recipe.calibration.samples, recipe.calibration.seed))
    return [[str(f), sha256_file(f)] for f in chosen.paths]


def _read_listing(path: Path) -> tuple[list[Path], list[str | None]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["images"]
        files = [(path.parent / e["path"]).resolve() for e in entries]
        sums = [e.get("sha256") for e in entries]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"not a calibration manifest ({exc.__class__.__name__}: {exc})",
            path=path,
            fix='expected {"images": [{"path": ..., "sha256": ...}]}',
        ) from None
    if not files:
        raise DataError("calibration manifest lists no images", path=path)
    return files, sums


def _from_files(
    files: list[Path],
    checksums: list[str | None] | None,
    preprocess: Preprocess,
    n: int,
    cfg: Any,
    source: str,
) -> CalibrationSet:
    """``n`` images in a seeded order; with ``skip_unreadable``, skipped files are replaced."""
    order = np.random.default_rng(cfg.seed).permutation(len(files)) if len(files) > n else None
    indices = order.tolist() if order is not None else list(range(len(files)))
    chosen: list[tuple[int, np.ndarray, str]] = []
    skipped: list[tuple[str, str]] = []
    for i in indices:
        if len(chosen) == n:
            break
        f = files[i]
        try:
            expected = checksums[i] if checksums is not None else None
            if expected:
                if not f.exists():
                    raise DataError("listed image not found", path=f)
                if sha256_file(f) != expected:
                    raise DataError(
                        "checksum does not match the calibration manifest",
                        path=f,
                        fix="restore the image or update its sha256",
                    )
            chosen.append((i, _load_checked(f, preprocess), expected or sha256_file(f)))
        except DataError as exc:
            if not cfg.skip_unreadable:
                raise DataError(
                    f"{exc}", fix="fix or remove it, or set calibration.skip_unreadable: true"
                ) from None
            skipped.append((str(f), str(exc)))
    if len(chosen) < n:
        have = f"{len(chosen)} usable images" + (f" ({len(skipped)} skipped)" if skipped else "")
        raise DataError(
            f"calibration source has {have}, calibration.samples asks for {n}",
            path=source,
            fix=f"add images or set calibration.samples <= {len(chosen)}",
        )
    chosen.sort(key=lambda c: c[0])  # file order, whatever order they were drawn in
    images = preprocess.batch([arr for _, arr, _ in chosen])
    return CalibrationSet(images, source, sha256_json([h for _, _, h in chosen]), skipped)


def _load_checked(path: Path, preprocess: Preprocess) -> np.ndarray:
    im = decode_image(path)
    try:
        preprocess.check_colour(im)  # the one colour policy (palette images included)
    except DataError as exc:
        raise DataError(str(exc), path=path) from None
    bands = len(im.getbands()) - (1 if "A" in im.getbands() else 0)
    size = im.size[::-1]
    mode = im.mode
    arr = preprocess.from_pil(im)
    if mode != "P" and bands != preprocess.channels:
        raise DataError(
            f"image has {bands} channels ({mode}), the model takes {preprocess.channels} "
            f"({preprocess.color})",
            path=path,
        )
    if preprocess.resize is None and not preprocess.crop and size != preprocess.input_size:
        raise DataError(
            f"image is {size[0]}x{size[1]}, the model takes {preprocess.input_size[0]}x"
            f"{preprocess.input_size[1]} images as they are",
            path=path,
        )
    if preprocess.resize is None and size != preprocess.input_size and preprocess.crop:
        h, w = preprocess.input_size
        if size[0] < h or size[1] < w:
            raise DataError(
                f"image is {size[0]}x{size[1]}, smaller than the model's {h}x{w} input",
                path=path,
            )
    return arr


def _from_data(recipe: Any, preprocess: Preprocess, n: int) -> CalibrationSet:

    splits = load_splits(recipe, preprocess)
    train = splits.train
    if len(train) < n:
        raise DataError(
            f"the training split has {len(train)} images, calibration.samples asks for {n}",
            fix=f"set calibration.samples <= {len(train)}",
        )
    chosen = train.subset(_draw(train.labels, n, recipe.calibration.seed))
    images = chosen.to_array(preprocess)
    identity = sha256_json(
        {
            "data": recipe.data.model_dump(mode="json"),
            "seed": recipe.calibration.seed,
            "n": n,
            "images": sha256_bytes(images.tobytes()),  # every drawn image, not the first few
        }
    )
    return CalibrationSet(
        images, f"{splits.source} train split", identity, labels=chosen.labels.copy()
    )


def _draw(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` indices of the training split, stratified by class, seeded, in order."""

    rest, pick = stratified_split(labels, [n / len(labels)], seed)
    if len(pick) < n:  # per-class rounding can fall a few short: top up from the rest, seeded
        extra = np.random.default_rng(seed).permutation(rest)[: n - len(pick)]
        pick = np.sort(np.concatenate([pick, extra]))
    out: np.ndarray = pick[:n]
    return out
