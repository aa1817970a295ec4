"""The kit's device validator: one file that needs only what JetPack ships.

A kit carries this file verbatim as ``validate_kit.py``; its ``validate.sh`` runs it with the
system ``python3``. It imports the standard library, numpy and, for ``--runner tensorrt``,
TensorRT's Python bindings (JetPack's python3-libnvinfer) with CUDA memory through ``ctypes`` on
``libcudart`` (as NVIDIA's samples and Polygraphy do); for ``--runner onnxruntime`` ONNX Runtime.
No torch, no dense-edge, nothing from an index: on a Jetson a ``pip install`` can replace
NVIDIA's CUDA build of torch with a CPU one, and there is no package to install anyway. Why one
script and not an offline wheel: dense-edge's own modules import click, rich and pydantic, which
JetPack does not ship; a script has nothing to install.

It checks the kit's files against its manifest, builds the engine with the kit's ``trtexec.sh``
if there is none (or ``--rebuild``), runs the evaluation set, and writes ``device_report.json``
(the schema ``dense-edge kit validate`` writes; ``dense-edge report merge`` takes either). The
engine core (:class:`EngineRunner`, :class:`Cuda`) is also what dense-edge's TensorRT runner
runs, so the package and the kit share one implementation; the metrics repeat the project's
(``dense_edge.validate.accuracy.evaluate``, ``dense_edge.validate.latency``) and a test checks
both give the same report on the same kit.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

if TYPE_CHECKING:  # the types of the engine objects (tests/targets/trt_api.py reads them too)
    import tensorrt

# dense_edge.kits.device_report.SCHEMA and VERSION (this file cannot import them; a test checks)
SCHEMA, SCHEMA_VERSION = "dense-edge/device-report", 1
ALIGNMENT = 256  # bytes: IExecutionContext.set_tensor_address needs 256-byte aligned addresses
P99_MIN_SAMPLES = 1000
CLOCK_TRT = "TensorRT GPU compute (CUDA events)"
ORT_NOTE = (
    "ONNX Runtime over the kit's ONNX model: checks the kit and the metric code; "
    "not a TensorRT measurement"
)


class DeviceError(RuntimeError):
    """A problem on the device a user can fix; the message says how."""


# -- the records it reads and writes (as dense_edge.records' and dense_edge.kits', restated:
# this file imports nothing of dense-edge) -------------------------------------------------------
class OptimizationProfile(TypedDict):
    min: list[int]
    opt: list[int]
    max: list[int]


class _PlanKeys(TypedDict):
    onnx: str
    profile: OptimizationProfile


class Plan(_PlanKeys, total=False):
    """The kit manifest's ``build_plan`` (``BuildPlan.to_dict``): the keys read here."""

    precision: str
    engine: str
    dla_core: int | None


class KitFile(TypedDict):
    sha256: str
    bytes: int


class KitManifest(TypedDict, total=False):
    """The kit's ``manifest.json``: the keys read here."""

    kind: str
    arch: str
    classes: list[str]
    precision: str
    files: dict[str, KitFile]
    build_plan: Plan
    run: dict[str, str | None]


class KitIdentity(TypedDict):
    manifest_sha256: str
    evaluation_sha256: str | None
    model_sha256: str | None


class EvalInfo(TypedDict, total=False):
    """The kit's ``eval/eval.json``."""

    split: str | None
    samples: int
    of: int | None
    source: str | None
    float_top1: float | None
    batch_sizes: list[int]


# One class the engine got fewer images right of than the float model (``class`` is a keyword).
WorstClass = TypedDict("WorstClass", {"class": str, "images": int, "correct": int,
                                      "float_correct": int, "top1_fraction": float,
                                      "top1_drop_points": float})  # fmt: skip


class Accuracy(TypedDict, total=False):
    agreement_fraction: float
    cosine: float
    min_cosine: float
    max_abs_error: float
    mean_abs_error: float
    top1_fraction: float
    top5_fraction: float
    top1_drop_points: float
    worst_classes: list[WorstClass]


