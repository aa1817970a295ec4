"""Images/s of the training input pipeline on a folder of 224x224 JPEGs.

python bench/train_input.py                      # writes /tmp/dense-edge-train-input (400 JPEGs)
python bench/train_input.py --folder DIR         # any image folder (e.g. bench/scale.py's)
python bench/train_input.py --rounds 5 --images 400 --crop

Three ways to read one epoch of batches of 32 (densenet121's preprocessing: resize 256, centre
crop 224; ``--crop``: train.augment.random_resized_crop + hflip instead):
  one-process  the loop before the DataLoader: each batch decoded in the training process
  loader-0     the DataLoader without workers (decoded in the training process)
  loader-2     the DataLoader with 2 worker processes, 2 batches prefetched each
in interleaved rounds (the order rotates each round); each round's ratios to one-process, and
their medians. The CPU model and load average are printed at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 32


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown CPU"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_folder(root: Path, n: int, classes: int = 10) -> Path:
    """``n`` synthetic 224x224 JPEGs (smooth random colour fields, so they compress like
    photographs rather than noise), ``classes`` class folders; written once, reused."""
    from PIL import Image

    done = root / f".complete-{n}"
    if done.exists():
        return root
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class{i % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 256, (7, 7, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize((224, 224), Image.Resampling.BICUBIC)
        picture.save(folder / f"{i:05d}.jpg", quality=90)
    done.touch()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--crop", action="store_true", help="random resized crop + flip")
    args = parser.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")

    import torch

    from dense_edge.data import imagefolder
    from dense_edge.models.registry import get_config
    from dense_edge.preprocess import for_config
    from dense_edge.train.inputs import TrainInputs

    torch.set_num_threads(1)
    print(f"CPU: {cpu_model()}; load average at start: {load()}")
    folder = args.folder or write_folder(Path("/tmp/dense-edge-train-input"), args.images)
    pre = for_config(get_config("densenet121"))
    images = imagefolder.load(folder, pre, 0.0, 0.0, 0, False).train
    n = len(images)
    order = np.random.default_rng(0).permutation(n)
    batches = [order[s : s + BATCH] for s in range(0, n, BATCH)]
    how = "random resized crop + flip" if args.crop else "resize 256 + centre crop 224"
    print(f"{n} images from {folder}, batches of {BATCH}, {how}")

    def one_process() -> None:
        for idx in batches:
            torch.from_numpy(images.preprocessed(pre, idx))

    def loader(workers: int):  # type: ignore[no-untyped-def]
        inputs = TrainInputs(images, pre, workers=workers, random_crop=args.crop, hflip=args.crop)

        def read() -> None:
            for _ in inputs.epoch(0, batches):
                pass

        return read

    ways = {"one-process": one_process, "loader-0": loader(0), "loader-2": loader(2)}
    if args.crop:
        del ways["one-process"]  # the old loop had no random resized crop
    rates: dict[str, list[float]] = {k: [] for k in ways}
    names = list(ways)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            ways[name]()
            rates[name].append(n / (time.perf_counter() - t0))
    base = names[0]
    print(f"\n{'round':>5}  " + "  ".join(f"{k:>12}" for k in names) + "   ratios to " + base)
    for r in range(args.rounds):
        ratios = "  ".join(f"{rates[k][r] / rates[base][r]:5.2f}" for k in names[1:])
        print(f"{r + 1:>5}  " + "  ".join(f"{rates[k][r]:10.1f}/s" for k in names) + "   " + ratios)
    medians = "  ".join(
        f"{statistics.median(a / b for a, b in zip(rates[k], rates[base], strict=True)):5.2f}"
        for k in names[1:]
    )
    print("  med  " + "  ".join(f"{statistics.median(rates[k]):10.1f}/s" for k in names)
          + "   " + medians)  # fmt: skip
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
