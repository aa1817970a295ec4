"""The DenseNet family: ``available()``, ``create(name, ...)``, ``load(path)``.

torch is imported only when a model is built or loaded, so the registry (names, input sizes,
preprocessing) is usable without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dense_edge.models.factory import create
from dense_edge.models.registry import ModelConfig, available, check_input_size, get_config

if TYPE_CHECKING:
    from dense_edge.models.densenet import DenseNet

__all__ = ["ModelConfig", "available", "check_input_size", "create", "get_config", "load"]


def load(
    path: str | Path,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    classes: list[str] | None = None,
    memory_efficient: bool = False,
) -> tuple[DenseNet, dict[str, Any]]:
    """Load a ``model/`` folder, one of our checkpoints, or a torchvision ``.pth``.

    Returns ``(model, manifest)`` with the model in eval mode. For files without a manifest
    (torchvision weights) the architecture is taken from ``arch`` or recognised from the weights,
    and a manifest with the architecture's default preprocessing is made.
    """
    # loading imports torch (through weights): loaded when a model is, not with the registry
    from dense_edge.models.loading import load_model

    return load_model(
        Path(path),
        arch=arch,
        num_classes=num_classes,
        classes=classes,
        memory_efficient=memory_efficient,
    )
