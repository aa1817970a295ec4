"""The kit's ``polygraphy_data.py``: the evaluation images for Polygraphy, and its top-1 check.

Copied verbatim into a kit; ``polygraphy.sh`` runs Polygraphy with it as the data loader
(``--data-loader-script polygraphy_data.py``: ``load_data`` yields the kit's real evaluation
images, in batches of the engine profile's opt size), then runs it with ``--top1`` on the two
saved outputs: top-1 of the engine and of the float model (ONNX Runtime) against the labels, and
their agreement. A wrong class is visible here, where an error statistic over logits is not.
Needs numpy, and Polygraphy for ``--top1`` (to read its saved outputs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _batch() -> int:
    plan = json.loads((HERE / "build_plan.json").read_text())
    return int(plan["profile"]["opt"][0])


def batches(images: np.ndarray, batch: int) -> list[np.ndarray]:
    """Whole batches of ``batch`` images (the last one topped up from the start)."""
    n = max(len(images), batch)
    reps = -(-n // len(images))
    pool = np.concatenate([images] * reps)
    whole = -(-len(images) // batch) * batch
    pool = np.concatenate([pool, pool])[:whole]
    return [np.ascontiguousarray(pool[i : i + batch]) for i in range(0, whole, batch)]


def load_data() -> Any:
    """Polygraphy's data loader: the kit's evaluation images."""
    images = np.load(HERE / "eval" / "images.npy").astype(np.float32)
    for x in batches(images, _batch()):
        yield {"images": x}


def _logits(path: Path) -> np.ndarray:
    from polygraphy.comparator import RunResults

    results = RunResults.load(str(path))
    (_, iterations), *_ = list(results.items())
    return np.concatenate([np.asarray(next(iter(it.values()))) for it in iterations])


def top1(reference: Path, engine: Path, max_drop: float) -> int:
    labels = np.load(HERE / "eval" / "labels.npy")
    n = len(labels)
    ref, got = _logits(reference)[:n].argmax(1), _logits(engine)[:n].argmax(1)
    f_top1, e_top1 = float((ref == labels).mean()), float((got == labels).mean())
    drop = (f_top1 - e_top1) * 100
    agree = float((ref == got).mean())
    print(f"polygraphy top-1 on {n} evaluation images: engine {e_top1:.2%}, float (ONNX "
          f"Runtime) {f_top1:.2%}, drop {drop:+.2f} points, agreement {agree:.2%}")  # fmt: skip
    if drop > max_drop:
        print(f"polygraphy.sh: top-1 drop {drop:.2f} points exceeds {max_drop}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top1", nargs=2, type=Path, metavar=("REFERENCE", "ENGINE"))
    parser.add_argument("--max-drop", type=float, default=1.0)
    args = parser.parse_args()
    if args.top1:
        sys.exit(top1(args.top1[0], args.top1[1], args.max_drop))
