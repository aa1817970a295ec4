"""Where a DLA build's layers run: the DLA, or the GPU they fall back to.

The builder answers per network layer (``IBuilderConfig.can_run_on_DLA`` with the DLA as the
default device type); this module turns those answers into the counts and names a report shows.
It needs no TensorRT. A DLA engine is honest only if it says how much of it is not on the DLA.
"""

from __future__ import annotations

from typing import TypedDict


class Placement(TypedDict):
    """Where a DLA build's layers run (the engine manifest's ``config.dla_placement``)."""

    layers: int
    dla_layers: int
    gpu_fallback_layers: int
    gpu_fallback_by_type: dict[str, int]  # layer type -> how many fall back, most first
    gpu_fallback: list[str]  # the names of the layers that fall back
    source: str  # how it was found


def summarize_placement(rows: list[tuple[str, str, bool]]) -> Placement:
    """``rows``: (layer name, layer type, runs on DLA) for every network layer."""
    gpu = [(name, kind) for name, kind, on_dla in rows if not on_dla]
    by_type: dict[str, int] = {}
    for _, kind in gpu:
        by_type[kind] = by_type.get(kind, 0) + 1
    return {
        "layers": len(rows),
        "dla_layers": len(rows) - len(gpu),
        "gpu_fallback_layers": len(gpu),
        "gpu_fallback_by_type": dict(sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
        "gpu_fallback": [name for name, _ in gpu],
        "source": "IBuilderConfig.can_run_on_DLA per network layer, before building",
    }


def describe_placement(placement: Placement) -> str:
    """One line for the terminal: how many layers run on the DLA and what falls back."""
    n, gpu = placement["layers"], placement["gpu_fallback_layers"]
    line = f"tensorrt: DLA runs {n - gpu} of {n} layers"
    if gpu:
        kinds = ", ".join(f"{k} x{v}" for k, v in placement["gpu_fallback_by_type"].items())
        line += f"; {gpu} fall back to the GPU ({kinds})"
    return line