class Latency(TypedDict):
    batch: int
    iterations: int
    p50_ms: float
    p50_ci_low_ms: float
    p50_ci_high_ms: float
    p90_ms: float
    p99_ms: float | None  # None: too few samples
    mean_ms: float
    min_ms: float
    max_ms: float
    throughput_ips: float
    clock: str
    wall_p50_ms: float


class DeviceEnvironment(TypedDict, total=False):
    host: str
    machine: str
    gpu: str | None
    tensorrt: str | None
    cuda: str | None
    jetpack: str | None
    compute_capability: str
    onnxruntime: str


class EngineFields(TypedDict):
    engine: str
    origin: str
    config: dict[str, int | None]  # {"dla_core": ...}; {} on ONNX Runtime
    size_bytes: int
    runtime: str
    device: str | list[str]


class KitSummary(TypedDict):
    path: str
    name: str
    precision: str
    arch: str | None
    identity: KitIdentity
    model_sha256: str
    run: dict[str, str | None]


class EngineSummary(EngineFields):
    name: str
    target: str
    precision: str
    precision_run: str


class DeviceReport(TypedDict):
    """``device_report.json`` (dense_edge.kits.device_report's schema)."""

    schema: str
    schema_version: int
    created: str
    measured_by: str
    note: str | None
    kit: KitSummary
    engine: EngineSummary
    evaluation: EvalInfo
    accuracy: Accuracy
    latency: dict[str, Latency]
    cold_start_s: float
    peak_rss_mib: float | None
    environment: DeviceEnvironment
    validator: str


# -- CUDA through ctypes ------------------------------------------------------------------------
_CUDART = ("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0")
_CUDA_DIRS = ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/aarch64-linux/lib",
              "/usr/lib/aarch64-linux-gnu", "/usr/lib/x86_64-linux-gnu")  # fmt: skip


def find_cudart() -> ctypes.CDLL:
    names = [os.environ.get("DENSE_EDGE_CUDART", ""), *_CUDART, ctypes.util.find_library("cudart")]
    names += [str(Path(d) / n) for d in _CUDA_DIRS for n in _CUDART]
    for name in names:
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    raise DeviceError(
        "the CUDA runtime (libcudart) does not load here: install CUDA (JetPack ships it in "
        "/usr/local/cuda), or set DENSE_EDGE_CUDART to the path of libcudart.so"
    )


