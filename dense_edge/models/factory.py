"""``dense_edge.models.create``: a named DenseNet with freshly initialised weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dense_edge.models.registry import get_config

if TYPE_CHECKING:
    from dense_edge.models.densenet import DenseNet


def create(
    name: str,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    memory_efficient: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    """Build the named DenseNet with freshly initialised weights."""
    # densenet imports torch: loaded when a model is built, so the registry stays cheap
    from dense_edge.models.densenet import DenseNet

    c = get_config(name)
    return DenseNet(
        growth_rate=c.growth_rate,
        block_config=c.block_config,
        num_init_features=c.num_init_features,
        bottleneck=c.bottleneck,
        compression=c.compression,
        stem=c.stem,  # type: ignore[arg-type]
        in_channels=in_channels or c.in_channels,
        num_classes=num_classes or c.default_num_classes,
        drop_rate=drop_rate,
        memory_efficient=memory_efficient,
    )
