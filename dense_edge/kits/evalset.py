"""The evaluation set a kit carries, so that it can validate itself on the device.

A few hundred images of the recipe's validation split (``validate.split``: test or val, never
the training split the calibration images come from), preprocessed to float32 NCHW exactly as
every engine sees them, their labels, and the float PyTorch model's logits on exactly these
inputs. The set is capped in bytes (``MAX_BYTES``), so large inputs mean fewer images; the
manifest's file table holds the sha256 of every file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

import numpy as np

from dense_edge.accuracy import top1
from dense_edge.data import Preprocess, load_splits
from dense_edge.errors import UserError
from dense_edge.recipe import Recipe
from dense_edge.rundir import RunDir
from dense_edge.targets.pytorch.runner import PyTorchRunner

FOLDER = "eval"
IMAGES, LABELS, LOGITS, INFO = "images.npy", "labels.npy", "float_logits.npy", "eval.json"
SAMPLES = 300
MAX_BYTES = 16 << 20


class EvalDescription(TypedDict, total=False):
    """``eval/eval.json``: what the set is; without labelled data only ``samples`` (0) and
    ``reason``."""

    split: str  # test or val
    samples: int
    of: int  # the split's size
    source: str
    float_top1: float
    batch_sizes: list[int]  # the recipe's, for the device's latency
    max_bytes: int
    reason: str  # why there is no set


def count_for(input_shape: list[int], num_classes: int, wanted: int, available: int) -> int:
    """How many images fit: ``wanted`` at most, the split's size, and the byte cap."""
    per_image = 4 * int(np.prod(input_shape)) + 4 * num_classes + 8
    return max(0, min(wanted, available, MAX_BYTES // per_image))


def write(
    folder: Path, recipe: Recipe, run: RunDir, *, samples: int = SAMPLES
) -> tuple[list[str], EvalDescription | None]:
    """Write ``folder/eval/``; (file names relative to ``folder``, its description).

    Without labelled data (a weights-only recipe) there is nothing to validate against: no set,
    and the description says why.
    """

    manifest = json.loads((run.model / "manifest.json").read_text())
    pre = Preprocess.from_dict(manifest["preprocess"])
    split = recipe.validation.split  # "test" or "val": never the calibration (training) images
    try:
        splits = load_splits(recipe, pre)
    except UserError as exc:
        return [], {"samples": 0, "reason": f"no labelled data ({exc})"}
    part = splits.split(split)
    n = count_for(manifest["input_shape"], manifest["num_classes"], samples, len(part))
    if n == 0:
        return [], {"samples": 0, "reason": f"the {split} split is empty or one image is too big"}
    keep = np.sort(np.random.default_rng(0).permutation(len(part))[:n])
    part = part.subset(keep)
    images = np.ascontiguousarray(part.to_array(pre), dtype=np.float32)
    labels = np.asarray(part.labels, dtype=np.int64)
    with PyTorchRunner(run.model) as reference:
        logits = reference.infer_all(images, batch_size=32).astype(np.float32)
    out = folder / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / IMAGES, images)
    np.save(out / LABELS, labels)
    np.save(out / LOGITS, logits)
    info: EvalDescription = {
        "split": split,
        "samples": n,
        "of": len(splits.split(split)),
        "source": splits.source,
        "float_top1": round(top1(logits, labels), 6),
        "batch_sizes": list(recipe.validation.batch_sizes),
        "max_bytes": MAX_BYTES,
    }
    (out / INFO).write_text(json.dumps(info, indent=2) + "\n")
    return [f"{FOLDER}/{name}" for name in (IMAGES, LABELS, LOGITS, INFO)], info


def read(kit: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, EvalDescription]:
    """(images, labels, float logits, description) of a kit's evaluation set."""

    folder = kit / FOLDER
    if not (folder / INFO).exists():
        raise UserError(
            "this kit carries no evaluation set",
            path=kit,
            fix="export it again from a recipe with labelled data (data.source / data.root)",
        )
    info: EvalDescription = json.loads((folder / INFO).read_text())
    images = np.load(folder / IMAGES, allow_pickle=False)
    labels = np.load(folder / LABELS, allow_pickle=False)
    logits = np.load(folder / LOGITS, allow_pickle=False)
    if not len(images) == len(labels) == len(logits) == info["samples"]:
        raise UserError("the evaluation set's files disagree in length", path=folder)
    return images, labels, logits, info
