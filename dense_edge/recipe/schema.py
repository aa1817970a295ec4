"""The recipe schema: every key a recipe may hold, its type and its default.

An empty recipe is the digits quick start (``recipes/digits.yaml`` spells the same values out; a
test keeps the two equal). Keys mirror the CLI flags one to one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from dense_edge import catalog
from dense_edge.catalog import DEFAULT_PRECISIONS, FloatParts, MethodName, Precision


def _one_of(value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        quoted = [repr(a) for a in allowed]
        expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        raise ValueError(f"expected one of {expected}, got {value!r}")
    return value


def target_names() -> tuple[str, ...]:
    """What a recipe's ``targets[].name`` may be: ``onnx`` or a declared target."""
    return (catalog.ONNX, *catalog.target_names())


def profile_names() -> tuple[str, ...]:
    """The calibration profiles, in the order ``calibration.profiles`` lists them by default."""
    return tuple(sorted(catalog.PROFILES))


# Upper bounds: a recipe is small input, and a number in it must not turn into gigabytes of
# memory or days of work by a typo. Each is far above any real use.
MAX_SEED = 2**63 - 1  # seeds are stored and passed on as int64
MAX_SIDE = 4096  # pixels: preprocess.input_size, resize
MAX_SAMPLES = 1_000_000  # images drawn for calibration, parity, accuracy-aware search
MAX_BATCH = 4096
MAX_CLASSES = 100_000
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]
BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH)]


def _power_of_two(v: int) -> int:
    if v & (v - 1):
        raise ValueError(f"expected a power of two (128, 256, ... 65536), got {v}")
    return v


DeclaredTarget = Annotated[str, AfterValidator(lambda v: _one_of(v, target_names()))]
DeclaredProfile = Annotated[str, AfterValidator(lambda v: _one_of(v, profile_names()))]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


class ModelSection(_Section):
    arch: str = "densenet-digits"
    num_classes: int | None = Field(default=None, ge=2, le=MAX_CLASSES)
    weights: str | None = None  # our checkpoint, a torchvision .pth, or .safetensors
    memory_efficient: bool = False
    drop_rate: float = Field(default=0.0, ge=0.0, lt=1.0)


class PreprocessSection(_Section):
    """Overrides of the architecture's default preprocessing (``None`` keeps the default)."""

    input_size: list[Side] | None = None
    resize: Side | list[Side] | None = None
    crop: bool | None = None
    color: Literal["RGB", "L"] | None = None
    channel_order: Literal["RGB", "BGR"] | None = None
    interpolation: Literal["nearest", "bilinear", "bicubic"] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None

    @field_validator("input_size")
    @classmethod
    def _hw(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and len(v) != 2:
            raise ValueError("expected [height, width] of positive ints")
        return v

    @field_validator("resize")
    @classmethod
    def _resize(cls, v: int | list[int] | None) -> int | list[int] | None:
        if isinstance(v, list) and len(v) != 2:
            raise ValueError("expected one side or [height, width] of positive ints")
        return v


class DataSection(_Section):
    source: Literal["digits", "imagefolder", "cifar10", "synthetic"] = "digits"
    root: str | None = None  # image folder or CIFAR-10 python batch folder
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    split_seed: Seed = 0
    skip_corrupt: bool = False  # count and skip unusable images instead of failing
    limit: int | None = Field(default=None, ge=1)  # at most this many images per split
    synthetic_samples: int = Field(default=200, ge=10, le=MAX_SAMPLES)

    @model_validator(mode="after")
    def _needs_root(self) -> DataSection:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                "test_fraction: val_fraction + test_fraction must leave images to train on"
            )
        return self


class AugmentSection(_Section):
    pad_crop: int = Field(
        default=1, ge=0, le=MAX_SIDE
    )  # random crop after zero-padding by this many pixels
    hflip: bool = False
    # ImageNet-style: a random 8-100% of the image's area at aspect 3/4-4/3, resized to the input
    # (then hflip), decoded per step; false keeps the resize and centre crop of preprocess.*
    random_resized_crop: bool = False


