"""Q/DQ rules per target: what each runtime builds into fast INT8 kernels.

Each profile is one :class:`Profile` object, got by name with :func:`get`; the names (the
recipe's ``calibration.profiles`` values) are defined here and nowhere else. A profile does two
things: ``build`` writes its int8 model into the calibrate stage's folder and ``check_file`` judges
any model against it. Everything that differs between profiles (the model file's name, which
recipe settings are its inputs, the method it records, its rules) is an attribute of the
profile, so no other module branches on a profile's name.

For the Q/DQ profiles a :class:`Rules` object is the one description of the layout: the writer
(:mod:`dense_edge.calibrate.qdq`) places Q/DQ from it and the checker
(:mod:`dense_edge.calibrate.checker`) judges any model against it (``rules.write(...)`` and
``rules.check(...)``). The NNCF profile sits behind the same interface: its ``build`` is NNCF
quantisation to OpenVINO IR, its ``check_file`` the IR checker.

``tensorrt`` (TensorRT 8.6 with ``--int8``, 10.x and 11.x strongly typed, explicit quantisation)
    Symmetric int8 (zero points 0). Weights per output channel (axis 0; axis 1 for a Gemm without
    ``transB``) as int8 initializers behind DequantizeLinear; activations per tensor; biases float
    (TensorRT adds them in the kernel's epilogue). The layout is the one NVIDIA's ModelOpt writes
    for DenseNet, because DenseNet INT8 is bound by memory traffic, not arithmetic:

    * Conv and Gemm inputs are quantised; TensorRT fuses ``DQ -> Conv (-> ReLU) -> Q`` into one
      int8 kernel. Gemms with fewer than 16 outputs (a 10-class classifier) stay float, as in
      ModelOpt: their int8 kernel saves nothing.
    * Concatenations run in int8: every tensor joined by a Concat
      (the block input, each layer's new features, the Concat outputs) is one *concatenation
      group* with one scale, so each producer writes int8 straight into the concatenated buffer
      and TensorRT elides the copy. Every reader of a group tensor, including the BatchNorm that
      follows, takes the dequantised tensor, so no float copy is kept alive; the BatchNorm and
      ReLU after a Concat then run as one kernel that reads int8 and writes int8. The group's
      scale is the widest of its members' own ranges. The old options (Concats in float, or
      one merged scale per block on Concat inputs only) are gone: on digits float Concats were
      no more accurate (within one test image either way) and moved ~1.25x the bytes; on the
      deep model the int8 groups already agree with float on every test image, for every
      method, so float Concats had nothing to win (bench/README.md).
    * Pooling: TensorRT propagates quantisation through MaxPool on its own (MaxPool commutes
      with quantisation), not through AveragePool. Both get DQ on their input and Q on their
      output, so they run in int8 and every runtime reads the same explicit layout;
      the GlobalAveragePool input is quantised (it reads the largest late feature map).
    * Every layer that is not quantised runs in FP16 (``float_parts: fp16``, default) with FP32
      model inputs and outputs (a Cast at each end): in a strongly typed network the ONNX's
      types are the engine's types, so this one ONNX builds the same engine on TensorRT 10
      and 11.
      ``float_parts: fp32`` keeps the float parts in FP32 (slower; for debugging accuracy).

``onnxruntime`` (CPU execution provider)
    Unsigned 8-bit activations with zero points, signed 8-bit per-channel weights (u8s8: the
    combination ONNX Runtime's x86 int8 kernels run fastest; s8s8 Q/DQ ran 1.3x *slower* than
    float32 for densenet121 here, u8s8 ran faster). Q/DQ on the inputs and outputs of every op
    ONNX Runtime has a quantised kernel for (Conv, Gemm, Concat, pools, Flatten), int32 biases,
    and ReLUs absorbed into the zero point of the quantised tensor that follows them, so each
    Conv becomes one QLinearConv and each Concat a QLinearConcat.

``openvino``
    Quantised by NNCF, OpenVINO's own quantiser (:mod:`dense_edge.calibrate.nncf_openvino`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dense_edge.catalog import (
    FLOAT_PARTS,
    PROFILE_ONNXRUNTIME,
    PROFILE_OPENVINO,
    PROFILE_TENSORRT,
    PROFILES,
    FloatParts,
    ProfileName,
)

if TYPE_CHECKING:
    import onnx

    from dense_edge.calibrate.checker import CheckReport
    from dense_edge.calibrate.collect import Statistics
    from dense_edge.calibrate.job import CalibrationJob
    from dense_edge.calibrate.methods import MethodOptions
    from dense_edge.calibrate.qdq import QuantPlan
    from dense_edge.recipe.schema import CalibrationSection

# The names are declared in the catalogue; this module implements them.
TENSORRT: Final = PROFILE_TENSORRT
ONNXRUNTIME: Final = PROFILE_ONNXRUNTIME
OPENVINO: Final = PROFILE_OPENVINO
FLOAT_CHOICES: tuple[FloatParts, ...] = FLOAT_PARTS
PLAN_FILE = "plan.json"  # a writes_plan profile's precision and traffic plan, next to its model


@dataclass(frozen=True)
class Rules:
    """One profile's Q/DQ layout: read by the writer and by the checker."""

    name: str
    activation: str  # "int8" (symmetric, zero point 0) or "uint8" (asymmetric)
    weights_per_channel: bool = True
    bias: str = "float"  # "float" or "int32"
    # Ops whose data inputs are quantised; for output_quantized profiles, also their outputs.
    quantized_ops: tuple[str, ...] = ("Conv", "Gemm")
    quantize_outputs: bool = False  # ONNX Runtime: DQ -> op -> Q units (QLinear kernels)
    absorb_relu: bool = False
    concat: str = "qlinear"  # "int8": one scale per concatenation group; "qlinear": ORT units
    pools: bool = False  # DQ in, Q out around AveragePool/MaxPool
    global_pool_input: bool = False  # quantise the GlobalAveragePool's input
    min_gemm_outputs: int = 0  # Gemms with fewer outputs stay float
    float_dtype: str = "fp32"  # type of the layers that are not quantised ("fp16" or "fp32")

    @property
    def symmetric(self) -> bool:
        return self.activation == "int8"

    @property
    def explicit(self) -> bool:
        """TensorRT-style explicit quantisation (Q/DQ on inputs), not QLinear units."""
        return not self.quantize_outputs

    def options(self) -> dict[str, str]:
        """The user-facing options of this profile (recorded next to the model)."""
        if not self.explicit:
            return {}
        return {"concat": self.concat, "float_parts": self.float_dtype}

    def record(self) -> dict[str, Any]:
        """The rules as the calibration record states them."""
        out: dict[str, Any] = {
            "activation": self.activation,
            "weights": "int8 symmetric per output channel",
            "bias": self.bias,
            "concat": self.concat if self.explicit else "quantised (QLinearConcat)",
        }
        if self.explicit:
            out |= {
                "float": self.float_dtype,
                "pools": "int8 (DQ in, Q out)",
                "global_pool_input": "int8",
                "gemm_float_below_outputs": self.min_gemm_outputs,
            }
        return out

    def write(
        self,
        model: onnx.ModelProto,
        stats: Statistics,
        opts: MethodOptions,
        exclude: set[str] | frozenset[str] = frozenset(),
    ) -> tuple[onnx.ModelProto, QuantPlan]:
        from dense_edge.calibrate.qdq import quantize_model

        return quantize_model(model, stats, self, opts, exclude)

    def check(self, model: onnx.ModelProto, where: str = "model") -> CheckReport:
        from dense_edge.calibrate.checker import check_onnx

        return check_onnx(model, self, where)


