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
from dense_edge.calibrate.profiles import rules_for
from dense_edge.calibrate.qdq import quantize_model
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


@pytest.mark.parametrize(("profile", "kw"), [("tensorrt", {}), ("tensorrt", {"concat": "shared"}),
                                             ("onnxruntime", {})])  # fmt: skip
def test_each_profile_passes_its_own_checker_and_runs(float_model, stats, profile, kw, tmp_path):
    q, _ = _quantize(float_model, stats, profile, **kw)
    report = check_onnx(q, profile)
    assert report.ok, report.violations[:3]
    assert len(report.quantized_layers) == len(Graph(float_model).weighted_nodes())
    onnx.checker.check_model(q, full_check=True)
    path = tmp_path / "q.onnx"
    onnx.save(q, str(path))
    with OnnxRuntimeRunner(path) as r:
        assert r.infer(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 10)


def test_tensorrt_profile_is_symmetric_int8_on_weighted_inputs_only(float_model, stats):
    q, _ = _quantize(float_model, stats, "tensorrt")
    inits = _inits(q)
    g = Graph(q)
    for node in _qdq(q, "QuantizeLinear"):
        assert inits[node.input[2]].dtype == np.int8 and inits[node.input[2]] == 0
        readers = {u.op_type for d in g.consumers[node.output[0]] for u in g.consumers[d.output[0]]}
        assert readers <= {"Conv", "Gemm"}
    for conv in g.weighted_nodes():
        w_dq = g.producer[conv.input[1]]
        assert inits[w_dq.input[0]].dtype == np.int8
        axis = next(a.i for a in w_dq.attribute if a.name == "axis")
        assert axis == 0 and inits[w_dq.input[1]].shape == (inits[w_dq.input[0]].shape[0],)
        if len(conv.input) > 2:
            assert conv.input[2] in inits and inits[conv.input[2]].dtype == np.float32
    assert "Relu" in {n.op_type for n in q.graph.node}  # TensorRT fuses BN-ReLU-Q itself


def test_shared_concat_mode_gives_each_concat_one_scale(float_model, stats):
    q, _ = _quantize(float_model, stats, "tensorrt", concat="shared")
    g, inits = Graph(q), _inits(q)
    concats = [n for n in q.graph.node if n.op_type == "Concat"]
    assert concats
    for c in concats:
        scales = {float(inits[g.producer[t].input[1]]) for t in c.input}
        assert len(scales) == 1


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
    assert report.ok and report.float_layers == [first] and plan.kept_float == [first]


def test_checker_flags_the_other_profile(float_model, stats):
    ort_model, _ = _quantize(float_model, stats, "onnxruntime")
    rules = {v.rule for v in check_onnx(ort_model, "tensorrt").violations}
    assert {"dtype", "symmetric", "bias", "placement", "concat"} <= rules
    trt_model, _ = _quantize(float_model, stats, "tensorrt")
    rules = {v.rule for v in check_onnx(trt_model, "onnxruntime").violations}
    assert {"dtype", "unit", "bias"} <= rules


def test_checker_flags_per_tensor_weights_and_nonzero_zero_points(float_model, stats):
    q, _ = _quantize(float_model, stats, "tensorrt")
    bad = copy.deepcopy(q)
    g = Graph(bad)
    conv = g.weighted_nodes()[0]
    w_dq = g.producer[conv.input[1]]
    scale_name = w_dq.input[1]
    scale = numpy_helper.to_array(g.initializers[scale_name])
    g.initializers[scale_name].CopyFrom(
        numpy_helper.from_array(scale.max(keepdims=False), scale_name)
    )
    q_node = _qdq(bad, "QuantizeLinear")[0]
    zp = g.initializers[q_node.input[2]]
    zp.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), zp.name))
    rules = {v.rule for v in check_onnx(bad, "tensorrt").violations}
    assert {"per-channel", "symmetric"} <= rules


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
