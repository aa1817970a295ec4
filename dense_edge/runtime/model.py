"""``runtime.load`` and ``Model.predict``: images in, top-k classes out."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from dense_edge import bundle, onnxfile
from dense_edge.errors import UserError
from dense_edge.manifest import ModelManifest
from dense_edge.preprocess import Preprocess
from dense_edge.runtime.archive import unpack
from dense_edge.targets.base import Runner
from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner
from dense_edge.targets.registry import load_runner

DEFAULT_BATCH = 32


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    score: float  # softmax probability


def _cache_dir() -> Path:
    root = os.environ.get("DENSE_EDGE_CACHE") or Path.home() / ".cache" / "dense-edge"
    return Path(root) / "bundles"


def load(path: str | Path, *, verify: bool = True) -> Model:
    """An engine bundle folder, a ``.bundle`` archive, or an ``.onnx`` exported by dense-edge."""

    p = Path(path)
    if p.is_file() and p.suffix == ".bundle":
        digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        folder = _cache_dir() / f"{p.stem}-{digest}"
        unpack(p, folder, reuse_existing=True)
        p = folder
    if p.is_file() and p.suffix == ".onnx":
        manifest = cast(ModelManifest, onnxfile.read_manifest(p))  # validated as one
        return Model(manifest, OnnxRuntimeRunner(p), p)

    manifest = bundle.read_manifest(p, verify=verify)
    return Model(manifest, load_runner(p, verify=False), p)


class Model:
    """A loaded engine with the manifest's preprocessing. Safe to call from several threads."""

    def __init__(self, manifest: ModelManifest, runner: Runner, source: Path) -> None:
        self.manifest = manifest
        self.source = source
        self.classes: list[str] = list(manifest["classes"])
        self.preprocess = Preprocess.from_dict(manifest["preprocess"])
        self.input_shape: list[int] = list(manifest["input_shape"])
        self._runner = runner.activate()
        self._closed = False
        # the runner's own limit (an engine's profile), else batches of DEFAULT_BATCH
        self.max_batch = self._runner.max_batch or DEFAULT_BATCH
        # Runners that are not thread-safe (a TensorRT execution context) run one call at a time.
        self._lock = None if self._runner.thread_safe else threading.Lock()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._runner.deactivate()

    # -- inputs -------------------------------------------------------------------------------
    def tensor(self, inputs: Any) -> np.ndarray:
        """Preprocessed float32 NCHW for one input or a sequence of them."""
        items = _as_list(inputs, self.input_shape)
        out = np.empty((len(items), *self.input_shape), dtype=np.float32)
        for i, item in enumerate(items):
            out[i] = self._one(item)
        return out

    def _one(self, item: Any) -> np.ndarray:
        if isinstance(item, (str, Path)):
            return self.preprocess(self.preprocess.load_image(item))
        if isinstance(item, np.ndarray):
            if item.size == 0 or (item.ndim >= 2 and min(item.shape[:2]) < 1):
                raise UserError(
                    f"array input of shape {item.shape} holds no pixels: expected uint8 HxWxC "
                    f"pixels or a preprocessed float {self.input_shape} tensor"
                )
            if item.dtype == np.uint8:
                return self.preprocess(item)
            if item.dtype.kind == "f" and list(item.shape) == self.input_shape:
                with np.errstate(over="ignore", invalid="ignore"):
                    x = item.astype(np.float32, copy=False)  # 1e300 becomes inf here
                if not np.isfinite(x).all():
                    bad = int((~np.isfinite(x)).sum())
                    raise UserError(
                        f"float input of shape {item.shape} has {bad} NaN, infinite or "
                        f"beyond-float32 (over 3.4e38) values: the model's answer to it would "
                        f"mean nothing"
                    )
                return x  # already preprocessed
            raise UserError(
                f"array input of dtype {item.dtype} and shape {item.shape}: expected uint8 HxWxC "
                f"pixels or a preprocessed float {self.input_shape} tensor"
            )
        if hasattr(item, "mode") and hasattr(item, "size"):  # a PIL image
            self.preprocess.check_colour(item)
            return self.preprocess(self.preprocess.from_pil(item))
        raise UserError(
            f"cannot read an input of type {type(item).__name__}: pass an image path, a PIL "
            "image, uint8 HxWxC pixels or a preprocessed float32 tensor"
        )

    # -- inference ----------------------------------------------------------------------------
    def logits(self, inputs: Any, *, batch_size: int | None = None) -> np.ndarray:
        if self._closed:
            raise UserError(
                f"this model ({self.source}) was closed",
                fix="load it again with dense_edge.runtime.load(path), or predict before "
                "close() (inside its 'with' block)",
            )
        x = self.tensor(inputs)
        step = max(1, min(batch_size or self.max_batch, self.max_batch))
        parts = []
        for i in range(0, len(x), step):
            if self._lock is None:
                parts.append(self._runner.infer(x[i : i + step]))
            else:
                with self._lock:
                    parts.append(self._runner.infer(x[i : i + step]))
        return np.concatenate(parts)

    def predict(
        self, inputs: Any, *, top_k: int = 5, batch_size: int | None = None
    ) -> list[Prediction] | list[list[Prediction]]:
        """Top-k classes per input (a list per input, or one list for a single input)."""
        logits = self.logits(inputs, batch_size=batch_size).astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        k = max(1, min(top_k, len(self.classes)))
        results = []
        for row in probs:
            best = np.argsort(-row, kind="stable")[:k]
            results.append([Prediction(int(i), self.classes[int(i)], float(row[i])) for i in best])
        return results[0] if _is_single(inputs, self.input_shape) else results