class Profile(ABC):
    """One calibration profile: how the calibrate stage writes its int8 model, and how any model
    is checked against it."""

    name: ProfileName
    model_file: str = "model.onnx"  # the int8 model's name in RUN/int8/<profile>/
    writes_plan: bool = False  # writes plan.json, the precision and traffic plan --explain prints

    def stage_inputs(self, c: CalibrationSection) -> dict[str, Any]:
        """The profile-specific recipe settings the stage's currency depends on."""
        return {"float_parts": None, "preset": None}

    def method(self, c: CalibrationSection) -> str:
        """The method the calibration record names."""
        return c.method

    def percentile(self, c: CalibrationSection) -> float | None:
        return c.percentile if c.method == "percentile" else None

    @abstractmethod
    def build(self, job: CalibrationJob, target: Path) -> dict[str, Any]:
        """Write the int8 model to ``target``; return its calibration record."""

    @abstractmethod
    def check_file(self, path: Path) -> CheckReport:
        """Judge the model at ``path`` against this profile (``UserError`` if unreadable)."""


class QdqProfile(Profile):
    """A profile whose int8 model is a Q/DQ ONNX written by :mod:`dense_edge.calibrate.qdq`."""

    def __init__(
        self,
        name: ProfileName,
        make_rules: Callable[[str], Rules],
        *,
        float_parts_matter: bool = False,
        writes_plan: bool = False,
    ):
        self.name = name
        self._make_rules = make_rules
        self.float_parts_matter = float_parts_matter  # calibration.float_parts shapes the model
        self.writes_plan = writes_plan

    def rules(self, float_dtype: str = "fp16") -> Rules:
        return self._make_rules(float_dtype)

    def stage_inputs(self, c: CalibrationSection) -> dict[str, Any]:
        return {"float_parts": c.float_parts if self.float_parts_matter else None, "preset": None}

    def build(self, job: CalibrationJob, target: Path) -> dict[str, Any]:
        from dense_edge.calibrate.qdq_profile import build

        return build(job, self, target)

    def check_file(self, path: Path) -> CheckReport:
        from dense_edge import onnxfile
        from dense_edge.calibrate.checker import check_onnx

        return check_onnx(onnxfile.load(path), self.rules(), str(path))


