"""What this machine is and has: CPU and its vector/matrix extensions, GPU, torch.

Used by ``dense-edge doctor`` and recorded in every report, so two reports from different machines
are never compared silently. Each target says what its own runtime has (``Target.status``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from functools import lru_cache
from typing import TypedDict

from dense_edge.catalog import declaration
from dense_edge.manifest import library_versions
from dense_edge.records import CpuSummary, Environment, GpuSummary

_INTERESTING_FLAGS = (
    "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_int8", "amx_bf16", "amx_fp16",
)  # fmt: skip


@lru_cache(maxsize=1)
def cpu_info() -> CpuSummary:
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


def skipped_here(
    target: str, precisions: Sequence[str], flags: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """The precisions of ``target`` a recipe builds on this CPU (or one with ``flags``), and a
    note for each one left out because the CPU lacks the instructions it needs."""
    have = set(cpu_info()["flags"] if flags is None else flags)
    d = declaration(target)
    needs: dict[str, tuple[str, ...]] = dict(d.needs_cpu) if d else {}
    kept: list[str] = []
    notes: list[str] = []
    for p in precisions:
        wanted = needs.get(p)
        if wanted and not have & set(wanted):
            notes.append(f"{target}-{p} not built: this CPU ({cpu_info()['model']}) has none of "
                         f"{', '.join(wanted)}, so it would run as another precision")  # fmt: skip
        else:
            kept.append(p)
    return kept, notes


class TorchStatus(TypedDict, total=False):
    """``doctor``'s torch entry: the version, and the GPU when CUDA is available."""

    installed: bool
    version: str
    cuda: bool
    threads: int
    gpu: str
    compute_capability: str
    cuda_version: str | None


def torch_status() -> TorchStatus:
    try:
        import torch
    except ImportError:
        return {"installed": False}
    out: TorchStatus = {
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


def gpu_summary() -> GpuSummary | None:
    t = torch_status()
    if not t.get("cuda"):
        return None
    return {"name": t["gpu"], "compute_capability": t["compute_capability"]}


def snapshot(include_runtimes: bool = True) -> Environment:
    """Everything a report records about the machine it was made on."""
    env: Environment = {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_info(),
        "versions": library_versions(),
    }
    if include_runtimes:
        env["gpu"] = gpu_summary()
    return env
