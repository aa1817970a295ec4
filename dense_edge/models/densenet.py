"""DenseNet (Huang et al., CVPR 2017), ImageNet and CIFAR variants, plain and memory-efficient.

Module names follow torchvision (``features.conv0``, ``features.denseblockN.denselayerM.norm1``,
``features.transitionN``, ``features.norm5``, ``classifier``) so that torchvision state dicts load
as they are.

- A dense layer reads the concatenation of every earlier feature map in its block.
  With a bottleneck (DenseNet-B) it is BN-ReLU-Conv1x1(bn_size*k)-BN-ReLU-Conv3x3(k); without one
  it is BN-ReLU-Conv3x3(k). The plain layer keeps the ``norm2/relu2/conv2`` names of the bottleneck
  layer's 3x3 half, so the two differ by exactly the bottleneck modules.
- A transition is BN-ReLU-Conv1x1(floor(theta*m))-AvgPool2x2: one downsampling.
- Two concatenation layouts compute the same numbers. ``torchvision`` (the default in PyTorch)
  concatenates every earlier map again in each layer: a block of L layers has L Concats of
  growing width, and every feature map feeds all later ones. ``chained`` (what export writes by
  default) carries the block as one growing tensor, ``c_l = Concat(c_{l-1}, x_l)``: every tensor
  feeds exactly one Concat, so an engine that writes Concat inputs into their output's buffer can
  keep a whole block in one buffer, the inference half of the shared-memory idea of Pleiss et al.
  Concatenation copies values, so both give bit-identical outputs; the module names and the
  state dict are the same.
- The memory-efficient mode (Pleiss et al., 2017) recomputes concatenation + BN-ReLU-Conv1x1 in the
  backward pass instead of storing them; it only does so when gradients are needed, so inference and
  export take the plain path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

Stem = Literal["imagenet", "cifar"]
ConcatLayout = Literal["torchvision", "chained"]
CONCAT_LAYOUTS: tuple[str, ...] = ("torchvision", "chained")


class _DenseLayer(nn.Module):
    def __init__(
        self,
        num_input_features: int,
        growth_rate: int,
        bn_size: int,
        drop_rate: float,
        bottleneck: bool,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        self.bottleneck = bottleneck
        if bottleneck:
            inter = bn_size * growth_rate
            self.norm1 = nn.BatchNorm2d(num_input_features)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = nn.Conv2d(num_input_features, inter, kernel_size=1, stride=1, bias=False)
        else:
            inter = num_input_features
        self.norm2 = nn.BatchNorm2d(inter)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(inter, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient

    def _concat_bottleneck(self, *inputs: Tensor) -> Tensor:
        # One input is the chained layout's block so far: no Concat of one tensor in the graph.
        features = inputs[0] if len(inputs) == 1 else torch.cat(inputs, 1)
        if not self.bottleneck:
            return features
        out: Tensor = self.conv1(self.relu1(self.norm1(features)))
        return out

    def forward(self, inputs: list[Tensor]) -> Tensor:
        needs_grad = any(t.requires_grad for t in inputs)
        if self.memory_efficient and needs_grad and torch.is_grad_enabled():
            # Recompute concat (+ bottleneck) in backward: the concatenated maps, the quadratic
            # memory term, are never kept.
            out = cp.checkpoint(self._concat_bottleneck, *inputs, use_reentrant=False)
        else:
            out = self._concat_bottleneck(*inputs)
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        result: Tensor = out
        return result


class _DenseBlock(nn.ModuleDict):
    def __init__(
        self,
        num_layers: int,
        num_input_features: int,
        growth_rate: int,
        bn_size: int,
        drop_rate: float,
        bottleneck: bool,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        self.concat_layout: ConcatLayout = "torchvision"
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = _DenseLayer(
                num_input_features + i * growth_rate,
                growth_rate,
                bn_size,
                drop_rate,
                bottleneck,
                memory_efficient,
            )

    def forward(self, init_features: Tensor) -> Tensor:
        if self.concat_layout == "chained":
            block = init_features
            for layer in self.values():
                block = torch.cat([block, layer([block])], 1)
            return block
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """A DenseNet. Use :func:`dense_edge.models.create` to build a named configuration."""

    def __init__(
        self,
        *,
        growth_rate: int,
        block_config: Sequence[int],
        num_init_features: int,
        bottleneck: bool = True,
        compression: float = 0.5,
        bn_size: int = 4,
        stem: Stem = "imagenet",
        in_channels: int = 3,
        num_classes: int = 1000,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        if not 0 < compression <= 1:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        self.features = nn.Sequential()
        if stem == "imagenet":
            self.features.add_module(
                "conv0",
                nn.Conv2d(in_channels, num_init_features, 7, stride=2, padding=3, bias=False),
            )
            self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
            self.features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        elif stem == "cifar":
            self.features.add_module(
                "conv0",
                nn.Conv2d(in_channels, num_init_features, 3, stride=1, padding=1, bias=False),
            )
        else:
            raise ValueError(f"unknown stem {stem!r}")

        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(
                num_layers,
                num_features,
                growth_rate,
                bn_size,
                drop_rate,
                bottleneck,
                memory_efficient,
            )
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features += num_layers * growth_rate
            if i != len(block_config) - 1:
                out_features = int(num_features * compression)
                self.features.add_module(
                    f"transition{i + 1}", _Transition(num_features, out_features)
                )
                num_features = out_features
        self.features.add_module(f"norm{len(block_config) + 1}", nn.BatchNorm2d(num_features))
        self.num_features = num_features
        self.classifier = nn.Linear(num_features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def set_memory_efficient(self, enabled: bool) -> None:
        for m in self.modules():
            if isinstance(m, _DenseLayer):
                m.memory_efficient = enabled

    def set_concat_layout(self, layout: str) -> None:
        """``torchvision`` or ``chained`` (see the module docstring): same outputs, same weights."""
        if layout not in CONCAT_LAYOUTS:
            raise ValueError(f"concat layout must be one of {CONCAT_LAYOUTS}, got {layout!r}")
        for m in self.modules():
            if isinstance(m, _DenseBlock):
                m.concat_layout = layout  # type: ignore[assignment]

    def forward_features(self, x: Tensor) -> Tensor:
        return F.relu(self.features(x))

    def forward_head(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(x, (1, 1))
        logits: Tensor = self.classifier(torch.flatten(x, 1))
        return logits

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
