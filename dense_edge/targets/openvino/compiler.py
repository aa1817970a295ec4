"""Build an OpenVINO engine bundle from a float ONNX model or an NNCF-quantised IR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dense_edge import ovcore
from dense_edge.stages import room_for
from dense_edge.targets.openvino import util

MODEL_XML, MODEL_BIN = "model.xml", "model.bin"


def compile_engine(
    source: Path,
    out_dir: Path,
    *,
    precision: str,
    device: str | None,
    hint: str,
    threads: int | None,
    streams: int | None,
) -> dict[str, Any]:
    """Write ``model.xml``/``model.bin`` into ``out_dir``; return the bundle's manifest fields."""
    import openvino as ov

    core = ovcore.core()
    device = device or "CPU"
    util.check_device(core, device)
    model = ovcore.read_model(source)  # an op it cannot convert is named, with its node
    # fp16 stores weights in half precision (half the file); the device decides what it computes.
    try:
        ov.save_model(model, str(out_dir / MODEL_XML), compress_to_fp16=precision == "fp16")
    except RuntimeError:  # a full disk reads "basic_ios::clear: iostream error"
        weights = source.with_suffix(".bin")  # an NNCF IR's weights lie beside its .xml
        size = source.stat().st_size + (weights.stat().st_size if weights.is_file() else 0)
        room_for(out_dir, size, shown=out_dir.parent)
        raise
    config = util.compile_config(precision, hint, threads, streams)
    compiled = core.compile_model(str(out_dir / MODEL_XML), device, config)
    table = util.runtime_precisions(compiled)
    return {
        "files": [MODEL_XML, MODEL_BIN],
        "runtime": {"name": "openvino", "version": ov.get_version()},
        "device": device,
        "device_name": _device_name(core, device),
        "config": config,
        "precision_run": util.main_precision(table),
        "runtime_precisions": table,
        "threads": _prop(compiled, "INFERENCE_NUM_THREADS"),
        "streams": _prop(compiled, "NUM_STREAMS"),
    }


def _device_name(core: Any, device: str) -> str:
    try:
        return str(core.get_property(device, "FULL_DEVICE_NAME"))
    except Exception:
        return device


def _prop(compiled: Any, name: str) -> Any:
    try:
        value = compiled.get_property(name)
    except Exception:
        return None
    return value if isinstance(value, (int, float, str)) else str(value)
