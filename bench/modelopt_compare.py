"""Our ``tensorrt`` Q/DQ layout against NVIDIA ModelOpt's, on the same float ONNX and the same
calibration images: Q/DQ placement, estimated bytes per image, top-1 and agreement.

    python bench/modelopt_compare.py [--models digits,deep,densenet121] [--venv runs/.modelopt-venv]

ModelOpt's ``[onnx]`` extra pins onnx/onnxruntime versions that conflict with ours, so it runs in
a virtual environment of its own that this script creates on first use: ``torch==2.13.0`` (the
CPU build; ModelOpt requires torch) and ``nvidia-modelopt[onnx]`` from the package index. On
x86 Linux that extra brings onnxruntime-gpu and cupy-cuda12x; both install and import here, and
with ``calibration_eps=["cpu"]`` ModelOpt calibrates on ONNX Runtime's CPU provider.

Models (bench/int8_models.py): digits, DenseNet-BC-100 ("deep") and densenet121 (random
weights, 32 synthetic calibration images, no accuracy: its columns read n/a). Each quantiser
runs on both concatenation layouts (the export's own and the other one, rewritten from it);
MB/image and kernels are printed with Concat copies counted and without (the estimate before
it counted them). The CPU model and load average are printed at the start and the end.

ModelOpt runs with its defaults (quantize_mode int8, entropy calibration, FP16 float parts,
concat elimination) except ``calibration_eps=["cpu"]``; the worker is bench/modelopt_worker.py.
Ours is the stage's ``tensorrt`` profile with percentile 99.99 (the digits recipes' method) and
with entropy (ModelOpt's method, and densenet121's recipe), so method and layout can be told
apart. Bytes come from
dense_edge.calibrate.traffic (an estimate from a model of TensorRT's fusions, applied to both);
accuracy from ONNX Runtime on the test split.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from int8_models import ROOT, placement, setup, short_counts

WORKER = Path(__file__).resolve().parent / "modelopt_worker.py"
TORCH_PIN = "torch==2.13.0"  # the CPU build (find-links); never a newer CUDA torch


def ensure_venv(venv: Path) -> Path:
    """The ModelOpt environment's python, created and installed on first use."""
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import modelopt.onnx.quantization"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"creating ModelOpt environment in {venv} (once; a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
        pins.write(TORCH_PIN + "\n")
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-c", pins.name, TORCH_PIN,
         "nvidia-modelopt[onnx]"],
        check=True,
    )  # fmt: skip
    subprocess.run(probe, check=True)
    return py


def modelopt_quantize(py: Path, float_onnx: Path, images, out: Path, high: str = "fp16") -> Path:  # type: ignore[no-untyped-def]
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npy"
        np.save(calib, images)
        result = subprocess.run(
            [str(py), str(WORKER), str(float_onnx), str(calib), str(out), high],
            capture_output=True,
            text=True,
        )
    if result.returncode != 0 or not out.exists():
        raise SystemExit(f"ModelOpt failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return out


def machine_line(when: str) -> str:
    """The CPU model and load average, printed at the start and the end of a run."""
    model = "unknown CPU"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                     if ln.startswith("Model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{when}: {model}, {os.cpu_count()} CPUs, load average (1/5/15 min) {load}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="digits,deep,densenet121")
    ap.add_argument("--venv", default=str(ROOT / "runs" / ".modelopt-venv"))
    a = ap.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    print(machine_line("start"), flush=True)
    import onnx

    from dense_edge.calibrate.checker import check_onnx
    from dense_edge.calibrate.dataset import load_calibration_set
    from dense_edge.calibrate.layout import detect, relayout
    from dense_edge.calibrate.stage import calibrate_stage
    from dense_edge.calibrate.traffic import estimate
    from dense_edge.data import Preprocess
    from dense_edge.fileio import read_json

    py = ensure_venv(Path(a.venv))
    for name in a.models.split(","):
        b = setup(name)
        recipe = b.recipe()
        pre = Preprocess.from_dict(read_json(b.run.model / "manifest.json")["preprocess"])
        cal = load_calibration_set(recipe, pre)
        float_model = onnx.load(str(b.run.onnx_model))
        fp16_total = estimate(float_model, as_fp16=True).total
        out_dir = b.run.root / "bench"
        out_dir.mkdir(exist_ok=True)
        entries = []
        # Percentile (our recipes' method) and entropy (ModelOpt's), the recipe's own method
        # last so the run folder is left holding it. Changing the method changes the stage's
        # inputs, which the stage refuses without force.
        methods = sorted(("percentile", "entropy"), key=lambda m: m == recipe.calibration.method)
        for method in methods:
            r = calibrate_stage(
                b.recipe(**{"calibration.method": method}),
                b.run,
                profiles=["tensorrt"],
                force=True,
            )[0]
            mine = out_dir / f"ours-{method}.onnx"
            mine.write_bytes(r.path.read_bytes())
            label = "ours (percentile 99.99)" if method == "percentile" else f"ours ({method})"
            entries.append((label, mine))
        entries.sort(key=lambda e: "entropy" in e[0])  # printed percentile first
        # Both concatenation layouts, ours and ModelOpt's: the export's own (chained by default)
        # and the other rewritten from it (dense_edge/calibrate/layout.py).
        own = detect(float_model) or "chained"
        other = "torchvision" if own == "chained" else "chained"
        other_float = out_dir / f"float-{other}.onnx"
        onnx.save(relayout(float_model, other), str(other_float))
        for label, path in list(entries):
            twin = path.with_name(path.stem + f"-{other}.onnx")
            onnx.save(relayout(onnx.load(str(path)), other), str(twin))
            entries.append((f"{label} {other}", twin))
        entries = [(f"{lb} {own}" if lb.endswith(")") else lb, p) for lb, p in entries]
        for layout, source in ((own, b.run.onnx_model), (other, other_float)):
            mo = modelopt_quantize(py, source, cal.images, out_dir / f"modelopt-int8-{layout}.onnx")
            entries.append((f"modelopt (entropy) {layout}", mo))

        test = (
            f"test split {len(b.y)} images, float top-1 {b.float_top1:.4f}"
            if b.labelled
            else "random weights, no labelled test split: accuracy n/a"
        )
        print(
            f"\n{name}: {recipe.model.arch}, {len(cal.images)} calibration images, {test}; "
            f"FP16 engine {fp16_total / 1e6:.3f} MB/image (estimate)"
        )
        print(
            f"{'quantiser, layout':<38}{'MB/image':>9}{'kernels':>8}{'no-copy MB':>11}"
            f"{'kernels':>8}{'vs FP16':>8}{'top-1':>8}{'drop pts':>9}{'agree':>8}{'checker':>9}"
            "  quantised inputs by reader"
        )
        for label, path in entries:
            model = onnx.load(str(path))
            t, t0 = estimate(model), estimate(model, count_copies=False)
            m = b.measure(path)
            na = f"{'n/a':>8}{'n/a':>9}{'n/a':>8}"
            acc = f"{m[0]:>8.4f}{m[1]:>9.2f}{m[2]:>8.4f}" if m else na
            ok = "ok" if check_onnx(model, "tensorrt").ok else "FAIL"
            print(
                f"{label:<38}{t.total / 1e6:>9.3f}{t.kernels:>8}{t0.total / 1e6:>11.3f}"
                f"{t0.kernels:>8}{t.total / fp16_total:>8.3f}{acc}{ok:>9}  "
                f"{short_counts(placement(model))}",
                flush=True,
            )
    print("\n" + machine_line("end"))


if __name__ == "__main__":
    main()