class Cuda:
    """The CUDA runtime calls TensorRT needs from us; each raises DeviceError on failure."""

    def __init__(self, lib: ctypes.CDLL | None = None) -> None:
        self.lib = lib if lib is not None else find_cudart()
        self.lib.cudaGetErrorString.restype = ctypes.c_char_p
        self.lib.cudaMemcpyAsync.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                             ctypes.c_int, ctypes.c_void_p]  # fmt: skip

    def _check(self, code: int, what: str) -> None:
        if code != 0:
            text = self.lib.cudaGetErrorString(code)
            raise DeviceError(f"CUDA {what} failed: {text.decode() if text else code}")

    def device_count(self) -> int:
        n = ctypes.c_int(0)
        return int(n.value) if self.lib.cudaGetDeviceCount(ctypes.byref(n)) == 0 else 0

    def set_device(self, index: int) -> None:
        self._check(self.lib.cudaSetDevice(ctypes.c_int(index)), "cudaSetDevice")

    def properties(self, index: int) -> dict[str, str]:
        cc = [ctypes.c_int(0), ctypes.c_int(0)]
        for value, attr in zip(cc, (75, 76), strict=True):  # compute capability major, minor
            self._check(self.lib.cudaDeviceGetAttribute(ctypes.byref(value), attr, index),
                        "cudaDeviceGetAttribute")  # fmt: skip
        buf = ctypes.create_string_buffer(4096)  # cudaDeviceProp (~1 KB) starts with name[256]
        self._check(self.lib.cudaGetDeviceProperties(buf, index), "cudaGetDeviceProperties")
        name = buf.raw[:256].split(b"\0", 1)[0].decode(errors="replace")
        return {"name": name, "compute_capability": f"{cc[0].value}.{cc[1].value}"}

    def runtime_version(self) -> str:
        v = ctypes.c_int(0)
        self._check(self.lib.cudaRuntimeGetVersion(ctypes.byref(v)), "cudaRuntimeGetVersion")
        return f"{v.value // 1000}.{v.value % 1000 // 10}"

    def malloc(self, nbytes: int) -> int:
        ptr = ctypes.c_void_p()
        self._check(self.lib.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(max(nbytes, 1))),
                    "cudaMalloc")  # fmt: skip
        return int(ptr.value or 0)

    def free(self, ptr: int) -> None:
        self._check(self.lib.cudaFree(ctypes.c_void_p(ptr)), "cudaFree")

    def to_device(self, dst: int, src: np.ndarray, stream: int) -> None:
        self._check(self.lib.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, 1, stream),
                    "cudaMemcpyAsync (to the GPU)")  # fmt: skip

    def to_host(self, dst: np.ndarray, src: int, stream: int) -> None:
        self._check(self.lib.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, 2, stream),
                    "cudaMemcpyAsync (to the host)")  # fmt: skip

    def stream(self) -> int:
        s = ctypes.c_void_p()
        self._check(self.lib.cudaStreamCreate(ctypes.byref(s)), "cudaStreamCreate")
        return int(s.value or 0)

    def stream_destroy(self, stream: int) -> None:
        self._check(self.lib.cudaStreamDestroy(ctypes.c_void_p(stream)), "cudaStreamDestroy")

    def synchronize(self, stream: int) -> None:
        self._check(self.lib.cudaStreamSynchronize(ctypes.c_void_p(stream)),
                    "cudaStreamSynchronize")  # fmt: skip

    def event(self) -> int:
        e = ctypes.c_void_p()
        self._check(self.lib.cudaEventCreate(ctypes.byref(e)), "cudaEventCreate")
        return int(e.value or 0)

    def event_destroy(self, event: int) -> None:
        self._check(self.lib.cudaEventDestroy(ctypes.c_void_p(event)), "cudaEventDestroy")

    def record(self, event: int, stream: int) -> None:
        self._check(self.lib.cudaEventRecord(ctypes.c_void_p(event), ctypes.c_void_p(stream)),
                    "cudaEventRecord")  # fmt: skip

    def elapsed_ms(self, start: int, end: int) -> float:
        ms = ctypes.c_float(0.0)
        code = self.lib.cudaEventElapsedTime(ctypes.byref(ms), ctypes.c_void_p(start),
                                             ctypes.c_void_p(end))  # fmt: skip
        self._check(code, "cudaEventElapsedTime")
        return float(ms.value)


# -- the engine ---------------------------------------------------------------------------------
def chunks(batch: int, min_batch: int, max_batch: int) -> list[tuple[int, int, int]]:
    """``(start, images, run_as)`` per enqueue: at most ``max_batch`` images each, run as
    ``max(images, min_batch)`` (the rest zero padding) so that every shape is in the profile."""
    return [(s, min(max_batch, batch - s), max(min(max_batch, batch - s), min_batch))
            for s in range(0, batch, max_batch)]  # fmt: skip


