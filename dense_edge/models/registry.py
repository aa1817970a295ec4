"""Named DenseNet configurations as data: architecture, default input and preprocessing.

Each entry records the parameter count published for it (Huang et al. 2017, Table 1 and 2 and
the authors' / torchvision's released models), so a test can prove the implementation is the
paper's network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dense_edge.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    growth_rate: int
    block_config: tuple[int, ...]
    num_init_features: int
    bottleneck: bool
    compression: float
    stem: str  # "imagenet" (7x7/2 conv + 3x3/2 max-pool) or "cifar" (3x3 conv)
    family: str
    default_num_classes: int
    # Default preprocessing for this family (stored in every manifest).
    in_channels: int = 3
    input_size: tuple[int, int] = (224, 224)
    resize: int | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    published_params: int | None = None
    notes: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def arch_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "family": self.family,
            "growth_rate": self.growth_rate,
            "block_config": list(self.block_config),
            "num_init_features": self.num_init_features,
            "bottleneck": self.bottleneck,
            "compression": self.compression,
            "stem": self.stem,
        }

    @property
    def downsampling(self) -> int:
        stem = 4 if self.stem == "imagenet" else 1
        return int(stem * 2 ** (len(self.block_config) - 1))


def _imagenet(name: str, k: int, blocks: tuple[int, ...], init: int, params: int) -> ModelConfig:
    return ModelConfig(
        name=name,
        growth_rate=k,
        block_config=blocks,
        num_init_features=init,
        bottleneck=True,
        compression=0.5,
        stem="imagenet",
        family="imagenet",
        default_num_classes=1000,
        input_size=(224, 224),
        resize=256,
        published_params=params,
    )


def _cifar(name: str, depth: int, k: int, bc: bool, params: int, notes: str = "") -> ModelConfig:
    # depth = 3 blocks * layers * convs_per_layer + stem conv + 2 transitions + classifier.
    convs = 2 if bc else 1
    layers = (depth - 4) // (3 * convs)
    return ModelConfig(
        name=name,
        growth_rate=k,
        block_config=(layers, layers, layers),
        num_init_features=2 * k if bc else 16,
        bottleneck=bc,
        compression=0.5 if bc else 1.0,
        stem="cifar",
        family="cifar",
        default_num_classes=10,
        input_size=(32, 32),
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        published_params=params,
        notes=notes,
    )


_CONFIGS: dict[str, ModelConfig] = {
    c.name: c
    for c in (
        _imagenet("densenet121", 32, (6, 12, 24, 16), 64, 7_978_856),
        _imagenet("densenet161", 48, (6, 12, 36, 24), 96, 28_681_000),
        _imagenet("densenet169", 32, (6, 12, 32, 32), 64, 14_149_480),
        _imagenet("densenet201", 32, (6, 12, 48, 32), 64, 20_013_928),
        _imagenet("densenet264", 32, (6, 12, 64, 48), 64, 33_337_704),
        _cifar("densenet-40-12", 40, 12, False, 1_019_722, "paper: 1.0M"),
        _cifar("densenet-bc-100-12", 100, 12, True, 769_162, "paper: 0.8M"),
        _cifar("densenet-bc-250-24", 250, 24, True, 15_324_406, "paper: 15.3M"),
        _cifar("densenet-bc-190-40", 190, 40, True, 25_624_430, "paper: 25.6M"),
        # A small DenseNet-BC for scikit-learn's 8x8 handwritten digits (one grey channel,
        # pixel values 0..16 stored as 0..255). Three blocks take 8x8 down to 2x2.
        ModelConfig(
            name="densenet-digits",
            growth_rate=12,
            block_config=(4, 4, 4),
            num_init_features=24,
            bottleneck=True,
            compression=0.5,
            stem="cifar",
            family="digits",
            default_num_classes=10,
            in_channels=1,
            input_size=(8, 8),
            mean=(0.3053,),  # measured over all 1,797 digits
            std=(0.3759,),
        ),
    )
}


def available() -> list[str]:
    """Names accepted by :func:`dense_edge.models.create`."""
    return list(_CONFIGS)


def get_config(name: str) -> ModelConfig:
    try:
        return _CONFIGS[name]
    except KeyError:
        raise UserError(
            f"unknown architecture {name!r}", fix=f"choose one of: {', '.join(_CONFIGS)}"
        ) from None


def feature_map_sizes(config: ModelConfig, hw: tuple[int, int]) -> list[tuple[int, int]]:
    """Spatial size after the stem and after each transition, for an input of size ``hw``."""
    h, w = hw
    sizes = []
    if config.stem == "imagenet":
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1  # 7x7/2, pad 3
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1  # 3x3/2 max-pool, pad 1
    sizes.append((h, w))
    for _ in range(len(config.block_config) - 1):
        h, w = h // 2, w // 2  # 2x2/2 average pool
        sizes.append((h, w))
    return sizes


def check_input_size(config: ModelConfig, hw: tuple[int, int]) -> None:
    """Refuse an input that the network's downsampling would shrink to nothing."""
    if min(min(s) for s in feature_map_sizes(config, hw)) < 1:
        smallest = min_input_size(config)
        raise UserError(
            f"input size {hw[0]}x{hw[1]} is too small for {config.name}: it downsamples "
            f"{config.downsampling}x, so the last block would have no pixels",
            fix=f"use an input of at least {smallest}x{smallest}",
        )


def min_input_size(config: ModelConfig) -> int:
    side = 1
    while min(min(s) for s in feature_map_sizes(config, (side, side))) < 1:
        side += 1
    return side
