"""FP16 ONNX models with float32 inputs and outputs: the two converters, side by side.

Both keep the model's inputs and outputs float32 (a Cast at each end), so a device app feeds the
same tensors to an FP16 model as to the FP32 one.

- :func:`whole_model_to_fp16`: a float model (``RUN/onnx-fp16/``), through ONNX Runtime's
  maintained float16 converter. This is the model TensorRT 11 (always strongly typed) builds
  into an FP16 engine.
- :func:`float_parts_to_fp16`: the float parts of a Q/DQ model (``calibration.float_parts:
  fp16``): every layer that is not quantised runs in float16. In a strongly typed TensorRT
  network (always on TensorRT 11, ``--stronglyTyped`` on 10) the ONNX's types are the engine's
  types, so this is how the non-int8 layers of an INT8 engine run in FP16 without builder flags.
  Integer tensors (int8 weights, zero points) are left alone; float initializers (scales,
  biases, BatchNorm parameters, float weights) become float16. Q/DQ with float16 scales need
  opset 19.

They differ because a Q/DQ model's scales must reach the engine exactly as the writer rounded
them (``calibrate.qdq.representable``), so the float-parts pass only retypes float tensors and
clamps overflow, while ONNX Runtime's converter also raises magnitudes below ``min_positive_val``
(1e-7) to it, which a float model's weights tolerate.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dense_edge.export.clean import slim

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16


def whole_model_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A new model: every float tensor of ``model`` in float16, its inputs and outputs float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(
        model, keep_io_types=True, disable_shape_infer=False, min_positive_val=1e-7
    )
    assert isinstance(converted, onnx.ModelProto)
    # The converter appends the I/O casts at the end of the node list; onnxslim re-sorts the
    # graph topologically (check_model requires it) and folds what the casts made constant.
    return slim(converted)


def float_parts_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Convert the float parts of the Q/DQ ``model`` in place (and return it)."""
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
