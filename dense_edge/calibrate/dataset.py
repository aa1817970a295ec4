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

from dense_edge.data.imagefolder import IMAGE_SUFFIXES
from dense_edge.data.preprocess import Preprocess, decode_image
from dense_edge.errors import DataError
from dense_edge.fileio import sha256_bytes, sha256_file, sha256_json


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
        files = sorted(
            f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                "calibration folder holds no images",
                path=path,
                fix=f"add images ({', '.join(sorted(IMAGE_SUFFIXES))}) or use source: data",
            )
        return _from_files(files, None, preprocess, n, cfg, str(path))
    if path.suffix == ".json":
        files, checksums = _read_listing(path)
        return _from_files(files, checksums, preprocess, n, cfg, str(path))
    raise DataError(
        "calibration.source must be 'data', an image folder or a .json manifest", path=path
    )


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
    from dense_edge.data import load_splits
    from dense_edge.data.imageset import stratified_split

    splits = load_splits(recipe, preprocess)
    train = splits.train
    if len(train) < n:
        raise DataError(
            f"the training split has {len(train)} images, calibration.samples asks for {n}",
            fix=f"set calibration.samples <= {len(train)}",
        )
    rest, pick = stratified_split(train.labels, [n / len(train)], recipe.calibration.seed)
    if len(pick) < n:  # per-class rounding can fall a few short: top up from the rest, seeded
        extra = np.random.default_rng(recipe.calibration.seed).permutation(rest)[: n - len(pick)]
        pick = np.sort(np.concatenate([pick, extra]))
    pick = pick[:n]
    chosen = train.subset(pick)
    images = chosen.to_array(preprocess)
    identity = sha256_json(
        {
            "data": recipe.data.model_dump(mode="json"),
            "seed": recipe.calibration.seed,
            "n": n,
            "first": sha256_bytes(images[: min(8, len(images))].tobytes()),
        }
    )
    return CalibrationSet(
        images, f"{splits.source} train split", identity, labels=chosen.labels.copy()
    )
