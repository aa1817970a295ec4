"""OpenVINO helpers: devices, compile configuration, and what precision really runs."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dense_edge.errors import UserError

# dense-edge precision -> OpenVINO INFERENCE_PRECISION_HINT. int8 leaves the hint at the
# device default: the quantised ops run in int8 whatever it says, the rest as the device likes.
PRECISION_HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}
VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")


def check_device(c: Any, device: str) -> None:
    if device.split(":")[0] in VIRTUAL_DEVICES:
        return
    available = list(c.available_devices)
    if device not in available:
        raise UserError(
            f"OpenVINO device {device!r} is not present on this machine",
            fix=f"choose one of {', '.join([*available, 'AUTO'])}",
        )


def compile_config(
    precision: str, hint: str, threads: int | None, streams: int | None
) -> dict[str, str | int]:
    """OpenVINO's compile properties: the performance hint, and the precision, threads and
    streams when set."""
    cfg: dict[str, str | int] = {"PERFORMANCE_HINT": hint.upper()}
    if precision in PRECISION_HINTS:
        cfg["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[precision]
    if threads:
        cfg["INFERENCE_NUM_THREADS"] = threads
    if streams:
        cfg["NUM_STREAMS"] = streams
    return cfg


def runtime_precisions(compiled: Any) -> dict[str, dict[str, int]]:
    """Per layer type, how many layers run in each precision (from the runtime model)."""
    table: dict[str, Counter[str]] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" not in info or "runtimePrecision" not in info:
            continue
        kind = info["layerType"].astype(str)
        if kind in ("Input", "Output", "Const", "Reorder"):
            continue
        table.setdefault(kind, Counter())[info["runtimePrecision"].astype(str)] += 1
    return {k: dict(v) for k, v in sorted(table.items())}


def main_precision(table: dict[str, dict[str, int]]) -> str:
    """What the convolutions run in: ``int8`` (u8/i8), ``bf16``, ``f16`` or ``f32``."""
    convs = Counter(table.get("Convolution", {})) + Counter(table.get("FullyConnected", {}))
    if not convs:
        return "unknown"
    top = convs.most_common(1)[0][0]
    names = {"u8": "int8", "i8": "int8", "bf16": "bf16", "f16": "fp16", "f32": "fp32"}
    ran = names.get(top, top)
    others = {names.get(p, p) for p in convs} - {ran}
    return ran + (f" (some layers {', '.join(sorted(others))})" if others else "")
