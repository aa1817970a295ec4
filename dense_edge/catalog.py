"""Every name a user can type, declared once as data: precisions, calibration methods, profile
names, float-parts choices and each target's declaration.

This module is a leaf (standard library only). The recipe schema, the manifests, the CLI and the
report read it; the code that implements a name (a :class:`~dense_edge.targets.base.Target`, a
calibration profile, a range method) imports it, never the other way round. Adding a target is
one :class:`TargetDeclaration` here and one package under ``dense_edge/targets/``
(ARCHITECTURE.md walks through it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal

# -- precisions -------------------------------------------------------------------------------
Precision = Literal["fp32", "fp16", "bf16", "int8"]
PRECISIONS: Final[tuple[Precision, ...]] = ("fp32", "fp16", "bf16", "int8")
DEFAULT_PRECISIONS: Final[tuple[Precision, ...]] = ("fp32", "int8")  # a recipe target's default


# -- calibration ------------------------------------------------------------------------------
class Method(str, Enum):
    """Range methods: from collected statistics to a clipping threshold
    (:mod:`dense_edge.calibrate.methods`)."""

    MINMAX = "minmax"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"
    MSE = "mse"


MethodName = Literal["minmax", "percentile", "entropy", "mse"]  # Method's values, for the schema
METHODS: Final[tuple[str, ...]] = tuple(m.value for m in Method)

# Calibration profiles: the Q/DQ (or NNCF) layout each runtime builds into fast int8 kernels
# (:mod:`dense_edge.calibrate.profiles` implements them).
QdqProfileName = Literal["tensorrt", "onnxruntime"]  # written as a Q/DQ ONNX model
NncfProfileName = Literal["openvino"]  # written by NNCF as an OpenVINO IR
ProfileName = Literal[QdqProfileName, NncfProfileName]
PROFILE_TENSORRT: Final = "tensorrt"
PROFILE_ONNXRUNTIME: Final = "onnxruntime"
PROFILE_OPENVINO: Final = "openvino"
PROFILES: Final[tuple[ProfileName, ...]] = (PROFILE_TENSORRT, PROFILE_ONNXRUNTIME, PROFILE_OPENVINO)

# The type of the layers a Q/DQ model leaves unquantised (TensorRT's ``float_parts``).
FloatParts = Literal["fp16", "fp32"]
FLOAT_PARTS: Final[tuple[FloatParts, ...]] = ("fp16", "fp32")

# -- targets ----------------------------------------------------------------------------------
# Two names that are not targets: ``onnx`` (``export --target onnx`` stops at the checked ONNX
# model) and ``pytorch`` (the float reference model's runner and its row in the report).
ONNX: Final = "onnx"
PYTORCH: Final = "pytorch"

DeviceKind = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class TargetDeclaration:
    """What a target is, as data: everything the recipe, the CLI, the manifests and the report
    need to know without loading the target's code."""

    name: str  # the CLI/recipe/manifest name, e.g. "openvino"
    title: str  # how people write it, e.g. "OpenVINO"
    precisions: tuple[Precision, ...]  # what it builds
    default_precisions: tuple[Precision, ...]  # `export --target X` without --precision
    in_default_recipe: bool  # part of the empty recipe's `targets`
    library: str  # the distribution whose version a manifest records (and whose upgrade rebuilds)
    pip_extra: str | None  # `pip install 'dense-edge[<pip_extra>]'`; None: a core dependency
    profile: ProfileName  # the calibration profile of its int8 model
    device_kinds: tuple[DeviceKind, ...]  # where it runs; the first is where validation measures
    color: str  # its colour in the report's plots
    kit_steps: str = ""  # what to run in one of its kits on the device ("": it writes no kits)
    # precisions built from a recipe only where the CPU has one of these instructions (others
    # would run as another precision: a duplicate engine); an explicit compile builds them anyway
    needs_cpu: tuple[tuple[Precision, tuple[str, ...]], ...] = ()


ONNXRUNTIME: Final = TargetDeclaration(
    name="onnxruntime",
    title="ONNX Runtime",
    precisions=("fp32", "fp16", "int8"),
    default_precisions=("fp32", "int8"),
    in_default_recipe=True,
    library="onnxruntime",
    pip_extra=None,  # a core dependency
    profile=PROFILE_ONNXRUNTIME,
    device_kinds=("cpu", "cuda"),
    color="#1f77b4",
)
OPENVINO: Final = TargetDeclaration(
    name="openvino",
    title="OpenVINO",
    precisions=("fp32", "fp16", "bf16", "int8"),
    # bf16 where the CPU has it: a calibration-free candidate beside int8 (on a Xeon with AMX,
    # as fast as int8 at batch 1 for densenet121: bench/concat_layout.py)
    default_precisions=("fp32", "bf16", "int8"),
    in_default_recipe=True,
    library="openvino",
    pip_extra="openvino",
    profile=PROFILE_OPENVINO,
    device_kinds=("cpu",),
    color="#7b3294",
    needs_cpu=(("bf16", ("avx512_bf16", "amx_bf16")),),  # else OpenVINO runs "bf16" in f32
)
TENSORRT: Final = TargetDeclaration(
    name="tensorrt",
    title="TensorRT",
    precisions=("fp16", "int8", "fp32"),
    default_precisions=("fp16", "int8"),
    in_default_recipe=False,
    library="tensorrt",
    pip_extra="tensorrt",
    profile=PROFILE_TENSORRT,
    device_kinds=("cuda",),
    color="#2ca02c",
    kit_steps="`bash trtexec.sh` and `bash validate.sh`",
)

# One line per target, in the order the CLI, the recipe and the report list them.
TARGETS: Final[tuple[TargetDeclaration, ...]] = (ONNXRUNTIME, OPENVINO, TENSORRT)
REFERENCE_COLOR: Final = "#555"  # the float model's (``pytorch``) colour in the report's plots


def target_names() -> tuple[str, ...]:
    """The declared targets' names."""
    return tuple(t.name for t in TARGETS)


def declaration(name: str) -> TargetDeclaration | None:
    """The declaration of target ``name``, or None when no target has that name."""
    return next((t for t in TARGETS if t.name == name), None)


def libraries() -> tuple[str, ...]:
    """The distributions the declared targets run on (a manifest records their versions)."""
    return tuple(t.library for t in TARGETS)