class EngineRunner:
    """One engine, one input, one output: numpy in, numpy out, on the engine's profile 0.

    Device buffers for the profile's largest batch are allocated once and their addresses bound
    once (a host pointer is never bound). Larger batches are split by the profile's max; a chunk
    smaller than its min (static engines: every DLA engine, ``min_batch > 1``) is padded with
    zeros and the padding's outputs dropped. One call queues every chunk on one stream and
    synchronises once; one CUDA event pair per chunk, made once and reused, times the enqueues.
    """

    def __init__(self, trt: Any, cuda: Any, engine_bytes: bytes, *, dla_core: int | None = None,
                 device: int = 0) -> None:  # fmt: skip
        self.trt, self.cuda = trt, cuda
        self.last_device_ms: float | None = None
        self._buffers: list[int] = []
        self._events: list[tuple[int, int]] = []
        self._stream: int | None = None
        cuda.set_device(device)  # the engine deserialises onto this device
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime: tensorrt.Runtime = trt.Runtime(self.logger)
        if dla_core is not None:
            self.runtime.DLA_core = int(dla_core)
        engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if engine is None:
            raise DeviceError(
                "TensorRT could not load the engine (built with another TensorRT version or GPU?):"
                " rebuild it here with bash trtexec.sh"
            )
        self.engine: tensorrt.ICudaEngine = engine
        context = engine.create_execution_context()
        if context is None:
            raise DeviceError("TensorRT could not create an execution context (GPU memory?)")
        self.context: tensorrt.IExecutionContext = context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise DeviceError(f"expected one input and one output, found {inputs} and {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        dtypes: dict[Any, np.dtype[Any]] = {
            trt.DataType.FLOAT: np.dtype(np.float32),
            trt.DataType.HALF: np.dtype(np.float16),
        }
        in_type, out_type = (
            engine.get_tensor_dtype(n) for n in (self.input_name, self.output_name)
        )
        if in_type not in dtypes or out_type not in dtypes:
            raise DeviceError(f"engine I/O types {in_type}, {out_type} are not float32/float16")
        self.input_dtype, self.output_dtype = dtypes[in_type], dtypes[out_type]
        fixed = tuple(int(d) for d in engine.get_tensor_shape(self.input_name))
        if min(fixed) >= 0:  # a static-shape input has no profile (export.dynamic_batch: false)
            lo = hi = fixed
        else:
            lo, _, hi = engine.get_tensor_profile_shape(self.input_name, 0)
        self.min_batch, self.max_batch = int(lo[0]), int(hi[0])
        self.item_shape = tuple(int(hi[i]) for i in range(1, len(hi)))
        self._shape = (self.max_batch, *self.item_shape)
        if not context.set_input_shape(self.input_name, self._shape):
            raise DeviceError(f"the engine refuses its own profile's max shape {self._shape}")
        dims = context.get_tensor_shape(self.output_name)
        self.output_item = tuple(int(dims[i]) for i in range(1, len(dims)))
        self._stream = cuda.stream()
        tensors: list[tuple[str, tuple[int, ...], np.dtype[Any]]] = [
            (self.input_name, self.item_shape, self.input_dtype),
            (self.output_name, self.output_item, self.output_dtype),
        ]
        for name, item, dtype in tensors:
            address = cuda.malloc(self.max_batch * int(np.prod(item)) * dtype.itemsize)
            self._buffers.append(address)
            if address % ALIGNMENT:  # cudaMalloc aligns to 256 bytes or more; checked anyway
                raise DeviceError(f"device address {address:#x} is not 256-byte aligned")
            if not context.set_tensor_address(name, address):
                raise DeviceError(f"TensorRT refused the address of tensor {name}")

    def infer(self, images: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(images, dtype=self.input_dtype)
        if x.shape[1:] != self.item_shape:
            raise DeviceError(f"input shape {x.shape[1:]} is not the engine's {self.item_shape}")
        plan = chunks(len(x), self.min_batch, self.max_batch)
        out = np.empty((len(x), *self.output_item), self.output_dtype)
        while len(self._events) < len(plan):  # made once, reused by every later call
            self._events.append((self.cuda.event(), self.cuda.event()))
        stream, (d_in, d_out) = self._stream, self._buffers
        assert stream is not None, "the runner was closed"
        staged, results = [], []  # host arrays the queued copies use, alive until the sync
        for (first, n, run_as), (start, end) in zip(plan, self._events, strict=False):
            part = x[first : first + n]
            if run_as > n:
                part = np.concatenate([part, np.zeros((run_as - n, *self.item_shape), x.dtype)])
            staged.append(part)
            self.cuda.to_device(d_in, part, stream)
            shape = (run_as, *self.item_shape)
            if shape != self._shape:
                if not self.context.set_input_shape(self.input_name, shape):
                    raise DeviceError(
                        f"batch shape {shape} is outside the engine's optimisation profile "
                        f"(batch {self.min_batch}..{self.max_batch})"
                    )
                self._shape = shape
            self.cuda.record(start, stream)
            if not self.context.execute_async_v3(stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see TensorRT's log above)")
            self.cuda.record(end, stream)
            result = np.empty((run_as, *self.output_item), self.output_dtype)
            self.cuda.to_host(result, d_out, stream)
            results.append((first, n, result))
        self.cuda.synchronize(stream)
        for first, n, result in results:
            out[first : first + n] = result[:n]
        self.last_device_ms = sum(self.cuda.elapsed_ms(s, e) for s, e in self._events[: len(plan)])
        result_f32: np.ndarray = out.astype(np.float32, copy=False)
        return result_f32

    def close(self) -> None:
        for attr in ("context", "engine", "runtime"):  # the context before the engine
            if hasattr(self, attr):
                delattr(self, attr)
        for start, end in self._events:
            self.cuda.event_destroy(start)
            self.cuda.event_destroy(end)
        for ptr in self._buffers:
            self.cuda.free(ptr)
        if self._stream is not None:
            self.cuda.stream_destroy(self._stream)
        self._events, self._buffers, self._stream = [], [], None


# -- metrics (as dense_edge.validate.accuracy.evaluate and dense_edge.validate.latency) -----------
def evaluate(logits: np.ndarray, labels: np.ndarray, reference: np.ndarray,
             classes: list[str]) -> Accuracy:  # fmt: skip
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    got = np.asarray(logits, np.float64).reshape(len(logits), -1)
    diff = np.abs(ref - got)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)
    cos = np.where(norms > 0, (ref * got).sum(1) / np.maximum(norms, 1e-300), 1.0)
    ref_pred, pred = ref.argmax(1), got.argmax(1)
    out: Accuracy = {
        "agreement_fraction": round(float((ref_pred == pred).mean()) if len(ref) else 1.0, 6),
        "cosine": round(float(cos.mean()) if cos.size else 1.0, 8),
        "min_cosine": round(float(cos.min()) if cos.size else 1.0, 8),
        "max_abs_error": round(float(diff.max()) if diff.size else 0.0, 8),
        "mean_abs_error": round(float(diff.mean()) if diff.size else 0.0, 8),
    }
    f_top1 = float((ref_pred == labels).mean()) if len(labels) else math.nan
    c_top1 = float((pred == labels).mean()) if len(labels) else math.nan
    top5 = np.argsort(-got, axis=1)[:, :5]
    out["top1_fraction"] = round(c_top1, 6)
    out["top5_fraction"] = (round(float((top5 == labels[:, None]).any(axis=1).mean()), 6)
                            if len(labels) else math.nan)  # fmt: skip
    out["top1_drop_points"] = round((f_top1 - c_top1) * 100, 4)
    losses: list[WorstClass] = []
    for c in range(len(classes)):
        mask = labels == c
        n, mine, theirs = (
            int(mask.sum()),
            int((pred[mask] == c).sum()),
            int((ref_pred[mask] == c).sum()),
        )
        if n and mine < theirs:
            losses.append({"class": classes[c], "images": n, "correct": mine,
                           "float_correct": theirs, "top1_fraction": round(mine / n, 6),
                           "top1_drop_points": round((theirs - mine) / n * 100, 4)})  # fmt: skip
    out["worst_classes"] = sorted(losses, key=lambda d: -float(d["top1_drop_points"]))[:5]
    return out


def median_ci_ranks(n: int, level: float = 0.95) -> tuple[int, int]:
    alpha, log_half, cdf, k = (1.0 - level) / 2, n * math.log(0.5), 0.0, 0
    while k < n:
        p = math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half)
        if cdf + p > alpha:
            break
        cdf += p
        k += 1
    lo = max(k - 1, 0)
    return lo, min(n - 1 - lo, n - 1)


