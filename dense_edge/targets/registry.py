"""The targets dense-edge builds engines for, and how to load any engine bundle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dense_edge.errors import UserError
from dense_edge.targets.base import Runner


@dataclass(frozen=True)
class TargetInfo:
    name: str
    precisions: tuple[str, ...]
    profile: str  # the calibration profile its int8 engines are built from
    int8_source: str  # "onnx" (Q/DQ ONNX) or "ir" (NNCF IR)
    fp16_source: str  # "fp16-onnx" (an FP16 ONNX) or "fp32-onnx" (the runtime converts)
    default_precisions: tuple[str, ...]  # what `export --target X` builds unless told


TARGETS: dict[str, TargetInfo] = {
    "onnxruntime": TargetInfo("onnxruntime", ("fp32", "fp16", "int8"), "onnxruntime", "onnx",
                              "fp16-onnx", ("fp32", "int8")),
    "openvino": TargetInfo("openvino", ("fp32", "fp16", "bf16", "int8"), "openvino", "ir",
                           "fp32-onnx", ("fp32", "int8")),
    "tensorrt": TargetInfo("tensorrt", ("fp16", "int8", "fp32"), "tensorrt", "onnx", "fp16-onnx",
                           ("fp16", "int8")),
}  # fmt: skip


def get(name: str) -> TargetInfo:
    try:
        return TARGETS[name]
    except KeyError:
        raise UserError(
            f"unknown target {name!r}", fix=f"choose one of {', '.join(TARGETS)} (or onnx)"
        ) from None


def check_precision(target: str, precision: str) -> None:
    info = get(target)
    if precision not in info.precisions:
        raise UserError(
            f"target {target} does not build {precision} engines",
            fix=f"choose one of {', '.join(info.precisions)}",
        )


def compiler(name: str) -> Any:
    if name == "onnxruntime":
        from dense_edge.targets.onnxruntime import compiler as ort_compiler

        return ort_compiler
    if name == "openvino":
        from dense_edge.targets.openvino import compiler as ov_compiler

        return ov_compiler
    if name == "tensorrt":
        from dense_edge.targets.tensorrt import compiler as trt_compiler

        return trt_compiler
    raise UserError(f"unknown target {name!r}")


def load_runner(bundle: str | Path, *, verify: bool = True) -> Runner:
    """A runner for any engine bundle, chosen by its manifest."""
    from dense_edge.targets import bundle as bundle_io

    folder = Path(bundle)
    manifest = bundle_io.read(folder, verify=verify)
    target = manifest.get("target")
    if target == "onnxruntime":
        from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner.from_bundle(folder, manifest)
    if target == "openvino":
        from dense_edge.targets.openvino.runner import OpenVinoRunner

        return OpenVinoRunner.from_bundle(folder, manifest)
    if target == "tensorrt":
        from dense_edge.targets.tensorrt.runner import TensorRTRunner

        return TensorRTRunner.from_bundle(folder, manifest)
    raise UserError(f"bundle manifest names an unknown target {target!r}", path=folder)
