"""Calibration's accuracy record: the int8 model against the float model on the validation
split, run on ONNX Runtime or OpenVINO; the record itself is
:func:`dense_edge.accuracy.calibration_accuracy`, as everywhere top-1 is scored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dense_edge import ovcore
from dense_edge.accuracy import calibration_accuracy, compare_top1, predictions
from dense_edge.calibrate.profiles import ONNXRUNTIME
from dense_edge.records import CalibrationAccuracy

ORT_CPU = ONNXRUNTIME  # the runtime that evaluates Q/DQ models (ONNX Runtime, CPU)
OPENVINO_CPU = "openvino CPU (f32 for non-int8 ops)"


def onnx_accuracy(
    model: Any, qmodel: Any, val: tuple[np.ndarray, np.ndarray]
) -> CalibrationAccuracy:
    """Float and Q/DQ ONNX models (``onnx.ModelProto``) on ONNX Runtime's CPU provider."""
    from dense_edge.calibrate.sensitivity import evaluate_onnx

    images, labels = val
    ref = predictions(evaluate_onnx(model, images))  # classes: one model's logits at a time
    got = predictions(evaluate_onnx(qmodel, images))
    return calibration_accuracy(compare_top1(ref, got, labels), split="val", runtime=ORT_CPU)


def openvino_accuracy(
    float_onnx: Path, xml: Path, val: tuple[np.ndarray, np.ndarray]
) -> CalibrationAccuracy:
    """The float ONNX and the int8 IR on OpenVINO's CPU plugin, non-int8 ops in f32."""

    core = ovcore.core()
    images, labels = val
    outs = []
    for path in (float_onnx, xml):
        compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        logits = np.concatenate(
            [compiled(images[i : i + 64])[0] for i in range(0, len(images), 64)]
        )
        outs.append(predictions(logits))
    return calibration_accuracy(
        compare_top1(outs[0], outs[1], labels), split="val", runtime=OPENVINO_CPU
    )