class NncfProfile(Profile):
    """OpenVINO's own quantiser (NNCF) writes the model as OpenVINO IR."""

    model_file = "model.xml"

    def __init__(self, name: ProfileName):
        self.name = name

    def stage_inputs(self, c: CalibrationSection) -> dict[str, Any]:
        return {"float_parts": None, "preset": c.nncf_preset}

    def method(self, c: CalibrationSection) -> str:
        return self.method_for(c.nncf_preset)

    @staticmethod
    def method_for(preset: str) -> str:
        return f"nncf ({preset})"

    def percentile(self, c: CalibrationSection) -> float | None:
        return None

    def build(self, job: CalibrationJob, target: Path) -> dict[str, Any]:
        from dense_edge.calibrate.nncf_openvino import build

        return build(job, self, target)

    def check_file(self, path: Path) -> CheckReport:
        from dense_edge.calibrate.checker import check_ir

        return check_ir(path)


def _tensorrt_rules(float_dtype: str) -> Rules:
    if float_dtype not in FLOAT_CHOICES:
        raise ValueError(f"tensorrt float parts must be one of {FLOAT_CHOICES}")
    return Rules(
        TENSORRT,
        activation="int8",
        bias="float",
        concat="int8",
        pools=True,
        global_pool_input=True,
        min_gemm_outputs=16,
        float_dtype=float_dtype,
    )


def _onnxruntime_rules(float_dtype: str) -> Rules:
    return Rules(
        ONNXRUNTIME,
        activation="uint8",
        bias="int32",
        quantized_ops=(
            "Conv",
            "Gemm",
            "Concat",
            "MaxPool",
            "AveragePool",
            "GlobalAveragePool",
            "Flatten",
        ),
        quantize_outputs=True,
        absorb_relu=True,
    )


_PROFILES: dict[str, Profile] = {
    TENSORRT: QdqProfile(TENSORRT, _tensorrt_rules, float_parts_matter=True, writes_plan=True),
    ONNXRUNTIME: QdqProfile(ONNXRUNTIME, _onnxruntime_rules),
    OPENVINO: NncfProfile(OPENVINO),
}
IR_SUFFIX = ".xml"  # an OpenVINO IR is checked as one, whatever profile is named


def get(name: str) -> Profile:
    """The profile called ``name``, or a ``UserError`` listing the names there are."""
    try:
        return _PROFILES[name]
    except KeyError:
        from dense_edge.errors import UserError

        raise UserError(
            f"unknown profile {name!r}", fix=f"choose from {', '.join(PROFILES)}"
        ) from None


def for_model_file(path: Path, name: str) -> Profile:
    """The profile to check the model at ``path`` with: an IR is NNCF's, else ``name``'s."""
    if path.suffix == IR_SUFFIX:
        return _PROFILES[OPENVINO]
    return get(name)


def rules_for(profile: str, *, float_dtype: str = "fp16") -> Rules:
    p = _PROFILES.get(profile)
    if not isinstance(p, QdqProfile):
        raise ValueError(f"no Q/DQ rules for profile {profile!r} (openvino is quantised by NNCF)")
    return p.rules(float_dtype)
