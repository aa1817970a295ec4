"""What this machine is and has: CPU and its vector/matrix extensions, GPU, installed runtimes.

Used by ``dense-edge doctor`` and recorded in every report, so two reports from different machines
are never compared silently. Heavy runtimes are imported only when asked about.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from typing import Any

from dense_edge.manifest import library_versions

_INTERESTING_FLAGS = (
    "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_int8", "amx_bf16", "amx_fp16",
)  # fmt: skip


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name") and ":" in line:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and ":" in line:
                    flags = set(line.split(":", 1)[1].split())
                if model and flags:
                    break
    except OSError:
        pass
    return {
        "model": model,
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "flags": [f for f in _INTERESTING_FLAGS if f in flags],
    }


def tensorrt_status() -> dict[str, Any]:
    """``{"installed": bool, "version": str|None, "reason": str|None}`` without failing."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        return {"installed": False, "version": None, "reason": f"not installed ({exc.msg})"}
    except OSError as exc:  # the bindings exist but libnvinfer does not load
        return {"installed": False, "version": None, "reason": f"libraries missing ({exc})"}
    if not hasattr(trt, "Builder"):
        # tensorrt-stubs alone makes `import tensorrt` succeed as an empty namespace package.
        return {"installed": False, "version": None, "reason": "not installed (only type stubs)"}
    return {"installed": True, "version": getattr(trt, "__version__", "unknown"), "reason": None}


def torch_status() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"installed": False}
    out: dict[str, Any] = {
        "installed": True,
        "version": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
    }
    if out["cuda"]:
        p = torch.cuda.get_device_properties(0)
        out["gpu"] = p.name
        out["compute_capability"] = f"{p.major}.{p.minor}"
        out["cuda_version"] = torch.version.cuda
    return out


def onnxruntime_status() -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except ImportError:
        return {"installed": False}
    return {
        "installed": True,
        "version": ort.__version__,
        "providers": ort.get_available_providers(),
    }


def openvino_status() -> dict[str, Any]:
    try:
        import openvino as ov
    except ImportError:
        return {"installed": False}
    core = ov.Core()
    devices = {}
    for d in core.available_devices:
        entry: dict[str, Any] = {}
        for prop in ("FULL_DEVICE_NAME", "OPTIMIZATION_CAPABILITIES", "INFERENCE_PRECISION_HINT"):
            try:
                entry[prop.lower()] = _plain(core.get_property(d, prop))
            except Exception:  # a device may not know a property
                pass
        devices[d] = entry
    return {"installed": True, "version": ov.get_version(), "devices": devices}


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    if hasattr(v, "get_type_name"):  # an OpenVINO element type: "bf16", "f32"
        return str(v.get_type_name())
    return str(v) if not isinstance(v, (int, float, bool)) else v


def gpu_summary() -> dict[str, Any] | None:
    t = torch_status()
    if not t.get("cuda"):
        return None
    return {"name": t["gpu"], "compute_capability": t["compute_capability"]}


def snapshot(include_runtimes: bool = True) -> dict[str, Any]:
    """Everything a report records about the machine it was made on."""
    env: dict[str, Any] = {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_info(),
        "versions": library_versions(),
    }
    if include_runtimes:
        env["gpu"] = gpu_summary()
    return env
