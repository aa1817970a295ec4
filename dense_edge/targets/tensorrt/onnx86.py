"""The model TensorRT 8.6 (JetPack 6.0) can build: opset 17, float32 scales, float32 float parts.

onnx-tensorrt 8.6 reads every Q/DQ scale as float32 (float16 scales arrive in 9.0), 8.6's
``IQuantizeLayer`` takes FP32 scales only, and its parser knows opset 17 at most. The kit's model
(``float_parts: fp16``: FLOAT16 scales and float parts at opset 19+) is converted here, exactly:

- every FLOAT16 initializer, constant, graph input/output and value type becomes FLOAT32 (a
  float16 value is exactly a float32 value, so the scales quantise to the same integers);
- ``Cast`` to FLOAT16 becomes ``Identity`` (the tensor it casts is float32 now);
- the opset becomes 17: the ``saturate`` attribute (opset 19, float8 only) is dropped, and
  every node is checked against its opset-17 schema, so an op that changed meaning is refused
  rather than mis-read.

The weakly typed 8.6 build (``--int8 --fp16``) then runs the Q/DQ layers in INT8 and lets the
builder run the rest in FP16, as the float16 parts run on 10.x.
"""

from __future__ import annotations

import copy

import onnx
from onnx import TensorProto, numpy_helper

TARGET_OPSET = 17
_DROP_ATTRS = {"Cast": {"saturate"}, "QuantizeLinear": {"saturate"}}


def needs_conversion(model: onnx.ModelProto) -> bool:
    """Whether TensorRT 8.6 cannot take ``model`` as it is."""
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return opset > TARGET_OPSET or _has_float16(model)


def _has_float16(model: onnx.ModelProto) -> bool:
    g = model.graph
    if any(t.data_type == TensorProto.FLOAT16 for t in g.initializer):
        return True
    values = [*g.input, *g.output, *g.value_info]
    return any(v.type.tensor_type.elem_type == TensorProto.FLOAT16 for v in values)


def _to_float32(tensor: onnx.TensorProto) -> onnx.TensorProto:
    if tensor.data_type != TensorProto.FLOAT16:
        return tensor
    array = numpy_helper.to_array(tensor).astype("float32")
    return numpy_helper.from_array(array, tensor.name)


def convert(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` at opset 17 with float32 everywhere it had float16 (a new model)."""
    m = copy.deepcopy(model)
    g = m.graph
    for i, t in enumerate(g.initializer):
        g.initializer[i].CopyFrom(_to_float32(t))
    for v in [*g.input, *g.output, *g.value_info]:
        if v.type.tensor_type.elem_type == TensorProto.FLOAT16:
            v.type.tensor_type.elem_type = TensorProto.FLOAT
    for node in g.node:
        drop = _DROP_ATTRS.get(node.op_type, set())
        keep = [a for a in node.attribute if a.name not in drop]
        if node.op_type == "Cast":
            to = next((a.i for a in node.attribute if a.name == "to"), None)
            if to == TensorProto.FLOAT16:
                node.op_type = "Identity"
                keep = []
        for a in keep:
            if a.type == onnx.AttributeProto.TENSOR:
                a.t.CopyFrom(_to_float32(a.t))
        del node.attribute[:]
        node.attribute.extend(keep)
    for entry in m.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = min(entry.version, TARGET_OPSET)
    if m.ir_version > 8:
        m.ir_version = 8  # IR 8 is the newest onnx-tensorrt 8.6's protobuf reader was built for
    _check_opset(m)
    onnx.checker.check_model(m, full_check=True)
    return m


def _check_opset(model: onnx.ModelProto) -> None:
    """Every node's op exists at opset 17 with the attributes the node uses."""
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, TARGET_OPSET, "")
        except onnx.defs.SchemaError:
            raise ValueError(f"{node.op_type} does not exist at opset {TARGET_OPSET}") from None
        unknown = {a.name for a in node.attribute} - set(schema.attributes)
        if unknown:
            raise ValueError(
                f"{node.name or node.op_type}: attributes {sorted(unknown)} do not exist in "
                f"{node.op_type} at opset {TARGET_OPSET}"
            )
        n_inputs = len(node.input)
        if schema.max_input < n_inputs:
            raise ValueError(
                f"{node.name or node.op_type}: {n_inputs} inputs, {node.op_type} at opset "
                f"{TARGET_OPSET} takes at most {schema.max_input}"
            )
