"""Weights: torchvision state dicts (current and legacy keys), our checkpoints, clear mismatches."""

from __future__ import annotations

import pytest
import torch

from dense_edge import models
from dense_edge.errors import WeightsError
from dense_edge.models.weights import infer_arch, save_safetensors

# Keys and shapes of torchvision's densenet121 (torchvision/models/densenet.py naming).
TORCHVISION_121 = {
    "features.conv0.weight": (64, 3, 7, 7),
    "features.norm0.running_var": (64,),
    "features.denseblock1.denselayer1.norm1.weight": (64,),
    "features.denseblock1.denselayer1.conv1.weight": (128, 64, 1, 1),
    "features.denseblock1.denselayer6.conv2.weight": (32, 128, 3, 3),
    "features.transition1.conv.weight": (128, 256, 1, 1),
    "features.transition3.norm.bias": (1024,),
    "features.denseblock4.denselayer16.norm1.weight": (992,),
    "features.norm5.weight": (1024,),
    "classifier.weight": (1000, 1024),
    "classifier.bias": (1000,),
}


def _legacy(state_dict):
    """torchvision's pre-0.3 key style: denselayerN.norm.1 instead of denselayerN.norm1."""
    out = {}
    for k, v in state_dict.items():
        for part in ("norm1", "relu1", "conv1", "norm2", "relu2", "conv2"):
            if "denselayer" in k and f".{part}." in k:
                k = k.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.")
        out[k] = v
    return out


@pytest.fixture(scope="module")
def densenet121():
    torch.manual_seed(0)
    model = models.create("densenet121").eval()
    # Non-trivial BatchNorm statistics, so a wrong mapping would change outputs.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_state_dict_uses_torchvision_names_and_shapes(densenet121):
    sd = densenet121.state_dict()
    for key, shape in TORCHVISION_121.items():
        assert tuple(sd[key].shape) == shape, key


@pytest.mark.parametrize("style", ["current", "legacy", "dataparallel", "wrapped"])
def test_torchvision_pth_loads_and_gives_same_outputs(tmp_path, densenet121, style):
    sd = {k: v.clone() for k, v in densenet121.state_dict().items()}
    if style == "legacy":
        sd = _legacy(sd)
        assert "features.denseblock1.denselayer1.norm.1.weight" in sd
    elif style == "dataparallel":
        sd = {f"module.{k}": v for k, v in sd.items()}
    elif style == "wrapped":
        sd = {"state_dict": sd, "epoch": 90}
    path = tmp_path / "densenet121.pth"
    torch.save(sd, path)
    loaded, manifest = models.load(path)  # architecture recognised from the weights
    assert manifest["arch"] == "densenet121"
    assert manifest["input_shape"] == [3, 224, 224]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), densenet121(x))


def test_our_checkpoint_round_trips_with_its_manifest(tmp_path):
    model = models.create("densenet-digits", num_classes=10).eval()
    manifest = {
        "format": "dense-edge/manifest",
        "format_version": 1,
        "arch": "densenet-digits",
        "num_classes": 10,
        "classes": list("abcdefghij"),
        "input_shape": [1, 8, 8],
        "preprocess": {"input_size": [8, 8]},
    }
    path = tmp_path / "w.safetensors"
    save_safetensors(model, path, manifest)
    loaded, m = models.load(path)
    assert m["classes"] == list("abcdefghij")
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_wrong_architecture_is_named(tmp_path):
    sd = models.create("densenet-bc-100-12").state_dict()
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="look like densenet-bc-100-12"):
        models.load(tmp_path / "w.pth", arch="densenet-40-12")


def test_wrong_class_count_is_named(tmp_path):
    sd = models.create("densenet-bc-100-12", num_classes=100).state_dict()
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="100 classes, the model has 10"):
        models.load(tmp_path / "w.pth", num_classes=10)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(models.create("densenet-digits"), path)
    with pytest.raises(WeightsError, match="refused to load: the checkpoint holds Python objects"):
        models.load(path)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        models.load(tmp_path / "nope.pth")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="safetensors"):
        models.load(bad)
    junk = tmp_path / "junk.pth"
    junk.write_text("hello")
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint or safetensors file"):
        models.load(junk)


def test_infer_arch_recognises_each_family():
    for name in ("densenet-40-12", "densenet-bc-100-12", "densenet-digits"):
        assert infer_arch(models.create(name).state_dict()) == name
