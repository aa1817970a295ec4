"""Calibration's accuracy record: the int8 model against the float model on the validation
split. :func:`accuracy_record` is the one place its fields are computed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dense_edge import ovcore
from dense_edge.calibrate.profiles import ONNXRUNTIME

ORT_CPU = ONNXRUNTIME  # the runtime that evaluates Q/DQ models (ONNX Runtime, CPU)
OPENVINO_CPU = "openvino CPU (f32 for non-int8 ops)"


def accuracy_record(
    ref: np.ndarray, got: np.ndarray, labels: np.ndarray, runtime: str
) -> dict[str, Any]:
    """Top-1 of the float (``ref``) and int8 (``got``) predictions and their agreement."""
    f_top1, q_top1 = float((ref == labels).mean()), float((got == labels).mean())
    return {
        "split": "val",
        "samples": len(labels),
        "runtime": runtime,
        "float_top1": round(f_top1, 5),
        "int8_top1": round(q_top1, 5),
        "top1_drop_points": round((f_top1 - q_top1) * 100, 3),
        "agreement": round(float((ref == got).mean()), 5),
    }


def onnx_accuracy(model: Any, qmodel: Any, val: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Float and Q/DQ ONNX models (``onnx.ModelProto``) on ONNX Runtime's CPU provider."""
    from dense_edge.calibrate.sensitivity import evaluate_onnx

    images, labels = val
    ref = evaluate_onnx(model, images).argmax(1)
    got = evaluate_onnx(qmodel, images).argmax(1)
    return accuracy_record(ref, got, labels, ORT_CPU)


def openvino_accuracy(
    float_onnx: Path, xml: Path, val: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    """The float ONNX and the int8 IR on OpenVINO's CPU plugin, non-int8 ops in f32."""

    core = ovcore.core()
    images, labels = val
    outs = []
    for path in (float_onnx, xml):
        compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        logits = np.concatenate(
            [compiled(images[i : i + 64])[0] for i in range(0, len(images), 64)]
        )
        outs.append(logits.argmax(1))
    return accuracy_record(outs[0], outs[1], labels, OPENVINO_CPU)
