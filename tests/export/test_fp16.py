"""The two fp16 converters (export/fp16.py): what each does to a model's values and types."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from dense_edge.export.fp16 import float_parts_to_fp16, whole_model_to_fp16

WEIGHTS = np.array([[5e-8, 1.0], [-2.0, 1e5]], np.float32)  # tiny, plain, plain, overflow


def _matmul() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(WEIGHTS, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def _weights(model: onnx.ModelProto) -> np.ndarray:
    (init,) = [i for i in model.graph.initializer if i.data_type == TensorProto.FLOAT16]
    return numpy_helper.to_array(init)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out: np.ndarray = sess.run(None, {"x": x})[0]
    return out


def test_both_keep_float32_inputs_and_outputs_and_run():
    x = np.array([[1.0, 0.5]], np.float32)
    for convert in (whole_model_to_fp16, float_parts_to_fp16):
        model = convert(_matmul())
        onnx.checker.check_model(model, full_check=True)
        assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
        assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
        got = _run(model, x)
        assert got.dtype == np.float32 and np.allclose(got[0, 0], -1.0, atol=1e-3)


def test_float_parts_keep_the_nearest_float16_and_the_whole_model_raises_tiny_values():
    """The Q/DQ pass rounds every value to its nearest float16 (scales arrive as the writer
    rounded them); ONNX Runtime's converter raises magnitudes below 1e-7 to 1e-7. Both clamp
    overflow to float16's largest finite value."""
    big = np.finfo(np.float16).max
    parts = _weights(float_parts_to_fp16(_matmul()))
    assert parts[0, 0] == np.float16(5e-8) and parts[1, 1] == big
    whole = _weights(whole_model_to_fp16(_matmul()))
    assert whole[0, 0] == np.float16(1e-7) and whole[1, 1] == big
    assert np.array_equal(parts[[0, 1], [1, 0]], whole[[0, 1], [1, 0]])  # the rest agree