class TrainSection(_Section):
    epochs: int = Field(default=30, ge=1, le=100_000)
    batch_size: BatchSize = 64
    lr: float = Field(default=0.1, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(default=1e-4, ge=0)
    schedule: Literal["cosine", "step"] = "cosine"
    milestones: list[float] = Field(default_factory=lambda: [0.5, 0.75])  # fractions of epochs
    gamma: float = Field(default=0.1, gt=0, le=1)
    augment: AugmentSection = Field(default_factory=AugmentSection)
    amp: Literal["auto", "off"] = "auto"  # mixed precision on CUDA
    # torch's intra-op CPU threads; null: the usable CPUs times the machine's idle share
    threads: int | None = Field(default=None, ge=1, le=1024)
    # DataLoader worker processes for file sources; null: one fewer than the CPUs, at most 4
    workers: int | None = Field(default=None, ge=0, le=64)


class ParitySection(_Section):
    """Tolerances of the exported model against PyTorch (``null`` switches a check off)."""

    samples: int = Field(default=64, ge=1, le=MAX_SAMPLES)
    max_abs_error: float | None = Field(default=1e-4, gt=0)
    min_cosine: float | None = Field(default=0.9999, gt=0, le=1)
    min_top1_agreement: float | None = Field(default=1.0, gt=0, le=1)


def _fp16_parity() -> ParitySection:
    # FP16 rounds every weight and activation: judge by direction and decisions, not by 1e-4.
    return ParitySection(max_abs_error=None, min_cosine=0.999, min_top1_agreement=0.98)


class ExportSection(_Section):
    opset: int = Field(default=20, ge=1, le=99)
    exporter: Literal["torchscript", "dynamo"] = "torchscript"
    # How a dense block's concatenations are written (same numbers, same weights): "chained"
    # carries the block as one growing tensor, each map feeding one Concat (engines keep the block
    # in one buffer); "torchvision" re-concatenates every earlier map in every layer.
    concat_layout: Literal["chained", "torchvision"] = "chained"
    dynamic_batch: bool = True
    dynamic_hw: bool = False
    precision: Literal["fp32", "fp16"] = "fp32"
    simplify: bool = True
    parity: ParitySection = Field(default_factory=ParitySection)
    parity_fp16: ParitySection = Field(default_factory=_fp16_parity)


class AccuracyAwareSection(_Section):
    enabled: bool = False
    max_top1_drop: float | None = Field(default=0.5, ge=0)  # points
    min_agreement: float | None = Field(default=None, gt=0, le=1)
    samples: int = Field(default=500, ge=1, le=MAX_SAMPLES)


class CalibrationSection(_Section):
    source: str = "data"  # "data" (drawn from data.train), an image folder, or a manifest file
    samples: int = Field(default=300, ge=1, le=MAX_SAMPLES)
    seed: Seed = 0
    method: MethodName = "percentile"
    percentile: float = Field(default=99.99, gt=50, le=100)
    bins: Annotated[int, AfterValidator(_power_of_two)] = Field(default=2048, ge=128, le=65536)
    skip_unreadable: bool = False
    profiles: list[DeclaredProfile] = Field(default_factory=lambda: list(profile_names()))
    float_parts: FloatParts = "fp16"  # TensorRT: type of the non-quantised layers
    nncf_preset: Literal["performance", "mixed"] = "performance"  # OpenVINO (NNCF)
    accuracy_aware: AccuracyAwareSection = Field(default_factory=AccuracyAwareSection)


class TargetSection(_Section):
    name: DeclaredTarget
    precisions: list[Precision] = Field(default_factory=lambda: list(DEFAULT_PRECISIONS))
    device: str | None = None  # OpenVINO: CPU/GPU/NPU/AUTO; ONNX Runtime: provider name
    hint: Literal["latency", "throughput"] = "latency"
    threads: int | None = Field(default=None, ge=1, le=1024)
    streams: int | None = Field(default=None, ge=1, le=1024)
    # TensorRT only
    min_batch: BatchSize = 1
    opt_batch: BatchSize | None = None  # default: min_batch (latency first)
    max_batch: BatchSize = 8
    workspace_mb: int = Field(default=1024, ge=16, le=1 << 20)
    optimization_level: int = Field(default=3, ge=0, le=5)
    dla_core: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _batches(self) -> TargetSection:
        opt = self.opt_batch or self.min_batch  # TensorRT tunes for min_batch unless told
        if not self.min_batch <= opt <= self.max_batch:
            raise ValueError("max_batch: expected min_batch <= opt_batch <= max_batch")
        return self


class BudgetSection(_Section):
    max_top1_drop: float | None = Field(default=1.0, ge=0)  # points, against the float model
    min_agreement: float | None = Field(default=0.98, gt=0, le=1)
    max_p99_ms: float | None = Field(default=None, gt=0)
    min_speedup: float | None = Field(default=None, gt=0)


class ValidateSection(_Section):
    split: Literal["test", "val"] = "test"
    limit: int | None = Field(default=None, ge=1)
    batch_sizes: list[BatchSize] = Field(default_factory=lambda: [1, 8], min_length=1)
    decision_batch: BatchSize = 1  # batch size the recommendation is made at
    warmup: int = Field(default=10, ge=0, le=1_000_000)
    iterations: int = Field(default=1000, ge=1, le=10_000_000)  # p99 from 1000 samples up
    time_budget_s: float | None = Field(default=10.0, gt=0, le=86_400)
    rounds: int = Field(default=3, ge=1, le=1000)  # latency in interleaved rounds, pooled
    min_reference_top1: float | None = Field(default=None, gt=0, le=1)  # float model, fraction
    budgets: BudgetSection = Field(default_factory=BudgetSection)


def _default_targets() -> list[TargetSection]:
    return [
        TargetSection(name=t.name, precisions=list(t.default_precisions))
        for t in catalog.TARGETS
        if t.in_default_recipe
    ]


class Recipe(_Section):
    name: str = "digits"
    seed: Seed = 0
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    preprocess: PreprocessSection = Field(default_factory=PreprocessSection)
    train: TrainSection = Field(default_factory=TrainSection)
    export: ExportSection = Field(default_factory=ExportSection)
    calibration: CalibrationSection = Field(default_factory=CalibrationSection)
    targets: list[TargetSection] = Field(default_factory=_default_targets)
    validate_: ValidateSection = Field(default_factory=ValidateSection, alias="validate")

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    @property
    def validation(self) -> ValidateSection:
        return self.validate_

    def dump(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)


# Keys whose values are file system paths: resolved against the recipe file's folder.
PATH_KEYS = ("model.weights", "data.root", "calibration.source")
