"""The build plan: everything about a TensorRT build that can be decided without TensorRT.

Profiles come from the recipe's ``targets`` entry; the network is strongly typed (precision from
the ONNX) for Q/DQ and float32 models on 10.x and for everything on 11.x, where strong typing is
the only mode. On 10.x an FP16 build takes the float32 ONNX and the FP16 builder flag (weak
typing, TensorRT picks per layer), the way 10.x builds are usually made; 11.x has no such flag and
builds the FP16 ONNX. The plan also writes the equivalent ``trtexec`` line (one script for both
versions) and a Polygraphy command that checks the engine against ONNX Runtime.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

INPUT_NAME = "images"


@dataclass(frozen=True)
class Profile:
    """One optimisation profile over the batch axis (spatial size fixed)."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @classmethod
    def for_batches(cls, chw: list[int], lo: int, opt: int, hi: int) -> Profile:
        c, h, w = chw
        return cls((lo, c, h, w), (opt, c, h, w), (hi, c, h, w))

    @property
    def max_batch(self) -> int:
        return self.max[0]

    @staticmethod
    def dims(shape: tuple[int, ...]) -> str:
        return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class BuildPlan:
    precision: str  # fp32 | fp16 | int8
    onnx: str  # the model 11.x (and 10.x for fp32/int8) builds, relative to the kit/bundle
    onnx_fp32: str  # the float32 ONNX (10.x FP16 builds use it with the FP16 flag)
    profile: Profile
    workspace_mb: int
    optimization_level: int
    dla_core: int | None = None
    timing_cache: str = "timing.cache"
    engine: str = "model.engine"
    notes: list[str] = field(default_factory=list)

    def strongly_typed(self, major: int) -> bool:
        return major >= 11 or self.precision != "fp16"

    def source_for(self, major: int) -> str:
        return self.onnx_fp32 if self.precision == "fp16" and major < 11 else self.onnx

    def builder_flags(self, major: int) -> list[str]:
        """BuilderFlag names to set (and which exist) for a TensorRT major version."""
        flags = []
        if not self.strongly_typed(major):
            flags.append("FP16")
        if self.dla_core is not None:
            flags.append("GPU_FALLBACK")
        return flags

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["profile"] = {k: list(v) for k, v in asdict(self.profile).items()}
        d["tensorrt_10"] = {"onnx": self.source_for(10), "strongly_typed": self.strongly_typed(10),
                            "flags": self.builder_flags(10)}  # fmt: skip
        d["tensorrt_11"] = {"onnx": self.source_for(11), "strongly_typed": True,
                            "flags": self.builder_flags(11)}  # fmt: skip
        return d

    # -- NVIDIA's own tools -------------------------------------------------------------------
    def trtexec_args(self, major: int) -> list[str]:
        p = self.profile
        args = [
            "trtexec",
            f"--onnx={self.source_for(major)}",
            f"--saveEngine={self.engine}",
            f"--minShapes={INPUT_NAME}:{Profile.dims(p.min)}",
            f"--optShapes={INPUT_NAME}:{Profile.dims(p.opt)}",
            f"--maxShapes={INPUT_NAME}:{Profile.dims(p.max)}",
            f"--memPoolSize=workspace:{self.workspace_mb}M",
            f"--builderOptimizationLevel={self.optimization_level}",
            f"--timingCacheFile={self.timing_cache}",
        ]
        if major < 11:
            args.append("--stronglyTyped" if self.strongly_typed(major) else "--fp16")
        if self.dla_core is not None:
            args += [f"--useDLACore={self.dla_core}", "--allowGPUFallback"]
        return args

    def trtexec_script(self) -> str:
        ten = shlex.join(self.trtexec_args(10))
        eleven = shlex.join(self.trtexec_args(11))
        return f"""#!/usr/bin/env bash
# Build this engine with NVIDIA's trtexec (the same settings dense-edge's builder uses).
# Run it in this folder on the target device; it writes {self.engine}.
set -euo pipefail
cd "$(dirname "$0")"
major=$(trtexec --help 2>&1 | sed -n 's/.*TensorRT v\\([0-9][0-9]\\).*/\\1/p' | head -n 1)
if [ "${{major:-10}}" -ge 11 ]; then
  {eleven}
else
  {ten}
fi
"""

    def polygraphy_script(self) -> str:
        p = self.profile
        shapes = f"{INPUT_NAME}:[{','.join(str(d) for d in p.opt)}]"
        tol = {"int8": ("0.3", "0.1"), "fp16": ("0.05", "0.01"), "fp32": ("1e-4", "1e-4")}
        atol, rtol = tol[self.precision]
        return f"""#!/usr/bin/env bash
# Check the engine against ONNX Runtime running the float32 ONNX, on the same random inputs,
# with NVIDIA's Polygraphy. Tolerances are for {self.precision} (int8 differs most).
set -euo pipefail
cd "$(dirname "$0")"
polygraphy run {self.onnx_fp32} --onnxrt --input-shapes {shapes} \\
  --save-outputs reference.json --save-inputs inputs.json
polygraphy run {self.engine} --model-type engine --trt --load-inputs inputs.json \\
  --load-outputs reference.json --atol {atol} --rtol {rtol} --check-error-stat median
"""


def plan_for(
    precision: str,
    input_shape: list[int],
    *,
    min_batch: int,
    opt_batch: int | None,
    max_batch: int,
    workspace_mb: int,
    optimization_level: int,
    dla_core: int | None,
    onnx: str,
    onnx_fp32: str,
) -> BuildPlan:
    opt = opt_batch or min_batch
    notes = []
    if precision == "int8":
        notes.append(
            "int8: explicit quantisation (Q/DQ ONNX), strongly typed; layers without Q/DQ "
            "(BatchNorm, pooling, concatenation) run in the ONNX's float precision"
        )
    if dla_core is not None:
        notes.append("DLA: layers the DLA cannot run fall back to the GPU (GPU_FALLBACK)")
    return BuildPlan(
        precision=precision,
        onnx=onnx,
        onnx_fp32=onnx_fp32,
        profile=Profile.for_batches(input_shape, min_batch, opt, max_batch),
        workspace_mb=workspace_mb,
        optimization_level=optimization_level,
        dla_core=dla_core,
        notes=notes,
    )
