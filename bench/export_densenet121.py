"""densenet121 (random weights, 224x224): export + check + parity, timed; the graph's node count.

python bench/export_densenet121.py [--exporter torchscript|dynamo]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--exporter", default="torchscript", choices=["torchscript", "dynamo"])
    ap.add_argument("--opset", type=int, default=None)
    a = ap.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    import onnx
    import torch

    from dense_edge import models
    from dense_edge.export import export_stage
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir
    from dense_edge.train.stage import train_stage

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        weights = Path(tmp) / "densenet121.pth"
        torch.save(models.create("densenet121").state_dict(), weights)
        over = {"model.weights": str(weights), "export.exporter": a.exporter}
        if a.opset:
            over["export.opset"] = a.opset
        elif a.exporter == "dynamo":
            over["export.opset"] = 18
        recipe = load_recipe(ROOT / "recipes" / "densenet121-imagenet.yaml", over)
        run = RunDir.at(Path(tmp) / "run").create()
        train_stage(recipe, run)  # import the weights (not timed)
        t0 = time.perf_counter()
        result = export_stage(recipe, run)
        wall = time.perf_counter() - t0
        model = onnx.load(str(result.path))
        ops = collections.Counter(n.op_type for n in model.graph.node)
    p = result.parity
    print(f"densenet121 224x224 random weights, exporter {a.exporter}, {os.cpu_count()} cores")
    print(
        f"export + check + parity: {wall:.1f} s  (target <= 60 s)  {'ok' if wall <= 60 else 'OVER'}"
    )
    print(
        f"nodes: {sum(ops.values())}  Identity: {ops.get('Identity', 0)}  "
        + ", ".join(f"{k} {v}" for k, v in ops.most_common())
    )
    print(
        f"parity on {p['samples']} {p['inputs']} inputs: max abs {p['max_abs_error']:.2e}, "
        f"cosine {p['min_cosine']:.7f}, top-1 agreement {p['top1_agreement']:.4f}"
    )


if __name__ == "__main__":
    main()