def latency(run: Any, device_seconds: Any, clock: str, batch: int, warmup: int,
            iterations: int) -> Latency:  # fmt: skip
    for _ in range(warmup):
        run()
    own, wall = [], []
    for _ in range(iterations):
        t0 = time.perf_counter()
        run()
        wall.append(time.perf_counter() - t0)
        own.append(device_seconds() if device_seconds is not None else wall[-1])
    ms = np.sort(np.asarray(own, np.float64) * 1000.0)
    p50 = float(np.percentile(ms, 50))
    lo, hi = median_ci_ranks(len(ms))
    p99 = float(np.percentile(ms, 99)) if len(ms) >= P99_MIN_SAMPLES else None
    return {
        "batch": batch, "iterations": len(ms), "p50_ms": _r4(p50),
        "p50_ci_low_ms": _r4(float(ms[lo])), "p50_ci_high_ms": _r4(float(ms[hi])),
        "p90_ms": _r4(float(np.percentile(ms, 90))), "p99_ms": None if p99 is None else _r4(p99),
        "mean_ms": _r4(float(ms.mean())), "min_ms": _r4(float(ms.min())),
        "max_ms": _r4(float(ms.max())),
        "throughput_ips": _r4(batch * 1000.0 / p50 if p50 > 0 else float("inf")), "clock": clock,
        "wall_p50_ms": _r4(float(np.percentile(np.multiply(wall, 1e3), 50))),
    }  # fmt: skip


