"""The traffic and precision plan: exact on a small graph, and the DenseNet layout ranked the way
its Q/DQ placement says it should be (about half the FP16 engine, no more than ModelOpt's)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dense_edge.calibrate.collect import collect
from dense_edge.calibrate.methods import MethodOptions
from dense_edge.calibrate.qdq import quantize_model
from dense_edge.calibrate.rules import rules_for
from dense_edge.calibrate.traffic import estimate, explain_lines, plan_record, strip_qdq


def _two_convs(quantised: bool) -> onnx.ModelProto:
    """x[N,4,8,8] -> (Q/DQ) -> Conv 1x1 (8) -> ReLU -> (Q/DQ) -> Conv 1x1 (8) -> y."""
    inits = [numpy_helper.from_array(np.ones((8, 4, 1, 1), np.float32), "w1"),
             numpy_helper.from_array(np.ones((8, 8, 1, 1), np.float32), "w2")]  # fmt: skip
    nodes = []
    x, r = "x", "r"
    if quantised:
        for name, scale in (("x", 0.1), ("r", 0.2)):
            inits += [numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
                      numpy_helper.from_array(np.array(0, np.int8), f"{name}_z")]  # fmt: skip
            nodes += [
                helper.make_node("QuantizeLinear", [name, f"{name}_s", f"{name}_z"], [f"{name}q"]),
                helper.make_node("DequantizeLinear", [f"{name}q", f"{name}_s", f"{name}_z"],
                                 [f"{name}dq"]),
            ]  # fmt: skip
        x, r = "xdq", "rdq"
    nodes += [
        helper.make_node("Conv", [x, "w1"], ["c1"]),
        helper.make_node("Relu", ["c1"], ["r"]),
        helper.make_node("Conv", [r, "w2"], ["y"]),
    ]
    order = [nodes[i] for i in ((0, 1, 4, 5, 2, 3, 6) if quantised else (0, 1, 2))]
    graph = helper.make_graph(
        order,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 8, 8])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_bytes_follow_the_documented_model_exactly():
    q = estimate(_two_convs(quantised=True))
    by = {t.tensor: t for t in q.tensors}
    # x: FP32 input, converted to int8 once (read 4 B, write 1 B), read by the conv in int8.
    assert (by["x"].precision, by["x"].written, by["x"].read) == ("fp32", 256, 256 + 1024)
    assert "c1" not in by  # the ReLU runs in the first conv's epilogue
    assert (by["r"].precision, by["r"].written, by["r"].read) == ("int8", 512, 512)
    assert (by["y"].precision, by["y"].written, by["y"].read) == ("fp32", 2048, 0)
    assert q.total == 1536 + 1024 + 2048 and q.weight_bytes == 4 * (32 + 64)  # float weights
    f16 = estimate(_two_convs(quantised=False), as_fp16=True)
    # FP16 engine: input Cast (read 4, write 2), conv reads 2; r in fp16; y in fp16 + output Cast.
    assert f16.total == (256 * 2 + 256 * 6) + (1024 + 1024) + (1024 + 2048 + 1024)
    assert f16.weight_bytes == 2 * 96
    assert estimate(strip_qdq(_two_convs(quantised=True)), as_fp16=True).total == f16.total


@pytest.fixture(scope="module")
def layouts(digits_exported):
    path = digits_exported / "onnx" / "model.onnx"
    images = np.random.default_rng(0).standard_normal((32, 1, 8, 8)).astype(np.float32)
    stats = collect(path, images, bins=256, key="t", cache_dir=None)
    model = onnx.load(str(path))
    out = {"float model": model}
    for label, float_dtype in (("int8", "fp16"), ("fp32 float parts", "fp32")):
        rules = rules_for("tensorrt", float_dtype=float_dtype)
        out[label] = quantize_model(model, stats, rules, MethodOptions("minmax"))[0]
    return out


def test_int8_concats_move_about_half_the_fp16_engine_bytes(layouts):
    int8 = plan_record(layouts["int8"], layouts["float model"])
    f32 = plan_record(layouts["fp32 float parts"], layouts["float model"])
    assert int8["total_bytes_per_image"] <= f32["total_bytes_per_image"]
    assert int8["ratio_to_fp16_engine"] < 0.6  # int8 features are half of fp16's bytes
    assert set(int8["by_precision"]) <= {"int8", "fp16", "fp32"}
    concat_rows = [t for t in int8["tensors"] if t["tensor"].endswith("Concat_output_0")]
    assert concat_rows and all(t["precision"] == "int8" for t in concat_rows)
    text = "\n".join(explain_lines(int8))
    assert "FP16 engine" in text and "estimate" in text


def test_our_layout_moves_no_more_bytes_than_modelopt(layouts):
    """Same architecture (densenet-digits, 8x8), so the byte counts are comparable."""
    from pathlib import Path

    fixture = Path(__file__).resolve().parent / "fixtures" / "modelopt-digits-int8-fp16.onnx"
    theirs = estimate(onnx.load(str(fixture))).total
    ours = estimate(layouts["int8"]).total
    assert ours <= theirs


def test_a_map_read_by_k_concats_is_copied_k_minus_1_times(layouts):
    """torchvision layout: each map feeds every later Concat of its block; all but one get a copy
    (read + write of the map, in its int8 storage), and each Concat taking one runs a copy kernel.
    The chained layout (the default export) copies nothing."""
    from dense_edge.calibrate.layout import concat_fan_out, detect, relayout
    from dense_edge.calibrate.traffic import _value_info

    chained = layouts["int8"]
    assert detect(chained) == "chained"
    tv = relayout(chained, "torchvision")
    shapes = _value_info(tv)
    expected = sum(
        2 * (k - 1) * int(np.prod(shapes[t][1][1:])) for t, k in concat_fan_out(tv).items() if k > 1
    )
    copied, uncopied, ch = estimate(tv), estimate(tv, count_copies=False), estimate(chained)
    assert copied.copy_bytes == expected > 0
    assert copied.total == uncopied.total + expected
    concats = sum(n.op_type == "Concat" for n in tv.graph.node)
    assert 0 < copied.copy_kernels < concats and copied.kernels == uncopied.kernels + (
        copied.copy_kernels
    )
    assert (ch.copy_bytes, ch.copy_kernels) == (0, 0) and ch.total == uncopied.total
    assert 1.15 < copied.total / ch.total < 1.35  # digits: about +23% (issue 20)


def test_plan_and_explain_show_both_layouts(layouts):
    plan = plan_record(layouts["int8"], layouts["float model"])
    rows = plan["layouts"]
    assert rows["chained"]["exported"] and not rows["torchvision"]["exported"]
    assert rows["chained"]["concat_copy_bytes"] == 0 < rows["torchvision"]["concat_copy_bytes"]
    assert plan["concat_copies"] == {"bytes_per_image": 0, "kernels": 0}
    text = "\n".join(explain_lines(plan))
    assert "chained layout (this model)" in text and "torchvision layout (if exported so)" in text


def test_modelopt_layout_pays_for_its_copies():
    from pathlib import Path

    fixture = Path(__file__).resolve().parent / "fixtures" / "modelopt-digits-int8-fp16.onnx"
    theirs = onnx.load(str(fixture))
    t = estimate(theirs)
    assert t.copy_bytes > 0 and t.total > estimate(theirs, count_copies=False).total
