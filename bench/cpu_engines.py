"""CPU engines for densenet121 (224x224, batch 1 and 8): each against its named reference,
measured side by side in one run with one harness (medians).

    python bench/cpu_engines.py [--iterations 60] [--calibration-images 64]

References:
- OpenVINO int8 engine  vs  OpenVINO running an NNCF default-quantised model of the same ONNX
  (nncf.quantize with its defaults, compiled with OpenVINO's defaults)      target <= 1.05
- ONNX Runtime int8 engine  vs  ONNX Runtime float32 (the same ONNX, default session)  <= 0.85
- every engine  vs  PyTorch eager float32 on the same inputs
Weights are random and the calibration images synthetic: neither changes the cost.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


CHILD = r"""
import json, os, sys
os.environ["DENSE_EDGE_QUIET"] = "1"
sys.path.insert(0, {root!r})
import numpy as np
from dense_edge.validate.latency import measure
kind, path = {kind!r}, {path!r}
if kind == "torch":
    from dense_edge.targets.pytorch.runner import PyTorchRunner
    runner = PyTorchRunner(path)
elif kind == "onnx":
    from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner
    runner = OnnxRuntimeRunner(path)
elif kind == "ir-default":
    from dense_edge.targets.openvino.runner import OpenVinoRunner
    runner = OpenVinoRunner(path, config={{}})
else:
    from dense_edge.targets.registry import load_runner
    runner = load_runner(path)
sample = np.load({sample!r})
out = {{}}
with runner:
    for b in {batches!r}:
        iters = {iterations} if b == 1 else max(8, {iterations} // 3)
        out[b] = measure(runner, sample, batch=b, warmup=5, iterations=iters,
                         show_progress=False).wall_p50_ms  # one clock for every runtime
print(json.dumps(out))
"""


def _measure_in_child(kind: str, path: Path, sample: Path, batches: list[int], iterations: int):
    """Each engine in its own process: thread pools of different runtimes never share the CPU."""
    import json
    import subprocess

    code = CHILD.format(root=str(ROOT), kind=kind, path=str(path), sample=str(sample),
                        batches=batches, iterations=iterations)  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=24)
    ap.add_argument("--calibration-images", type=int, default=64)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    import nncf
    import openvino as ov
    from densenet121_setup import densenet121_run

    from dense_edge.compile.stage import compile_stage

    batches = [int(b) for b in a.batches.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        recipe, run = densenet121_run(tmp_path, a.calibration_images)
        print("building engines ...", flush=True)
        ov_int8 = compile_stage(recipe, run, "openvino", "int8")
        ov_fp32 = compile_stage(recipe, run, "openvino", "fp32")
        ort_int8 = compile_stage(recipe, run, "onnxruntime", "int8")
        ort_fp32 = compile_stage(recipe, run, "onnxruntime", "fp32")

        # The reference NNCF model: nncf.quantize with every default, OpenVINO's default compile.
        from dense_edge.calibrate.dataset import load_calibration_set
        from dense_edge.data import preprocess_for

        cal = load_calibration_set(recipe, preprocess_for(recipe))
        ref_model = nncf.quantize(
            ov.Core().read_model(str(run.onnx_model)),
            nncf.Dataset([cal.images[i : i + 1] for i in range(len(cal))]),
            subset_size=len(cal),
        )
        ref_xml = tmp_path / "nncf-default" / "model.xml"
        ref_xml.parent.mkdir()
        ov.save_model(ref_model, str(ref_xml), compress_to_fp16=False)
        sample = tmp_path / "sample.npy"
        np.save(sample, cal.images[:8])

        engines = [
            ("PyTorch eager fp32", "torch", run.model, "fp32"),
            ("ONNX Runtime fp32 (plain ONNX)", "onnx", run.onnx_model, "fp32"),
            ("ONNX Runtime fp32 engine", "bundle", ort_fp32.path, "fp32"),
            ("ONNX Runtime int8 engine", "bundle", ort_int8.path, "int8"),
            ("OpenVINO fp32 engine", "bundle", ov_fp32.path, ov_fp32.manifest["precision_run"]),
            ("OpenVINO NNCF-default int8", "ir-default", ref_xml, "int8"),
            ("OpenVINO int8 engine", "bundle", ov_int8.path, ov_int8.manifest["precision_run"]),
        ]  # fmt: skip
        # This machine's speed drifts (a shared VM): measure in rounds, each engine once per
        # round in turn, and compare engines within a round before taking medians.
        rounds: list[dict[tuple[str, int], float]] = []
        for r in range(a.rounds):
            current: dict[tuple[str, int], float] = {}
            for name, kind, path, _ in engines:
                for b, ms in _measure_in_child(kind, path, sample, batches, a.iterations).items():
                    current[(name, b)] = ms
            rounds.append(current)
            print(f"  round {r + 1}/{a.rounds} measured", flush=True)
        results = {k: float(np.median([rd[k] for rd in rounds])) for k in rounds[0]}

        def ratio(num: str, den: str, b: int) -> float:
            return float(np.median([rd[(num, b)] / rd[(den, b)] for rd in rounds]))

    print(
        f"\ndensenet121 224x224, {os.cpu_count()} CPU cores; p50 of {a.iterations} runs "
        f"(batch 1) / {max(8, a.iterations // 3)} runs (batch 8), median of {a.rounds} rounds"
    )
    header = f"{'engine':<32}{'runs':>6}" + "".join(f"{'b' + str(b) + ' ms':>10}" for b in batches)
    header += "".join(f"{'vs torch b' + str(b):>14}" for b in batches)
    print(header)
    for name, _, _, ran in engines:
        line = f"{name:<32}{ran.split(' ')[0]:>6}"
        line += "".join(f"{results[(name, b)]:>10.2f}" for b in batches)
        line += "".join(f"{ratio(name, 'PyTorch eager fp32', b):>14.2f}" for b in batches)
        print(line)
    print()
    for b in batches:
        ov_ratio = ratio("OpenVINO int8 engine", "OpenVINO NNCF-default int8", b)
        ort_ratio = ratio("ONNX Runtime int8 engine", "ONNX Runtime fp32 (plain ONNX)", b)
        print(f"batch {b}: OpenVINO int8 engine / NNCF-default int8 = {ov_ratio:.3f} "
              f"(target <= 1.05) {'ok' if ov_ratio <= 1.05 else 'OVER'};  "
              f"ONNX Runtime int8 engine / ORT fp32 = {ort_ratio:.3f} "
              f"(target <= 0.85) {'ok' if ort_ratio <= 0.85 else 'OVER'}")  # fmt: skip


if __name__ == "__main__":
    main()