def _r4(value: float) -> float:
    return round(value, 4)


def batch_of(images: np.ndarray, batch: int) -> np.ndarray:
    reps = -(-batch // len(images))
    return np.ascontiguousarray(np.concatenate([images] * reps)[:batch])


# -- the kit ------------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_kit(kit: Path) -> KitManifest:
    """The kit's manifest, after checking every listed file's sha256."""
    path = kit / "manifest.json"
    if not path.exists():
        raise DeviceError(f"{kit}: not a TensorRT build kit (no manifest.json)")
    manifest: KitManifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("kind") != "tensorrt-kit":
        raise DeviceError(f"{path}: manifest kind is {manifest.get('kind')!r}, not a TensorRT kit")
    for name, entry in manifest.get("files", {}).items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DeviceError(f"{path}: the kit lists a file outside it: {name}")
        f = kit / name
        if not f.exists() or sha256(f) != entry.get("sha256"):
            raise DeviceError(f"{kit}: kit file {name} is missing or does not match its sha256 "
                              "(copy the kit again, scp -r, or export it again)")  # fmt: skip
    return manifest


def identity(kit: Path, manifest: KitManifest) -> KitIdentity:
    """As dense_edge.kits.seal.identity: what report merge compares with the run's seal."""
    eval_files = sorted(p for p in (kit / "eval").glob("*") if p.is_file())
    digest = hashlib.sha256()
    for p in eval_files:
        digest.update(f"{p.name}:{sha256(p)}\n".encode())
    model = manifest.get("build_plan", {}).get("onnx")
    return {
        "manifest_sha256": sha256(kit / "manifest.json"),
        "evaluation_sha256": digest.hexdigest() if eval_files else None,
        "model_sha256": sha256(kit / model) if model and (kit / model).is_file() else None,
    }


def read_eval(kit: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, EvalInfo]:
    folder = kit / "eval"
    if not (folder / "eval.json").exists():
        raise DeviceError(f"{kit}: this kit carries no evaluation set (export it again from a "
                          "recipe with labelled data)")  # fmt: skip
    info: EvalInfo = json.loads((folder / "eval.json").read_text())
    arrays = [np.load(folder / n, allow_pickle=False)
              for n in ("images.npy", "labels.npy", "float_logits.npy")]  # fmt: skip
    if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]) == info["samples"]:
        raise DeviceError(f"{folder}: the evaluation set's files disagree in length")
    return arrays[0], arrays[1], arrays[2], info


