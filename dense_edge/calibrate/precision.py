"""FP16 float parts for a Q/DQ model: every layer that is not quantised runs in float16, the
model's inputs and outputs stay float32 (a Cast at each end).

In a strongly typed TensorRT network (always on TensorRT 11, ``--stronglyTyped`` on 10) the
ONNX's types are the engine's types, so this is how the non-int8 layers of an INT8 engine run in
FP16 without builder flags. Integer tensors (int8 weights, zero points) are left alone; float
initializers (scales, biases, BatchNorm parameters, float weights) become float16. Q/DQ with
float16 scales need opset 19.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Convert ``model`` in place (and return it)."""
    g = model.graph
    for init in g.initializer:
        if init.data_type == FLOAT:
            init.CopyFrom(numpy_helper.from_array(_half(numpy_helper.to_array(init)), init.name))
    for node in g.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == FLOAT:
                    attr.t.CopyFrom(numpy_helper.from_array(_half(numpy_helper.to_array(attr.t))))
                elif attr.name == "value_float":
                    value = np.array(attr.f, np.float16)
                    node.ClearField("attribute")
                    node.attribute.append(
                        helper.make_attribute("value", numpy_helper.from_array(value))
                    )
                    break
        elif node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == FLOAT:
                    attr.i = FLOAT16
    casts_in: list[onnx.NodeProto] = []
    inits = {i.name for i in g.initializer}
    for inp in g.input:
        if inp.name in inits or inp.type.tensor_type.elem_type != FLOAT:
            continue
        half = f"{inp.name}_fp16"
        for node in g.node:
            for i, name in enumerate(node.input):
                if name == inp.name:
                    node.input[i] = half
        casts_in.append(
            helper.make_node("Cast", [inp.name], [half], name=f"{half}_Cast", to=FLOAT16)
        )
    casts_out: list[onnx.NodeProto] = []
    for out in g.output:
        if out.type.tensor_type.elem_type != FLOAT:
            continue
        half = f"{out.name}_fp16"
        for node in g.node:
            for i, name in enumerate(node.output):
                if name == out.name:
                    node.output[i] = half
            for i, name in enumerate(node.input):
                if name == out.name:
                    node.input[i] = half
        casts_out.append(
            helper.make_node("Cast", [half], [out.name], name=f"{out.name}_Cast", to=FLOAT)
        )
    nodes = casts_in + list(g.node) + casts_out
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g.value_info.extend(inferred.graph.value_info)
    return model


def _half(a: np.ndarray) -> np.ndarray:
    """float32 -> float16, magnitudes clamped to what float16 holds (no inf)."""
    big = float(np.finfo(np.float16).max)
    out: np.ndarray = np.clip(a, -big, big).astype(np.float16)
    return out
