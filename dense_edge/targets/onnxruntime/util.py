"""ONNX Runtime helpers: execution providers and what precision an optimised model computes in."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from dense_edge.errors import MissingDependencyError

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
PROVIDER_PACKAGES = {
    "CUDAExecutionProvider": "onnxruntime-gpu",
    "TensorrtExecutionProvider": "onnxruntime-gpu (with TensorRT)",
    "OpenVINOExecutionProvider": "onnxruntime-openvino",
}
QUANTISED_OPS = ("QLinearConv", "ConvInteger", "QGemm", "MatMulInteger", "QLinearMatMul")


def resolve_provider(name: str | None) -> list[str]:
    """Providers to ask for, most preferred first, CPU always last as the fallback."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if name is None:
        return ["CPUExecutionProvider"]
    full = PROVIDER_ALIASES.get(name.lower(), name)
    if full not in available:
        package = PROVIDER_PACKAGES.get(full, "an onnxruntime build with it")
        raise MissingDependencyError(
            f"ONNX Runtime execution provider {full} is not installed "
            f"(available: {', '.join(available)})",
            fix=f"install {package}, or use device: cpu",
        )
    return [full] if full == "CPUExecutionProvider" else [full, "CPUExecutionProvider"]


def precision_run(model_path: Path) -> str:
    """What the convolutions of an optimised model compute in."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    ops = Counter(n.op_type for n in model.graph.node)
    quantised = sum(ops[o] for o in QUANTISED_OPS)
    if quantised:
        float_convs = ops.get("Conv", 0) + ops.get("FusedConv", 0)
        return "int8" + (f" ({float_convs} convolutions in float)" if float_convs else "")
    inits = {i.name: i.data_type for i in model.graph.initializer}
    conv_weights = [
        inits.get(n.input[1])
        for n in model.graph.node
        if n.op_type in ("Conv", "FusedConv") and len(n.input) > 1
    ]
    if conv_weights and all(t == onnx.TensorProto.FLOAT16 for t in conv_weights):
        return "fp16"
    if ops.get("Cast", 0) and any(
        i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer
    ):
        return "fp32 (fp16 weights cast up: no fp16 kernels for this provider)"
    return "fp32"


def session_options(level: str, threads: int | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return opts
