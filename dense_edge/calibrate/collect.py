"""Collecting activation statistics: one streaming pass of the float model over the calibration
set with ONNX Runtime, every observed tensor added as an extra output, histograms updated batch by
batch (memory stays bounded by one batch's activations plus fixed-size histograms).

Statistics are cached in ``RUN/int8/stats/`` keyed by the model and the calibration images, so a
second method, profile or accuracy-aware search never re-runs the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import onnx

from dense_edge.calibrate.graph import Graph
from dense_edge.calibrate.histogram import TensorStats
from dense_edge.errors import UserError
from dense_edge.fileio import (
    atomic_path,
    ensure_dir,
    read_json,
    sha256_file,
    sha256_json,
    write_json,
)
from dense_edge.progress import bar, info


@dataclass
class Statistics:
    tensors: dict[str, TensorStats]
    bins: int
    samples: int
    key: str
    seconds: float = 0.0
    peak_rss_mib: float | None = None

    def get(self, graph: Graph, tensor: str) -> TensorStats:
        """Statistics of ``tensor``; a concatenation's are merged from its inputs'."""
        if tensor in self.tensors:
            return self.tensors[tensor]
        leaves = graph.concat_leaves(tensor)
        if leaves == [tensor]:
            raise KeyError(f"no statistics for tensor {tensor!r}")
        merged = TensorStats.merge([self.get(graph, t) for t in leaves])
        self.tensors[tensor] = merged
        return merged


def histogram_bins(bins: int) -> int:
    """``bins`` rounded up to a power of two: histograms need one (pairs of bins merge when the
    range doubles)."""
    return 1 << (bins - 1).bit_length()


def batch_size_for(images: np.ndarray) -> int:
    """How many calibration images one statistics run takes: every activation of the batch is
    held at once, so large images go 8 at a time."""
    return 64 if int(np.prod(images.shape[1:])) <= 3 * 64 * 64 else 8


def stats_key(model_path: Path, calibration_identity: str, bins: int) -> str:
    return sha256_json(
        {"model": sha256_file(model_path), "images": calibration_identity, "bins": bins}
    )[:16]


def collect(
    model_path: Path,
    images: np.ndarray,
    *,
    bins: int,
    key: str,
    cache_dir: Path | None,
    batch_size: int = 8,
    threads: int | None = None,
) -> Statistics:
    if cache_dir is not None:
        cached = load_cached(cache_dir, key, bins)
        if cached is not None:
            info(f"calibrate: reusing cached statistics {cache_dir / (key + '.npz')}", once=True)
            return cached
    import onnxruntime as ort

    t0 = time.perf_counter()
    model = onnx.load(str(model_path))
    graph = Graph(model)
    names = graph.observed_tensors()
    existing = {o.name for o in model.graph.output}
    for name in names:
        if name not in existing:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    stats = {n: TensorStats(bins) for n in names}
    peak = 0.0
    with bar("calibrate: statistics", len(images)) as progress:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            outs = session.run(names, {input_name: batch})
            for name, value in zip(names, outs, strict=True):
                try:
                    stats[name].update(value)
                except FloatingPointError:
                    raise _not_finite(name, graph, start, len(batch), batch) from None
            del outs
            peak = max(peak, _rss_mib())
            progress.advance(len(batch))
    result = Statistics(
        stats, bins, len(images), key, seconds=time.perf_counter() - t0, peak_rss_mib=peak
    )
    if cache_dir is not None:
        save(result, cache_dir)
    return result


def _not_finite(name: str, graph: Any, start: int, n: int, batch: np.ndarray) -> UserError:
    """NaN or inf in an activation: name the layer, and say whether the images or the model
    (its weights) brought it in."""
    node = next((x for x in graph.model.graph.node if name in x.output), None)
    layer = f"{node.op_type} {node.name!r}" if node is not None else "the model"
    cause = (
        "the calibration images hold NaN or infinite values"
        if not np.isfinite(batch).all()
        else "the model's weights (or an overflow inside it) are not finite"
    )
    return UserError(
        f"calibration: tensor {name!r} of {layer} is NaN or infinite on images "
        f"{start}..{start + n - 1}: {cause}",
        fix="check the weights (retrain or export again) and the calibration images",
    )


def _rss_mib() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


class _CacheKeys(TypedDict):
    bins: int
    tensors: list[str]  # the .npz's arrays are named by index in this list
    samples: int


class CacheMeta(_CacheKeys, total=False):
    """``RUN/int8/stats/<key>.json``: what the cached statistics beside it (``<key>.npz``) are
    (a cache written by an older version may lack the optional keys)."""

    key: str
    seconds: float
    peak_rss_mib: float


def save(stats: Statistics, cache_dir: Path) -> None:
    ensure_dir(cache_dir)
    arrays: dict[str, np.ndarray] = {}
    names = list(stats.tensors)
    for i, name in enumerate(names):
        for part, arr in stats.tensors[name].to_arrays().items():
            arrays[f"{i}.{part}"] = arr
    with atomic_path(cache_dir / f"{stats.key}.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
    meta: CacheMeta = {
        "key": stats.key,
        "bins": stats.bins,
        "samples": stats.samples,
        "tensors": names,
        "seconds": round(stats.seconds, 2),
        "peak_rss_mib": round(stats.peak_rss_mib or 0, 1),
    }
    write_json(cache_dir / f"{stats.key}.json", meta)


def load_cached(cache_dir: Path, key: str, bins: int) -> Statistics | None:
    meta_path, data_path = cache_dir / f"{key}.json", cache_dir / f"{key}.npz"
    if not (meta_path.exists() and data_path.exists()):
        return None
    meta: CacheMeta = read_json(meta_path)
    if meta.get("bins") != bins:
        return None
    with np.load(data_path) as data:
        tensors = {
            name: TensorStats.from_arrays(
                bins, {p: data[f"{i}.{p}"] for p in ("scalars", "pos", "neg")}
            )
            for i, name in enumerate(meta["tensors"])
        }
    return Statistics(
        tensors, bins, meta["samples"], key, meta.get("seconds", 0.0), meta.get("peak_rss_mib")
    )
