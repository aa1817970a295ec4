"""Reading weights safely and fitting them to an architecture.

Only two formats are read: safetensors, and PyTorch files loaded with ``weights_only=True`` (no
arbitrary pickles). torchvision state dicts load as they are, including the legacy key style
(``denselayer1.norm.1.weight`` for ``denselayer1.norm1.weight``) and DataParallel's ``module.``
prefix.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dense_edge.errors import WeightsError
from dense_edge.fileio import atomic_path
from dense_edge.models.registry import ModelConfig, available, get_config

if TYPE_CHECKING:
    from dense_edge.manifest import ModelManifest

_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return ``(state_dict, metadata)`` from a safetensors or weights-only PyTorch file."""
    p = Path(path)
    if not p.exists():
        raise WeightsError(
            "weights file not found", path=p, fix="check the path given to --weights"
        )
    if p.is_dir():
        raise WeightsError(
            "is a directory, expected a weights file",
            path=p,
            fix="pass the .safetensors or .pth file",
        )
    if p.suffix == ".safetensors" or _looks_like_safetensors(p):
        return _read_safetensors(p)
    if not _looks_like_torch(p):
        raise WeightsError(
            "not a PyTorch checkpoint or safetensors file",
            path=p,
            fix="pass a torch.save'd state_dict (.pth/.pt) or a .safetensors file",
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise WeightsError(
            f"refused to load: the checkpoint holds Python objects, not only tensors{what}",
            path=p,
            fix="save the model's state_dict() with torch.save, or use safetensors",
        ) from None
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        if _looks_like_safetensors(p):
            return _read_safetensors(p)
        raise WeightsError(
            f"cannot read weights ({str(exc).splitlines()[0][:120]})",
            path=p,
            fix="pass a torch.save'd state_dict (.pth/.pt) or a .safetensors file",
        ) from None
    return _as_state_dict(obj, p), {}


def _looks_like_torch(p: Path) -> bool:
    """torch.save writes a zip archive (or, before 1.6, a pickle starting with 0x80)."""
    import zipfile

    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return zipfile.is_zipfile(p) or head[:1] == b"\x80"


def _looks_like_safetensors(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            head = fh.read(9)
        return len(head) == 9 and head[8:9] == b"{"
    except OSError:
        return False


def _read_safetensors(p: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(p), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
            for key in fh.keys():  # noqa: SIM118 (safe_open is not a dict)
                tensors[key] = fh.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(
            f"not a readable safetensors file ({exc})", path=p, fix="re-export the weights"
        ) from None
    return tensors, metadata


def _as_state_dict(obj: Any, p: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(k, str) for k in inner):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(
            f"expected a state dict, found {type(obj).__name__}",
            path=p,
            fix="save model.state_dict(), not the model object",
        )
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError("the file holds no tensors", path=p)
    return tensors


def normalize_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip DataParallel prefixes and rename legacy torchvision keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        m = _LEGACY_KEY.match(key)
        if m:
            key = m.group(1) + m.group(2)
        out[key] = value
    return out


@dataclass(frozen=True)
class StateDictShape:
    """What a state dict says about its architecture (None: the tensor that would say is absent)."""

    block_config: tuple[int, ...]  # layers per dense block, () when there are no dense blocks
    bottleneck: bool
    num_init_features: int | None = None
    in_channels: int | None = None
    stem: str | None = None  # "imagenet" (7x7 conv0) or "cifar"
    growth_rate: int | None = None
    num_classes: int | None = None


def describe_state_dict(state_dict: dict[str, torch.Tensor]) -> StateDictShape:
    """What a state dict says about its architecture (used to match and to explain mismatches)."""
    blocks: dict[int, int] = {}
    for key in state_dict:
        m = re.match(r"features\.denseblock(\d+)\.denselayer(\d+)\.", key)
        if m:
            b, layer = int(m.group(1)), int(m.group(2))
            blocks[b] = max(blocks.get(b, 0), layer)
    conv0 = state_dict.get("features.conv0.weight")
    conv2 = state_dict.get("features.denseblock1.denselayer1.conv2.weight")
    cls = state_dict.get("classifier.weight")
    return StateDictShape(
        block_config=tuple(blocks[b] for b in sorted(blocks)),
        bottleneck="features.denseblock1.denselayer1.conv1.weight" in state_dict,
        num_init_features=None if conv0 is None else int(conv0.shape[0]),
        in_channels=None if conv0 is None else int(conv0.shape[1]),
        stem=None if conv0 is None else ("imagenet" if conv0.shape[-1] == 7 else "cifar"),
        growth_rate=None if conv2 is None else int(conv2.shape[0]),
        num_classes=None if cls is None else int(cls.shape[0]),
    )


def _matches(config: ModelConfig, info: StateDictShape) -> bool:
    return (
        tuple(config.block_config) == info.block_config
        and config.growth_rate == info.growth_rate
        and config.num_init_features == info.num_init_features
        and config.stem == info.stem
        and config.bottleneck == info.bottleneck
    )


def infer_arch(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The registered architecture whose shape these weights have, or None."""
    info = describe_state_dict(state_dict)
    for name in available():
        if _matches(get_config(name), info):
            return name
    return None


def fit_state_dict(
    model: nn.Module,
    state_dict: dict[str, torch.Tensor],
    *,
    arch: str,
    source: str | Path,
) -> None:
    """Load ``state_dict`` into ``model`` strictly, explaining any mismatch in one line."""
    state_dict = normalize_keys(state_dict)
    config = get_config(arch)
    info = describe_state_dict(state_dict)
    if info.block_config and not _matches(config, info):
        guess = infer_arch(state_dict)
        what = f"they look like {guess}" if guess else f"their blocks are {list(info.block_config)}"
        raise WeightsError(
            f"weights do not fit {arch}: {what}",
            path=source,
            fix=f"set model.arch to {guess}" if guess else "check model.arch",
        )
    expected = model.state_dict()
    n_classes = info.num_classes
    want_classes = expected["classifier.weight"].shape[0]
    if n_classes is not None and n_classes != want_classes:
        raise WeightsError(
            f"weights have {n_classes} classes, the model has {want_classes}",
            path=source,
            fix=f"set model.num_classes to {n_classes} or use weights trained for {want_classes}",
        )
    in_ch = info.in_channels
    want_in = expected["features.conv0.weight"].shape[1]
    if in_ch is not None and in_ch != want_in:
        raise WeightsError(
            f"weights take {in_ch}-channel input, the model takes {want_in}",
            path=source,
            fix="set preprocess.color to match the weights",
        )
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    # BatchNorm's num_batches_tracked is bookkeeping; older checkpoints lack it.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        raise WeightsError(
            f"weights do not match {arch}: keys " + ", ".join(parts),
            path=source,
            fix="pass weights saved from this architecture",
        )
    for key, tensor in state_dict.items():
        if key in expected and expected[key].shape != tensor.shape:
            raise WeightsError(
                f"weights do not match {arch}: {key} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(expected[key].shape)}",
                path=source,
            )
    model.load_state_dict(state_dict, strict=False)


def save_safetensors(
    model: nn.Module, path: str | Path, manifest: ModelManifest | None = None
) -> None:
    """Write the model's weights (and the manifest as metadata) atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt"}
    if manifest is not None:
        metadata["dense_edge_manifest"] = json.dumps(manifest, sort_keys=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
