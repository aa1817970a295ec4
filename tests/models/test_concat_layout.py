"""The chained concatenation layout: bit-identical to the torchvision layout in PyTorch for every
registered DenseNet (both memory modes, loaded weights), within the parity tolerance in ONNX for
every architecture family, one Concat per tensor, and its int8 models agreeing with the other
layout's under every Q/DQ profile."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch

from dense_edge import models
from dense_edge.calibrate.layout import concat_fan_out, detect, relayout
from dense_edge.models.registry import get_config, min_input_size

# One of each family: ImageNet stem, CIFAR plain (no bottleneck/compression), CIFAR BC, digits.
FAMILIES = {
    "densenet121": 32,
    "densenet-40-12": 16,
    "densenet-bc-100-12": 16,
    "densenet-digits": 8,
}


def _pair(name: str, *, memory_efficient: bool = False):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    tv = models.create(name, num_classes=10, memory_efficient=memory_efficient)
    ch = models.create(name, num_classes=10, memory_efficient=memory_efficient)
    ch.load_state_dict(tv.state_dict(), strict=True)  # same names: torchvision weights load
    ch.set_concat_layout("chained")
    return tv, ch


@pytest.mark.parametrize("memory_efficient", [False, True], ids=["plain", "memory-efficient"])
@pytest.mark.parametrize("name", models.available())
def test_chained_equals_torchvision_to_the_last_bit(name, memory_efficient):
    config = get_config(name)
    tv, ch = _pair(name, memory_efficient=memory_efficient)
    assert list(tv.state_dict()) == list(ch.state_dict())
    size = max(min_input_size(config), 8)
    x = torch.randn(1, config.in_channels, size, size)
    with torch.no_grad():
        assert torch.equal(tv.eval()(x), ch.eval()(x))


def test_chained_training_gives_the_same_gradients_in_both_memory_modes():
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    results = []
    for memory_efficient in (False, True):
        for model in _pair("densenet-bc-100-12", memory_efficient=memory_efficient):
            model = model.double().train()
            y = model(x)
            y.square().sum().backward()
            results.append((y.detach(), [p.grad.clone() for p in model.parameters()]))
    for y, grads in results[1:]:
        assert torch.equal(y, results[0][0])
        for g, want in zip(grads, results[0][1], strict=True):
            torch.testing.assert_close(g, want, rtol=1e-12, atol=1e-12)


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="chained"):
        models.create("densenet-digits").set_concat_layout("ring")


def _onnx(model: torch.nn.Module, shape: tuple[int, ...]) -> onnx.ModelProto:
    from dense_edge.export.clean import slim
    from dense_edge.export.torch_to_onnx import _quiet

    buf = io.BytesIO()
    with _quiet():
        torch.onnx.export(model.eval(), (torch.randn(*shape),), buf, opset_version=20, dynamo=False)
    return slim(onnx.load_from_string(buf.getvalue()))


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out: np.ndarray = s.run(None, {s.get_inputs()[0].name: x})[0]
    return out


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def exported(request):  # type: ignore[no-untyped-def]
    name = request.param
    config = get_config(name)
    shape = (2, config.in_channels, FAMILIES[name], FAMILIES[name])
    tv, ch = _pair(name)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        ref = tv.eval()(torch.from_numpy(x)).numpy()
    return name, _onnx(tv, shape), _onnx(ch, shape), x, ref


def test_chained_onnx_feeds_each_tensor_to_one_concat_and_passes_parity(exported):
    _, tv, ch, x, ref = exported
    assert detect(tv) == "torchvision" and detect(ch) == "chained"
    assert max(concat_fan_out(ch).values()) == 1
    assert max(concat_fan_out(tv).values()) > 1
    assert [n.op_type for n in tv.graph.node].count("Concat") == [
        n.op_type for n in ch.graph.node
    ].count("Concat")
    for model in (tv, ch):
        assert np.abs(_ort(model, x) - ref).max() <= 1e-4  # the export's parity tolerance


def test_relayout_rewrites_one_layout_into_the_other(exported):
    _, tv, ch, x, _ = exported
    as_chained = relayout(tv, "chained")
    assert detect(as_chained) == "chained" and max(concat_fan_out(as_chained).values()) == 1
    assert detect(relayout(ch, "torchvision")) == "torchvision"
    assert len(as_chained.graph.node) == len(ch.graph.node)
    np.testing.assert_array_equal(_ort(as_chained, x), _ort(tv, x))
    np.testing.assert_array_equal(_ort(relayout(ch, "torchvision"), x), _ort(ch, x))


@pytest.mark.parametrize("profile", ["tensorrt", "onnxruntime"])
def test_int8_models_of_both_layouts_follow_the_profile_and_agree(exported, profile, tmp_path):
    from dense_edge.calibrate.checker import check_onnx
    from dense_edge.calibrate.collect import collect
    from dense_edge.calibrate.methods import MethodOptions
    from dense_edge.calibrate.qdq import quantize_model
    from dense_edge.calibrate.rules import rules_for

    _, tv, ch, x, _ = exported
    rules = rules_for(profile)
    outs = []
    for model in (tv, ch):
        onnx.save(model, str(tmp_path / "m.onnx"))
        stats = collect(tmp_path / "m.onnx", x, bins=256, key="k", cache_dir=None)
        q, plan = quantize_model(model, stats, rules, MethodOptions("minmax"))
        assert check_onnx(q, profile).ok, check_onnx(q, profile).violations[:3]
        outs.append((_ort(q, x), plan))
    (a, plan_tv), (b, plan_ch) = outs
    # Same ranges for every tensor both graphs name alike (Concat outputs are named per layout).
    # tensorrt: one scale per concatenation group, so the same int8 computation; onnxruntime
    # re-quantises each Concat's inputs to its output's scale, along the chain in the chained one.
    from dense_edge.calibrate.graph import Graph

    g = Graph(tv)
    same = [k for k in plan_tv.activations if k in plan_ch.activations and g.op(k) != "Concat"]
    assert same
    for k in same:
        assert plan_tv.activations[k] == plan_ch.activations[k], k
    assert (a.argmax(1) == b.argmax(1)).all()
    tol = (1e-5 if profile == "tensorrt" else 5e-2) * max(1.0, float(np.abs(a).max()))
    np.testing.assert_allclose(a, b, rtol=0, atol=tol)
