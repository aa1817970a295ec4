"""Q/DQ models per profile follow their rules; the checker catches each kind of violation."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from dense_edge.calibrate.checker import check, check_onnx
from dense_edge.calibrate.collect import collect
from dense_edge.calibrate.graph import Graph
from dense_edge.calibrate.methods import MethodOptions
from dense_edge.calibrate.qdq import quantize_model
from dense_edge.calibrate.rules import rules_for
from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner


@pytest.fixture(scope="module")
def float_model(digits_exported):
    return onnx.load(str(digits_exported / "onnx" / "model.onnx"))


@pytest.fixture(scope="module")
def stats(digits_exported):
    images = np.random.default_rng(0).standard_normal((64, 1, 8, 8)).astype(np.float32)
    return collect(
        digits_exported / "onnx" / "model.onnx", images, bins=512, key="t", cache_dir=None
    )


def _quantize(float_model, stats, profile, **kw):
    return quantize_model(float_model, stats, rules_for(profile, **kw), MethodOptions("minmax"))


def _qdq(model, op):
    return [n for n in model.graph.node if n.op_type == op]


def _inits(model):
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


TRT_VARIANTS = [{}, {"float_dtype": "fp32"}]


@pytest.mark.parametrize(("profile", "kw"), [*(("tensorrt", kw) for kw in TRT_VARIANTS),
                                             ("onnxruntime", {})])  # fmt: skip
def test_each_profile_passes_its_own_checker_and_runs(float_model, stats, profile, kw, tmp_path):
    q, plan = _quantize(float_model, stats, profile, **kw)
    report = check_onnx(q, profile)
    assert report.ok, report.violations[:3]
    weighted = len(Graph(float_model).weighted_nodes())
    # TensorRT leaves the 10-output classifier in float (a Gemm with < 16 outputs, as ModelOpt).
    tiny = ["/classifier/Gemm"] if profile == "tensorrt" else []
    assert report.float_layers == tiny and plan.kept_float == tiny
    assert len(report.quantized_layers) == weighted - len(tiny)
    onnx.checker.check_model(q, full_check=True)
    path = tmp_path / "q.onnx"
    onnx.save(q, str(path))
    with OnnxRuntimeRunner(path) as r:
        out = r.infer(np.zeros((2, 1, 8, 8), np.float32))
        assert out.shape == (2, 10) and out.dtype == np.float32


def _dq_scale(g, inits, tensor):
    dq = g.producer.get(tensor)
    assert dq is not None and dq.op_type == "DequantizeLinear", tensor
    return float(inits[dq.input[1]])


def test_tensorrt_default_layout_is_the_densenet_aware_one(float_model, stats):
    q, _ = _quantize(float_model, stats, "tensorrt")
    inits = _inits(q)
    g = Graph(q)
    for node in _qdq(q, "QuantizeLinear"):
        assert inits[node.input[2]].dtype == np.int8 and inits[node.input[2]] == 0
    for conv in (n for n in g.weighted_nodes() if n.op_type == "Conv"):
        _dq_scale(g, inits, conv.input[0])  # every conv input quantised
        w_dq = g.producer[conv.input[1]]
        assert inits[w_dq.input[0]].dtype == np.int8
        axis = next(a.i for a in w_dq.attribute if a.name == "axis")
        assert axis == 0 and inits[w_dq.input[1]].shape == (inits[w_dq.input[0]].shape[0],)
        if len(conv.input) > 2:
            assert inits[conv.input[2]].dtype == np.float16  # float biases, in fp16
    # Concats: inputs and output share one scale; nothing reads a concatenated tensor in float.
    concats = _qdq(q, "Concat")
    assert len(concats) == 12
    for c in concats:
        scales = {_dq_scale(g, inits, t) for t in c.input}
        assert len(scales) == 1
        (q_out,) = g.consumers[c.output[0]]
        assert q_out.op_type == "QuantizeLinear" and float(inits[q_out.input[1]]) in scales
        for t in c.input:
            src = g.producer[g.producer[t].input[0]].input[0]  # the float tensor behind Q/DQ
            assert {u.op_type for u in g.consumers[src]} == {"QuantizeLinear"}
    for pool in _qdq(q, "AveragePool"):
        _dq_scale(g, inits, pool.input[0])
        assert {u.op_type for u in g.consumers[pool.output[0]]} == {"QuantizeLinear"}
    (gap,) = _qdq(q, "GlobalAveragePool")
    _dq_scale(g, inits, gap.input[0])
    (gemm,) = _qdq(q, "Gemm")
    assert g.producer[gemm.input[0]].op_type == "Flatten"  # tiny classifier: float input
    assert gemm.input[1] in inits and inits[gemm.input[1]].dtype == np.float16
    # FP16 float parts, FP32 model inputs and outputs.
    assert q.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert q.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [n.op_type for n in (q.graph.node[0], q.graph.node[-1])] == ["Cast", "Cast"]
    assert not [i.name for i in q.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    assert "Relu" in {n.op_type for n in q.graph.node}  # TensorRT fuses BN-ReLU-Q itself


def test_fp16_scales_are_positive_float16(float_model, stats):
    q, _ = _quantize(float_model, stats, "tensorrt")
    for n in _qdq(q, "QuantizeLinear"):
        scale = _inits(q)[n.input[1]]
        assert scale.dtype == np.float16 and np.all(scale > 0)


def test_fp32_float_parts_stay_selectable(float_model, stats):
    q, _ = _quantize(float_model, stats, "tensorrt", float_dtype="fp32")
    fp16, _ = _quantize(float_model, stats, "tensorrt")
    assert [n.op_type for n in _qdq(q, "QuantizeLinear")] == [
        n.op_type for n in _qdq(fp16, "QuantizeLinear")
    ]  # the same placement
    assert "Cast" not in {n.op_type for n in q.graph.node}
    assert {i.data_type for i in q.graph.initializer} <= {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.INT8,
    }


def test_onnxruntime_profile_is_u8s8_with_int32_bias_and_absorbed_relus(float_model, stats):
    q, plan = _quantize(float_model, stats, "onnxruntime")
    inits = _inits(q)
    assert all(inits[n.input[2]].dtype == np.uint8 for n in _qdq(q, "QuantizeLinear"))
    assert "Relu" not in {n.op_type for n in q.graph.node}
    assert len(plan.absorbed_relus) == sum(n.op_type == "Relu" for n in float_model.graph.node)
    g = Graph(q)
    with_bias = [n for n in g.weighted_nodes() if len(n.input) > 2]
    assert with_bias  # BN-folded convolutions and the classifier
    for conv in with_bias:
        assert inits[g.producer[conv.input[2]].input[0]].dtype == np.int32


def test_excluded_layers_stay_float_and_are_reported(float_model, stats):
    first = Graph(float_model).weighted_nodes()[0].name
    q, plan = quantize_model(
        float_model, stats, rules_for("tensorrt"), MethodOptions(), exclude={first}
    )
    report = check_onnx(q, "tensorrt")
    tiny = "/classifier/Gemm"
    assert report.ok and report.float_layers == [first, tiny] and plan.kept_float == [first, tiny]


def test_checker_flags_the_other_profile(float_model, stats):
    ort_model, _ = _quantize(float_model, stats, "onnxruntime")
    rules = {v.rule for v in check_onnx(ort_model, "tensorrt").violations}
    assert {"dtype", "symmetric", "bias"} <= rules
    trt_model, _ = _quantize(float_model, stats, "tensorrt")
    rules = {v.rule for v in check_onnx(trt_model, "onnxruntime").violations}
    assert {"dtype", "unit", "bias"} <= rules


def _set(g, name, value):
    g.initializers[name].CopyFrom(numpy_helper.from_array(value, name))


def _convs(g):
    return [n for n in g.weighted_nodes() if n.op_type == "Conv"]


def _break_per_tensor(g):
    w_dq = g.producer[_convs(g)[0].input[1]]
    scale = numpy_helper.to_array(g.initializers[w_dq.input[1]])
    _set(g, w_dq.input[1], scale.max(keepdims=False))


def _break_axis(g):
    w_dq = g.producer[_convs(g)[0].input[1]]
    for a in w_dq.attribute:
        if a.name == "axis":
            a.i = 1


def _break_zero_point(g):
    q = next(n for n in g.model.graph.node if n.op_type == "QuantizeLinear")
    _set(g, q.input[2], np.array(3, np.int8))


def _break_uint8(g):
    for n in g.model.graph.node:
        if n.op_type == "QuantizeLinear":
            _set(g, n.input[2], np.array(0, np.uint8))


def _break_scale(g):
    q = next(n for n in g.model.graph.node if n.op_type == "QuantizeLinear")
    _set(g, q.input[1], np.array(-0.5, np.float16))


def _break_input_float(g):
    # One conv reads its input in float while its weights stay int8 (its neighbours are int8).
    conv = _convs(g)[3]
    dq = g.producer[conv.input[0]]
    conv.input[0] = g.producer[dq.input[0]].input[0]


def _break_weights_float(g):
    conv = _convs(g)[3]
    w_dq = g.producer[conv.input[1]]
    w = numpy_helper.to_array(g.initializers[w_dq.input[0]]).astype(np.float16)
    g.model.graph.initializer.append(numpy_helper.from_array(w, "float_w"))
    conv.input[1] = "float_w"


@pytest.mark.parametrize(
    ("breaker", "rule"),
    [(_break_per_tensor, "per-channel"), (_break_axis, "per-channel"),
     (_break_zero_point, "symmetric"), (_break_uint8, "dtype"), (_break_scale, "scale"),
     (_break_input_float, "placement"), (_break_weights_float, "placement")],
)  # fmt: skip
def test_checker_refuses_real_errors(float_model, stats, breaker, rule):
    q, _ = _quantize(float_model, stats, "tensorrt")
    bad = copy.deepcopy(q)
    breaker(Graph(bad))
    report = check_onnx(bad, "tensorrt")
    assert not report.ok and rule in {v.rule for v in report.violations}, report.violations


def test_checker_on_a_float_model_and_missing_files(float_model, tmp_path):
    assert {v.rule for v in check_onnx(float_model, "tensorrt").violations} == {"quantized"}
    from dense_edge.errors import UserError

    with pytest.raises(UserError, match="not found"):
        check(tmp_path / "nope.onnx", "tensorrt")


def test_checker_reads_constant_node_scales(float_model, stats):
    """Scales may come from Constant nodes (value_float) instead of initializers."""
    q, _ = _quantize(float_model, stats, "tensorrt")
    g = Graph(q)
    node = _qdq(q, "QuantizeLinear")[0]
    value = float(numpy_helper.to_array(g.initializers[node.input[1]]))
    const = onnx.helper.make_node("Constant", [], ["const_scale"], value_float=value)
    q.graph.node.insert(0, const)
    for n in q.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[1] == node.input[1]:
            n.input[1] = "const_scale"
    assert check_onnx(q, "tensorrt").ok


def test_the_two_checking_doors_agree_and_refuse_what_they_cannot(float_model, stats, tmp_path):
    """A model file and the same model in memory get the same report; a name that is no
    profile, or the openvino profile for a model in memory, is the user's one-line error."""
    from dense_edge.errors import UserError

    q, _ = _quantize(float_model, stats, "onnxruntime")
    path = tmp_path / "q.onnx"
    onnx.save(q, str(path))
    assert check(path, "onnxruntime").to_dict() == check_onnx(q, "onnxruntime", str(path)).to_dict()
    with pytest.raises(UserError, match="unknown profile 'tflite'"):
        check(path, "tflite")
    with pytest.raises(UserError, match="unknown profile 'tflite'"):
        check_onnx(q, "tflite")
    with pytest.raises(UserError, match="the openvino profile checks a model file"):
        check_onnx(q, "openvino")


def test_the_onnx_runtime_runner_runs_a_model_in_memory_as_from_its_file(float_model, tmp_path):
    """Calibration runs its in-memory models through the same runner as a file on disk."""
    path = tmp_path / "float.onnx"
    onnx.save(float_model, str(path))
    x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
    with OnnxRuntimeRunner(path) as a, OnnxRuntimeRunner(float_model.SerializeToString()) as b:
        np.testing.assert_array_equal(a.infer_all(x, 2), b.infer_all(x, 2))
