"""Q/DQ rules per profile: what each runtime builds into fast INT8 kernels.

A :class:`Rules` object is the one description of a Q/DQ profile's layout: the writer
(:mod:`dense_edge.calibrate.qdq`) places Q/DQ from it and the checker
(:mod:`dense_edge.calibrate.checker`) judges any model against it. It is plain data and imports
nothing of calibrate's, so the writer, the checker, the accuracy-aware search and the profiles
(:mod:`dense_edge.calibrate.profiles`, which dispatch to them) all import it without importing
each other. The ``openvino`` profile has no rules of ours: NNCF places its own quantisation.

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

"""

from __future__ import annotations

from dataclasses import dataclass

from dense_edge.catalog import (
    FLOAT_PARTS,
    PROFILE_ONNXRUNTIME,
    PROFILE_TENSORRT,
    PROFILES,
    FloatParts,
    ProfileName,
)
from dense_edge.errors import UserError
from dense_edge.records import RulesRecord

FLOAT_CHOICES: tuple[FloatParts, ...] = FLOAT_PARTS


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

    def record(self) -> RulesRecord:
        """The rules as the calibration record states them."""
        out: RulesRecord = {
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


def profile_named(name: str) -> ProfileName:
    """``name``, checked against the profiles the catalogue declares (a ``UserError`` listing
    them otherwise): the one refusal of an unknown profile, for the profiles and the checker."""
    for known in PROFILES:
        if name == known:
            return known
    raise UserError(f"unknown profile {name!r}", fix=f"choose from {', '.join(PROFILES)}")


def rules_for(profile: str, *, float_dtype: str = "fp16") -> Rules:
    """The rules of the Q/DQ profile called ``profile`` (``ValueError`` for any other name)."""
    make = _RULES.get(profile)
    if make is None:
        raise ValueError(f"no Q/DQ rules for profile {profile!r} (openvino is quantised by NNCF)")
    return make(float_dtype)


def _tensorrt_rules(float_dtype: str) -> Rules:
    if float_dtype not in FLOAT_CHOICES:
        raise ValueError(f"tensorrt float parts must be one of {FLOAT_CHOICES}")
    return Rules(
        PROFILE_TENSORRT,
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
        PROFILE_ONNXRUNTIME,
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


_RULES = {PROFILE_TENSORRT: _tensorrt_rules, PROFILE_ONNXRUNTIME: _onnxruntime_rules}
