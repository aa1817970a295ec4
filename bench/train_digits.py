"""Quick-start training on the bundled digits: wall time and test top-1.

python bench/train_digits.py            # the recipes/digits.yaml schedule
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir
    from dense_edge.train.stage import train_stage

    recipe = load_recipe(ROOT / "recipes" / "digits.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train_stage(recipe, RunDir.at(tmp).create())
        wall = time.perf_counter() - t0
    top1 = result.manifest["metrics"]["test_top1"]
    print(f"digits quick start: {recipe.train.epochs} epochs, {os.cpu_count()} CPU cores")
    print(f"wall time  {wall:7.1f} s   (target <= 180 s)  {'ok' if wall <= 180 else 'OVER'}")
    print(f"test top-1 {top1:7.4f}     (target >= 0.97)   {'ok' if top1 >= 0.97 else 'UNDER'}")


if __name__ == "__main__":
    main()
