"""The DenseNet family is the paper's: parameter counts, structure, both memory modes."""

from __future__ import annotations

import pytest
import torch

from dense_edge import models
from dense_edge.errors import UserError
from dense_edge.models.registry import check_input_size, get_config

PUBLISHED = {
    "densenet121": (1000, 7_978_856),
    "densenet161": (1000, 28_681_000),
    "densenet169": (1000, 14_149_480),
    "densenet201": (1000, 20_013_928),
    "densenet264": (1000, 33_337_704),
    "densenet-40-12": (10, 1_019_722),
    "densenet-bc-100-12": (10, 769_162),
    "densenet-bc-250-24": (10, 15_324_406),
    "densenet-bc-190-40": (10, 25_624_430),
}


def test_available_lists_both_families_and_digits():
    names = models.available()
    for name in PUBLISHED:
        assert name in names
    assert "densenet-digits" in names


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_published(name):
    num_classes, expected = PUBLISHED[name]
    with torch.device("meta"):
        model = models.create(name, num_classes=num_classes)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("name", models.available())
def test_every_registered_model_runs_at_its_default_size(name):
    config = get_config(name)
    if config.published_params and config.published_params > 16_000_000:
        pytest.skip("large model: covered by the parameter count")
    model = models.create(name, num_classes=7).eval()
    x = torch.randn(2, config.in_channels, *config.input_size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 7)


def test_dense_layer_reads_concatenation_of_all_earlier_maps():
    model = models.create("densenet-bc-100-12")
    block = model.features.denseblock1
    k, init = 12, 24
    for i, layer in enumerate(block.values()):
        assert layer.norm1.num_features == init + i * k
        assert layer.conv1.out_channels == 4 * k  # bottleneck width 4k
        assert layer.conv2.kernel_size == (3, 3) and layer.conv2.out_channels == k


def test_transition_halves_channels_and_downsamples_once():
    model = models.create("densenet121").eval()
    t = model.features.transition1
    assert t.conv.in_channels == 64 + 6 * 32
    assert t.conv.out_channels == (64 + 6 * 32) // 2
    x = torch.randn(1, t.conv.in_channels, 56, 56)
    with torch.no_grad():
        assert t(x).shape[-2:] == (28, 28)
    strided = [m for m in t.modules() if getattr(m, "stride", 1) not in (1, (1, 1))]
    assert len(strided) == 1  # only the 2x2 average pool


def test_plain_densenet_has_no_bottleneck_and_no_compression():
    model = models.create("densenet-40-12")
    layer = model.features.denseblock1.denselayer1
    assert not hasattr(layer, "conv1")
    assert model.features.transition1.conv.out_channels == 16 + 12 * 12


def test_memory_efficient_gives_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = models.create("densenet-bc-100-12").double()
    efficient = models.create("densenet-bc-100-12", memory_efficient=True).double()
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    outs = []
    for m in (plain, efficient):
        m.train()
        y = m(x)
        y.square().sum().backward()
        outs.append((y.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    for name, grad in outs[0][1].items():
        torch.testing.assert_close(grad, outs[1][1][name], msg=name)


def test_memory_efficient_uses_checkpointing_only_with_gradients(monkeypatch):
    import torch.utils.checkpoint as cp

    calls = []
    real = cp.checkpoint
    monkeypatch.setattr(cp, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = models.create("densenet-digits", memory_efficient=True)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        model.eval()(x)
    assert not calls
    model.train()(x).sum().backward()
    assert calls


@pytest.mark.parametrize(("name", "size", "ok"), [
    ("densenet121", 224, True), ("densenet121", 29, True), ("densenet121", 28, False),
    ("densenet-bc-100-12", 4, True), ("densenet-bc-100-12", 3, False),
])  # fmt: skip
def test_input_size_check(name, size, ok):
    config = get_config(name)
    if ok:
        check_input_size(config, (size, size))
        with torch.no_grad():
            models.create(name).eval()(torch.randn(1, 3, size, size))
    else:
        with pytest.raises(UserError, match="too small"):
            check_input_size(config, (size, size))


def test_unknown_architecture_lists_the_choices():
    with pytest.raises(UserError, match="densenet121"):
        models.create("densenet-999")
