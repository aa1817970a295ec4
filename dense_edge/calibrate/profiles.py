"""Q/DQ rules per target: what each runtime builds into fast INT8 kernels.

``tensorrt`` (TensorRT 10.x and 11.x, explicit quantisation)
    Symmetric int8 everywhere (zero points 0). Weights per output channel (axis 0) as int8
    initializers behind DequantizeLinear; activations per tensor. Q/DQ sits on the *inputs* of
    Conv and Gemm, never on their outputs: TensorRT fuses DQ->Conv and the BatchNorm->ReLU->Q
    before it into one kernel. Biases stay float (TensorRT adds them in the kernel's epilogue).

    DenseNet's concatenations (``concat`` option):

    * ``float`` (default): no Q/DQ on Concat inputs. What follows a DenseNet concatenation is a
      BatchNorm (a per-channel scale and shift) and a ReLU, not a convolution, so the quantised
      point is after them, at the bottleneck convolution's input, with a scale measured on that
      layer's own normalised activations. The concatenation and the pooling run in float.
    * ``shared``: the feature maps of each dense block are quantised once, with one scale for the
      whole block, so every Concat has inputs of equal scale and TensorRT can elide it in int8
      (a quarter of the memory traffic for the quadratic term). The price is resolution: early
      and late feature maps of a block share one range. Measured on digits in the docs.

    Pooling (the stem's max-pool, the transitions' average pool) gets no Q/DQ of its own:
    TensorRT propagates quantisation through pooling where that helps.

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

from dataclasses import dataclass

PROFILES = ("tensorrt", "onnxruntime", "openvino")


@dataclass(frozen=True)
class Rules:
    name: str
    activation: str  # "int8" (symmetric, zero point 0) or "uint8" (asymmetric)
    weights_per_channel: bool = True
    bias: str = "float"  # "float" or "int32"
    # Ops whose inputs are quantised; for output_quantized profiles, also their outputs.
    quantized_ops: tuple[str, ...] = ("Conv", "Gemm")
    quantize_outputs: bool = False
    absorb_relu: bool = False
    concat: str = "float"  # tensorrt only: "float" or "shared"

    @property
    def symmetric(self) -> bool:
        return self.activation == "int8"


def rules_for(profile: str, *, concat: str = "float") -> Rules:
    if profile == "tensorrt":
        if concat not in ("float", "shared"):
            raise ValueError(
                f"tensorrt concat treatment must be 'float' or 'shared', not {concat!r}"
            )
        return Rules("tensorrt", activation="int8", bias="float", concat=concat)
    if profile == "onnxruntime":
        return Rules(
            "onnxruntime",
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
    raise ValueError(f"no Q/DQ rules for profile {profile!r} (openvino is quantised by NNCF)")