def l4t_release(text: str) -> str | None:
    """The L4T release in JetPack's /etc/nv_tegra_release (``# R36 (release), REVISION: 4.3``)."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"R{m.group(1)}.{m.group(2)}" if m else None


def _environment() -> DeviceEnvironment:
    env: DeviceEnvironment = {"host": platform.node(), "machine": platform.machine(),
                              "gpu": None, "tensorrt": None, "cuda": None,
                              "jetpack": None}  # fmt: skip
    tegra = Path("/etc/nv_tegra_release")
    if tegra.exists():
        release = l4t_release(tegra.read_text(errors="replace"))
        env["jetpack"] = f"L4T {release}" if release else None
    return env


class _Run:
    """What the report needs from a runner: the call, its clock, its engine fields."""

    def __init__(self, infer: Any, clock: str, device_seconds: Any, engine: EngineFields,
                 close: Any) -> None:  # fmt: skip
        self.infer, self.clock, self.device_seconds = infer, clock, device_seconds
        self.engine, self.close = engine, close


def _tensorrt(kit: Path, plan: Plan, rebuild: bool, env: DeviceEnvironment) -> _Run:
    engine_path = kit / plan.get("engine", "model.engine")
    if rebuild or not engine_path.exists():
        print(f"validate_kit: building {engine_path.name} with bash trtexec.sh", file=sys.stderr)
        done = subprocess.run(["bash", str(kit / "trtexec.sh")], cwd=kit, check=False)
        if done.returncode != 0 or not engine_path.exists():
            raise DeviceError(f"bash trtexec.sh failed (exit {done.returncode}); see its output")
        origin = "built by validate.sh (trtexec.sh)"
    else:
        origin = f"{engine_path.name} found in the kit (trtexec.sh or an earlier run)"
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise DeviceError(f"TensorRT's Python bindings are not installed ({exc}): on a Jetson, "
                          "sudo apt install python3-libnvinfer") from None  # fmt: skip
    cuda = Cuda()
    if cuda.device_count() == 0:
        raise DeviceError("no CUDA GPU is visible here")
    gpu = cuda.properties(0)
    env["tensorrt"] = str(trt.__version__)
    env["cuda"] = cuda.runtime_version()
    env["gpu"] = gpu["name"]
    env["compute_capability"] = gpu["compute_capability"]
    core = EngineRunner(trt, cuda, engine_path.read_bytes(), dla_core=plan.get("dla_core"))
    dla = plan.get("dla_core")
    engine: EngineFields = {
        "engine": engine_path.name, "origin": origin, "config": {"dla_core": dla},
        "size_bytes": engine_path.stat().st_size, "runtime": f"tensorrt {trt.__version__}",
        "device": "cuda:0" if dla is None else f"DLA:{dla}",
    }  # fmt: skip
    return _Run(
        core.infer, CLOCK_TRT, lambda: (core.last_device_ms or 0.0) / 1000.0, engine, core.close
    )


def _onnxruntime(kit: Path, plan: Plan, env: DeviceEnvironment) -> _Run:
    import onnxruntime as ort

    model = kit / plan["onnx"]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    env["onnxruntime"] = ort.__version__

    def infer(x: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: np.ascontiguousarray(x, np.float32)})[0],
                          np.float32)  # fmt: skip

    engine: EngineFields = {
        "engine": model.name, "origin": "ONNX Runtime over the kit's ONNX (no TensorRT)",
        "config": {}, "size_bytes": model.stat().st_size,
        "runtime": f"onnxruntime {ort.__version__}", "device": ["CPUExecutionProvider"],
    }  # fmt: skip
    return _Run(infer, "wall", None, engine, lambda: None)


def validate(kit: Path, *, runner: str = "tensorrt", rebuild: bool = False, warmup: int = 20,
             iterations: int = 1000) -> DeviceReport:  # fmt: skip
    """The device report for ``kit`` (not yet written)."""
    kit = Path(kit)
    manifest = read_kit(kit)
    plan = manifest["build_plan"]
    images, labels, float_logits, info = read_eval(kit)
    env = _environment()
    t0 = time.perf_counter()
    run = (
        _tensorrt(kit, plan, rebuild, env) if runner == "tensorrt" else _onnxruntime(kit, plan, env)
    )
    profile_max = int(plan["profile"]["max"][0])
    try:
        run.infer(images[:1])
        cold = time.perf_counter() - t0
        logits = np.concatenate([run.infer(images[i : i + profile_max])
                                 for i in range(0, len(images), profile_max)])  # fmt: skip
        lat: dict[str, Latency] = {}
        for b in [b for b in info.get("batch_sizes", [1]) if b <= profile_max] or [1]:
            x = batch_of(images, b)
            lat[str(b)] = latency(lambda x=x: run.infer(x), run.device_seconds, run.clock, b,
                                  warmup, iterations)  # fmt: skip
    finally:
        run.close()
    precision = manifest["precision"]
    on_trt = runner == "tensorrt"
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except ImportError:  # pragma: no cover - not on Linux
        peak = None
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "measured_by": runner,
        "note": None if on_trt else ORT_NOTE,
        "kit": {
            "path": str(kit.resolve()),
            "name": kit.resolve().name,
            "precision": precision,
            "arch": manifest.get("arch"),
            "identity": identity(kit, manifest),
            "model_sha256": manifest["files"][plan["onnx"]]["sha256"],
            "run": manifest.get("run", {}),
        },
        "engine": {
            "name": f"tensorrt-{precision}" + ("" if on_trt else "-kit-onnxruntime"),
            "target": runner,
            "precision": precision,
            "precision_run": manifest.get("build_plan", {}).get("precision", precision)
            if on_trt
            else f"{precision} (the kit's ONNX, on ONNX Runtime)",
            **run.engine,
        },
        "evaluation": {
            "split": info["split"],
            "samples": info["samples"],
            "of": info["of"],
            "source": info["source"],
            "float_top1": info["float_top1"],
        },
        "accuracy": evaluate(logits, labels, float_logits, manifest["classes"]),
        "latency": lat,
        "cold_start_s": round(cold, 4),
        "peak_rss_mib": round(peak, 1) if peak is not None else None,
        "environment": env,
        "validator": "validate_kit.py (numpy + TensorRT/ONNX Runtime only)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate this kit on the device; write device_report.json "
        "(dense-edge report merge takes it)."
    )
    parser.add_argument("--runner", choices=("tensorrt", "onnxruntime"), default="tensorrt",
                        help="tensorrt: the engine on this GPU; onnxruntime: the kit's ONNX on "
                        "ONNX Runtime, to check a kit where there is no GPU (not a TensorRT "
                        "measurement)")  # fmt: skip
    parser.add_argument("--rebuild", action="store_true", help="run trtexec.sh even if "
                        "model.engine exists")  # fmt: skip
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--kit", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be >= 1 and --warmup >= 0")
    try:
        report = validate(args.kit, runner=args.runner, rebuild=args.rebuild,
                          warmup=args.warmup, iterations=args.iterations)  # fmt: skip
    except DeviceError as exc:
        print(f"validate_kit: {exc}", file=sys.stderr)
        return 2
    out = args.out or args.kit / "device_report.json"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out)  # nothing half-written
    acc, first = report["accuracy"], next(iter(report["latency"].values()))
    samples = report["evaluation"]["samples"]
    print(f"{report['engine']['name']}: top-1 {acc['top1_fraction']:.2%} (drop "
          f"{acc['top1_drop_points']:+.2f} points against float), agreement "
          f"{acc['agreement_fraction']:.2%}, p50 {first['p50_ms']:.3f} ms at batch "
          f"{first['batch']} ({first['clock']}) on {samples} images")  # fmt: skip
    if report["note"]:
        print(f"note: {report['note']}", file=sys.stderr)
    print(f"device report: {out} (add it to the run: dense-edge report merge {out.name} --run RUN)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
