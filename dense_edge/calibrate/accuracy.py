"""Calibration's accuracy record: the int8 model against the float model on the validation
split, run through the targets' runners (ONNX Runtime's or OpenVINO's, on the CPU); the record
itself is :func:`dense_edge.accuracy.calibration_accuracy`, as everywhere top-1 is scored."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dense_edge.accuracy import calibration_accuracy, compare_top1, predictions
from dense_edge.catalog import PROFILE_ONNXRUNTIME
from dense_edge.records import CalibrationAccuracy
from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner
from dense_edge.targets.openvino.runner import OpenVinoRunner

if TYPE_CHECKING:
    import onnx

ORT_CPU = PROFILE_ONNXRUNTIME  # the runtime that evaluates Q/DQ models (ONNX Runtime, CPU)
OPENVINO_CPU = "openvino CPU (f32 for non-int8 ops)"
BATCH = 64


def onnx_logits(model: onnx.ModelProto, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """``model``'s logits on ``images`` through the ONNX Runtime target's runner (CPU, every
    graph optimisation), in batches."""

    with OnnxRuntimeRunner(model.SerializeToString()) as runner:
        return runner.infer_all(images, batch)


def onnx_accuracy(
    model: onnx.ModelProto, qmodel: onnx.ModelProto, val: tuple[np.ndarray, np.ndarray]
) -> CalibrationAccuracy:
    """Float and Q/DQ ONNX models on ONNX Runtime's CPU provider."""
    images, labels = val
    ref = predictions(onnx_logits(model, images))  # classes: one model's logits at a time
    got = predictions(onnx_logits(qmodel, images))
    return calibration_accuracy(compare_top1(ref, got, labels), split="val", runtime=ORT_CPU)


def openvino_accuracy(
    float_onnx: Path, xml: Path, val: tuple[np.ndarray, np.ndarray]
) -> CalibrationAccuracy:
    """The float ONNX and the int8 IR through the OpenVINO target's runner on the CPU plugin,
    non-int8 ops in f32."""

    images, labels = val
    outs = []
    for path in (float_onnx, xml):
        runner = OpenVinoRunner(path, device="CPU", config={"INFERENCE_PRECISION_HINT": "f32"})
        with runner:
            outs.append(predictions(runner.infer_all(images, BATCH)))
    return calibration_accuracy(
        compare_top1(outs[0], outs[1], labels), split="val", runtime=OPENVINO_CPU
    )
