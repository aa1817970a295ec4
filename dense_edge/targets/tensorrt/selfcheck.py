"""A kit validating itself on the device: ``dense-edge kit validate KIT`` (the kit's validate.sh).

Builds the engine from the kit (or loads the ``model.engine`` trtexec.sh built), runs the kit's
evaluation set through it, and writes a *device report*: accuracy against the labels and the
float model's logits (the project's own metric code, :func:`dense_edge.validate.accuracy.evaluate`),
latency p50/p99 as GPU compute time (CUDA events around ``execute_async_v3``, as trtexec reports
"GPU Compute Time"), and the TensorRT, CUDA, GPU and JetPack (L4T) versions. ``dense-edge report
merge`` adds it to the run's report.

``runner="onnxruntime"`` runs the same path with ONNX Runtime over the kit's ``model.onnx`` (the
Q/DQ model for int8): a check of the kit and of this code where there is no GPU, labelled as such,
never a TensorRT measurement.
"""

from __future__ import annotations

import platform
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.errors import UserError
from dense_edge.targets import evalset
from dense_edge.targets.base import Runner

REPORT_SCHEMA = "dense-edge/device-report"
REPORT_VERSION = 1
RUNNERS = ("tensorrt", "onnxruntime")
NV_TEGRA_RELEASE = Path("/etc/nv_tegra_release")
ORT_NOTE = (
    "ONNX Runtime over the kit's ONNX model: checks the kit and the metric code; "
    "not a TensorRT measurement"
)