def _is_single(inputs: Any, shape: Sequence[int]) -> bool:
    """One image: a path, a PIL image, an HxW or HxWxC uint8 array, or one CxHxW tensor.

    For a one-channel model a 3-D uint8 array whose last axis is not a channel axis (1, 3 or 4)
    is a batch of HxW images.
    """
    if isinstance(inputs, (str, Path)) or hasattr(inputs, "mode"):
        return True
    if isinstance(inputs, np.ndarray):
        if inputs.dtype == np.uint8:
            if inputs.ndim == 3 and shape[0] == 1 and inputs.shape[-1] not in (1, 3, 4):
                return False
            return inputs.ndim in (2, 3)
        return inputs.ndim == len(shape)
    return False


def _as_list(inputs: Any, shape: Sequence[int]) -> list[Any]:
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        raise UserError(
            f"predict() was given {type(inputs).__name__} ({len(inputs)} bytes): pass an image "
            "path, or decode the bytes first: PIL.Image.open(io.BytesIO(data))"
        )
    if isinstance(inputs, np.ndarray) and inputs.dtype != np.uint8 and inputs.dtype.kind != "f":
        raise UserError(  # an int32 8x8 picture is not a batch of eight rows
            f"array input of dtype {inputs.dtype} and shape {inputs.shape}: expected uint8 "
            f"HxW or HxWxC pixels or a preprocessed float {tuple(shape)} tensor",
            fix="convert pixels with arr.astype(np.uint8) once they are in 0..255",
        )
    if _is_single(inputs, shape):
        return [inputs]
    if isinstance(inputs, np.ndarray):
        if inputs.dtype.kind == "f" and list(inputs.shape[1:]) != list(shape):
            # floats are preprocessed tensors: one CxHxW, or a batch N x C x H x W, never rows
            raise UserError(
                f"float array input of shape {inputs.shape}: expected a preprocessed float "
                f"tensor of shape {tuple(shape)} or a batch (N, {', '.join(map(str, shape))}); "
                f"pass raw pixels as uint8 HxW or HxWxC arrays"
            )
        if len(inputs) == 0:
            raise UserError("predict() was given an empty batch")
        return list(inputs)  # a batch: N x ... arrays
    if isinstance(inputs, Iterable):
        items = list(inputs)
        if not items:
            raise UserError("predict() was given no inputs")
        return items
    raise UserError(f"cannot read an input of type {type(inputs).__name__}")
