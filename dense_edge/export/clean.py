"""Cleaning and checking an exported graph.

onnxslim folds constants and removes dead, identity and duplicate nodes. BatchNorm: the exporter
already folds every BatchNorm that follows a convolution (``norm0`` and each layer's ``norm2``)
into that convolution's weights, which is also what the quantiser wants (per-channel weight scales
computed on the weights that run). The BatchNorms that follow a concatenation (each layer's
``norm1``, the transitions' ``norm``, the final ``norm5``) have no convolution before them to fold
into and a ReLU after them, so they stay as ``BatchNormalization``: every runtime runs them as a
per-channel scale and shift.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx

from dense_edge.errors import UserError


def slim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    # onnxslim keeps metadata_props, opset and I/O names; it only rewrites the graph.
    out = onnxslim.slim(model)
    if out is None:  # pragma: no cover - onnxslim returns None only when given a path to save
        raise RuntimeError("onnxslim returned no model")
    slimmed: onnx.ModelProto = out
    return slimmed


def check(path: str | Path) -> onnx.ModelProto:
    """``check_model(full_check=True)`` and strict shape inference; a user error if either fails."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path))
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise UserError(f"ONNX check failed: {first}", path=path) from None


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(Counter(n.op_type for n in model.graph.node).most_common())


def opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ValueError("model has no default-domain opset")
