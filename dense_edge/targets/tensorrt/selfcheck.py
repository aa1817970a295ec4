"""What a TensorRT kit runs on the device for ``dense-edge kit validate KIT`` (its validate.sh).

Builds the engine from the kit (or loads the ``model.engine`` trtexec.sh built) and describes it
and the device: the TensorRT, CUDA, GPU and JetPack (L4T) versions. The command
(:mod:`dense_edge.kits.device_run`) runs the kit's evaluation set through it and writes the device
report; latency is GPU compute time where the runner records it (CUDA events around
``execute_async_v3``, as trtexec reports "GPU Compute Time").

``runner="onnxruntime"`` runs the same path with ONNX Runtime over the kit's ``model.onnx`` (the
Q/DQ model for int8): a check of the kit and of this code where there is no GPU, labelled as such,
never a TensorRT measurement.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import TYPE_CHECKING

from dense_edge.errors import UserError
from dense_edge.progress import info
from dense_edge.targets.base import KitEngine, KitManifest, KitRun, Runner
from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner
from dense_edge.targets.tensorrt import cuda
from dense_edge.targets.tensorrt.compiler import build
from dense_edge.targets.tensorrt.plan import PRECISION_RUN, BuildPlan
from dense_edge.targets.tensorrt.runner import TensorRTRunner

if TYPE_CHECKING:
    from dense_edge.manifest import EngineRuntime

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


def device_environment(runner: str) -> dict[str, str | None]:
    """Host, GPU and the versions that decide what an engine is, as far as this machine says."""
    env: dict[str, str | None] = {"host": platform.node(), "machine": platform.machine()}
    env.update(gpu=None, tensorrt=None, cuda=None, jetpack=None)
    if NV_TEGRA_RELEASE.exists():
        release = l4t_release(NV_TEGRA_RELEASE.read_text(errors="replace"))
        env["jetpack"] = f"L4T {release}" if release else None  # the JetPack's Linux for Tegra
    if runner == "tensorrt":
        import tensorrt as trt

        env["tensorrt"] = str(trt.__version__)
        env["cuda"] = cuda.load().runtime_version()
        gpu = cuda.gpu(0)
        env["gpu"] = gpu["name"]
        env["compute_capability"] = gpu["compute_capability"]
    else:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
    return env


def _tensorrt_runner(
    kit: Path, manifest: KitManifest, *, rebuild: bool
) -> tuple[Runner, KitEngine]:

    plan = BuildPlan.from_dict(manifest["build_plan"])
    engine = kit / plan.engine
    config: dict[str, object] = {"dla_core": plan.dla_core}
    runtime_manifest: EngineRuntime = {"config": config, "precision": plan.precision}
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
    described: KitEngine = {
        "engine": plan.engine, "origin": origin, "config": config,
        "size_bytes": engine.stat().st_size if engine.exists() else 0,
    }  # fmt: skip
    return TensorRTRunner(engine, runtime_manifest), described


def _onnxruntime_runner(kit: Path, manifest: KitManifest) -> tuple[Runner, KitEngine]:

    model = kit / manifest["build_plan"]["onnx"]
    described: KitEngine = {
        "engine": model.name, "origin": "ONNX Runtime over the kit's ONNX (no TensorRT)",
        "config": {}, "size_bytes": model.stat().st_size,
    }  # fmt: skip
    return OnnxRuntimeRunner(model), described


def kit_run(kit: Path, manifest: KitManifest, *, runner: str, rebuild: bool) -> KitRun:
    """The runner ``kit validate`` times and the device report's engine fields for it."""
    if runner not in RUNNERS:
        raise UserError(f"unknown runner {runner!r}", fix=f"choose one of {', '.join(RUNNERS)}")
    on_trt = runner == RUNNERS[0]
    if on_trt:
        r, engine = _tensorrt_runner(kit, manifest, rebuild=rebuild)
    else:
        r, engine = _onnxruntime_runner(kit, manifest)
    precision = manifest["precision"]
    return KitRun(
        runner=r,
        name=f"tensorrt-{precision}" + ("" if on_trt else "-kit-onnxruntime"),
        target=runner,
        engine=engine,
        precision_run=None if on_trt else f"{precision} (the kit's ONNX, on ONNX Runtime)",
        note=None if on_trt else ORT_NOTE,
        max_batch=int(manifest["build_plan"]["profile"]["max"][0]),
        model_sha256=manifest["files"][manifest["build_plan"]["onnx"]]["sha256"],
        environment=device_environment(runner),
    )