def l4t_release(text: str) -> str | None:
    """The L4T release in JetPack's /etc/nv_tegra_release (``# R36 (release), REVISION: 4.3``)."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"R{m.group(1)}.{m.group(2)}" if m else None


def device_environment(runner: str) -> dict[str, Any]:
    """Host, GPU and the versions that decide what an engine is, as far as this machine says."""
    env: dict[str, Any] = {"host": platform.node(), "machine": platform.machine()}
    env.update(gpu=None, tensorrt=None, cuda=None, jetpack=None)
    if NV_TEGRA_RELEASE.exists():
        release = l4t_release(NV_TEGRA_RELEASE.read_text(errors="replace"))
        env["jetpack"] = f"L4T {release}" if release else None  # the JetPack's Linux for Tegra
    if runner == "tensorrt":
        import tensorrt as trt
        import torch

        env["tensorrt"] = str(trt.__version__)
        env["cuda"] = torch.version.cuda
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = props.name
        env["compute_capability"] = f"{props.major}.{props.minor}"
    else:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
    return env


def _tensorrt_runner(
    kit: Path, manifest: dict[str, Any], *, rebuild: bool
) -> tuple[Runner, dict[str, Any]]:
    from dense_edge.progress import info
    from dense_edge.targets.tensorrt.compiler import build
    from dense_edge.targets.tensorrt.plan import PRECISION_RUN, BuildPlan
    from dense_edge.targets.tensorrt.runner import TensorRTRunner

    plan = BuildPlan.from_dict(manifest["build_plan"])
    engine = kit / plan.engine
    config: dict[str, Any] = {"dla_core": plan.dla_core}
    runtime_manifest: dict[str, Any] = {"config": config, "precision": plan.precision}
    runtime_manifest["precision_run"] = PRECISION_RUN[plan.precision]
    if rebuild or not engine.exists():
        info(f"kit: building {engine} with TensorRT")
        built = build(plan, kit, timing_cache=kit / plan.timing_cache)
        runtime_manifest["runtime"] = {"name": "tensorrt", "version": built["version"]}
        runtime_manifest["gpu"] = built["gpu"]
        config.update(strongly_typed=built["strongly_typed"], builder_flags=built["flags"],
                      source_onnx=built["source_onnx"], dla_placement=built["dla"],
                      timing_cache=built["timing_cache"])  # fmt: skip
        origin = "built by dense-edge kit validate"
    else:
        origin = f"{plan.engine} found in the kit (trtexec.sh or an earlier run)"
    described = {"engine": plan.engine, "origin": origin, "config": config,
                 "size_bytes": engine.stat().st_size if engine.exists() else 0}  # fmt: skip
    return TensorRTRunner(engine, runtime_manifest), described


def _onnxruntime_runner(kit: Path, manifest: dict[str, Any]) -> tuple[Runner, dict[str, Any]]:
    from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner

    model = kit / manifest["build_plan"]["onnx"]
    described = {"engine": model.name, "origin": "ONNX Runtime over the kit's ONNX (no TensorRT)",
                 "config": {}, "size_bytes": model.stat().st_size}  # fmt: skip
    return OnnxRuntimeRunner(model), described


def _latency(
    runner: Runner, images: np.ndarray, batch: int, warmup: int, iterations: int
) -> dict[str, Any]:
    """One batch size: GPU compute time where the runner records it, else wall time."""
    from dense_edge.validate.latency import measure, summarize

    wall = measure(runner, images[:batch], batch=batch, warmup=warmup, iterations=iterations,
                   show_progress=False)  # fmt: skip
    device_ms = getattr(runner, "device_times", None)
    if device_ms:
        gpu = summarize([t / 1000.0 for t in device_ms[-wall.iterations :]], batch).to_dict()
        return {**gpu, "clock": "gpu compute (CUDA events)", "wall_p50_ms": round(wall.p50_ms, 4)}
    return {**wall.to_dict(), "clock": "wall (time to a result on the host)"}


def validate_kit(
    kit: Path,
    *,
    runner: str = "tensorrt",
    rebuild: bool = False,
    warmup: int = 20,
    iterations: int = 1000,
) -> dict[str, Any]:
    """Run the kit's evaluation set on this machine; the device report (not yet written)."""
    from dense_edge.manifest import now
    from dense_edge.targets.tensorrt.kit import read_kit
    from dense_edge.validate.accuracy import evaluate
    from dense_edge.validate.worker import peak_rss_mib

    if runner not in RUNNERS:
        raise UserError(f"unknown runner {runner!r}", fix=f"choose one of {', '.join(RUNNERS)}")
    kit = Path(kit)
    manifest = read_kit(kit, verify=True)
    images, labels, float_logits, info = evalset.read(kit)
    t0 = time.perf_counter()
    if runner == "tensorrt":
        r, engine = _tensorrt_runner(kit, manifest, rebuild=rebuild)
    else:
        r, engine = _onnxruntime_runner(kit, manifest)
    max_batch = int(manifest["build_plan"]["profile"]["max"][0])
    with r:
        r.infer(images[:1])
        cold = time.perf_counter() - t0
        logits = r.infer_all(images, batch_size=max_batch)
        latency = {
            str(b): _latency(r, images, b, warmup, iterations)
            for b in info.get("batch_sizes", [1])
            if b <= max_batch
        } or {"1": _latency(r, images, 1, warmup, iterations)}
        described = r.describe()
    accuracy = evaluate(logits, labels, float_logits, manifest["classes"])
    precision = manifest["precision"]
    on_trt = runner == "tensorrt"
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_VERSION,
        "created": now(),
        "measured_by": runner,
        "note": None if runner == "tensorrt" else ORT_NOTE,
        "kit": {
            "path": str(kit.resolve()),
            "precision": precision,
            "arch": manifest.get("arch"),
            "model_sha256": manifest["files"][manifest["build_plan"]["onnx"]]["sha256"],
            "run": manifest.get("run", {}),
        },
        "engine": {
            "name": f"tensorrt-{precision}" + ("" if on_trt else "-kit-onnxruntime"),
            "target": "tensorrt" if on_trt else "onnxruntime",
            "precision": precision,
            "precision_run": described.get("precision_run", precision)
            if on_trt
            else f"{precision} (the kit's ONNX, on ONNX Runtime)",
            "runtime": described.get("runtime"),
            "device": described.get("device") or described.get("providers"),
            **engine,
        },
        "evaluation": {k: info[k] for k in ("split", "samples", "of", "source", "float_top1")},
        "accuracy": accuracy,
        "latency": latency,
        "cold_start_s": round(cold, 4),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "environment": device_environment(runner),
    }


def write_report(report: dict[str, Any], path: Path) -> Path:
    from dense_edge.fileio import write_json

    return write_json(path, report)  # atomic: a temporary file, then one rename
