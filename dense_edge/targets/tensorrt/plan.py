"""The build plan: everything about a TensorRT build that can be decided without TensorRT.

Profiles come from the recipe's ``targets`` entry. What the network is built from, and with
which flags, depends on the TensorRT version (``(major, minor)``):

- 8.6 (JetPack 6.0) and 9.x: weak typing, the only mode there. 8.6's ONNX parser reads every Q/DQ
  scale as float32 and parses opset 17 at most, so an 8.6 build takes ``model.trt86.onnx``: the
  kit's model converted to opset 17 with float32 scales and float32 float parts. int8 builds it
  with ``--int8 --fp16`` (INT8 where the Q/DQ says, FP16 for the rest, as on 10.x), fp16 the
  float model with ``--fp16``.
- 10.x: strongly typed, precision from the ONNX (the Q/DQ model, the FP16 model, the float32
  model); the weak-typing FP16 flag is deprecated there (10.12). DLA on 10.x is the exception:
  NVIDIA's own DLA recipe for 10.x is weakly typed (``--useDLACore=0 --fp16 --allowGPUFallback``;
  trtexec 10.x sets the FP16 flag itself for DLA builds), so a DLA plan keeps it.
- 11.x: strongly typed always; the precision flags no longer exist.

fp32 builds clear TF32 (on by default), so fp32 means fp32. DLA builds need static shapes
(min = opt = max), FP16 or INT8 tensors and no CUDA graph; the layers the DLA cannot run fall
back to the GPU, and the builder reports which (see ``dla_placement``).
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from dense_edge.errors import UserError

INPUT_NAME = "images"
# What runs, per precision asked (strongly typed: the ONNX's types).
PRECISION_RUN = {"int8": "int8 (+ the ONNX's float type where it has no Q/DQ)", "fp16": "fp16",
                 "fp32": "fp32 (TF32 off)"}  # fmt: skip
Version = tuple[int, ...]  # (major, minor[, patch]) of TensorRT

OLDEST = (8, 6)  # --builderOptimizationLevel and Q/DQ strong enough for DenseNet: 8.6 onwards
# NVIDIA's "Working with DLA" pages: 10.7 was the last 10.x release with DLA; "DLA was unavailable
# in TensorRT 11.0 through 11.3"; "TensorRT 11.4.0 supported DLA only on Windows on ARM"; 11.4.1
# restores it on Jetson AGX Orin with JetPack 7.2.2 or later, strongly typed.
LAST_10_DLA = (10, 7)
DLA_RETURNS = (11, 4, 1)
DLA_GATE_TEXT = (
    "NVIDIA: 10.7 was the last 10.x release with DLA; 11.0 to 11.3 have none; 11.4.0 has it only "
    "on Windows on ARM; 11.4.1+ has it on Jetson AGX Orin with JetPack 7.2.2+"
)


def dla_refusal(version: Version) -> str | None:
    """Why this TensorRT (``(major, minor[, patch])``) cannot build a DLA engine, or None."""
    v = (*version, 0, 0, 0)[:3]
    if v[:2] <= LAST_10_DLA or v >= DLA_RETURNS:
        return None
    shown = ".".join(str(p) for p in version)
    return (
        f"TensorRT {shown} cannot build for the DLA on a Jetson ({DLA_GATE_TEXT}); build this "
        "DLA kit with TensorRT 8.6-10.7 (JetPack 6) or 11.4.1+, or remove dla_core to build for "
        "the GPU"
    )


@dataclass(frozen=True)
class OptimizationProfile:
    """One optimisation profile over the batch axis (spatial size fixed)."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @classmethod
    def for_batches(cls, chw: list[int], lo: int, opt: int, hi: int) -> OptimizationProfile:
        c, h, w = chw
        return cls((lo, c, h, w), (opt, c, h, w), (hi, c, h, w))

    @property
    def max_batch(self) -> int:
        return self.max[0]

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max

    @staticmethod
    def dims(shape: tuple[int, ...]) -> str:
        return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class BuildPlan:
    precision: str  # fp32 | fp16 | int8
    onnx: str  # the model a strongly typed build takes, relative to the kit/bundle
    onnx_fp32: str  # the float32 ONNX (weakly typed FP16 builds take it with the FP16 flag)
    profile: OptimizationProfile
    workspace_mb: int
    optimization_level: int
    dla_core: int | None = None
    timing_cache: str = "timing.cache"
    engine: str = "model.engine"
    notes: list[str] = field(default_factory=list)
    # What 8.6/9.x build: opset <= 17, float32 scales and float parts (None: the models above).
    onnx_trt86: str | None = None
    # The ONNX's batch is fixed (export.dynamic_batch: false): no shape flags, no profile.
    static_input: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildPlan:
        """The plan ``to_dict`` wrote (a kit's ``build_plan.json``)."""
        p = d["profile"]
        return cls(
            precision=d["precision"],
            onnx=d["onnx"],
            onnx_fp32=d["onnx_fp32"],
            profile=OptimizationProfile(tuple(p["min"]), tuple(p["opt"]), tuple(p["max"])),
            workspace_mb=int(d["workspace_mb"]),
            optimization_level=int(d["optimization_level"]),
            dla_core=d.get("dla_core"),
            timing_cache=d.get("timing_cache", "timing.cache"),
            engine=d.get("engine", "model.engine"),
            notes=list(d.get("notes", [])),
            onnx_trt86=d.get("onnx_trt86"),
            static_input=bool(d.get("static_input", False)),
        )

    def strongly_typed(self, version: Version) -> bool:
        if version[0] >= 11:
            return True
        if version[0] == 10:
            return self.dla_core is None
        return False  # 8.6 / 9.x: weak typing

    def source_for(self, version: Version) -> str:
        if version[0] < 10 and self.onnx_trt86 is not None:
            return self.onnx_trt86
        weak_fp16 = self.precision == "fp16" and not self.strongly_typed(version)
        return self.onnx_fp32 if weak_fp16 else self.onnx

    def builder_flags(self, version: Version) -> list[str]:
        """BuilderFlag names to set for a TensorRT version."""
        flags = []
        if not self.strongly_typed(version):
            if self.precision == "int8":
                flags.append("INT8")
            if self.precision in ("fp16", "int8"):
                # int8: the layers without Q/DQ run in FP16 (as the strongly typed FP16 parts
                # do on 10.x), not FP32; the DLA runs FP16 or INT8, never FP32.
                flags.append("FP16")
            if self.dla_core is not None:
                # trtexec sets it for every DLA build; without it the Python build may pick
                # other layer precisions than trtexec.sh's engine.
                flags.append("PREFER_PRECISION_CONSTRAINTS")
        if self.dla_core is not None:
            flags.append("GPU_FALLBACK")
        return flags

    def cleared_flags(self, version: Version) -> list[str]:
        """BuilderFlag names to clear: TF32 would round fp32 inner products to 10-bit mantissas."""
        return ["TF32"] if self.precision == "fp32" else []

    def problems(self, version: Version | None = None) -> list[str]:
        """What makes this plan unbuildable (on ``version``, when given)."""
        out = []
        if self.dla_core is not None:
            if not self.profile.is_static:
                p = self.profile
                out.append(
                    f"DLA needs a static shape, but the profile spans batch {p.min[0]}..{p.max[0]}"
                    f" (opt {p.opt[0]}): set targets min_batch, opt_batch and max_batch equal"
                )
            if self.precision == "fp32":
                out.append("DLA runs FP16 or INT8 only: build fp16 or int8, or remove dla_core")
            if version is not None and (refusal := dla_refusal(version)):
                out.append(refusal)
        if version is not None and version < OLDEST:
            out.append(
                f"TensorRT {version[0]}.{version[1]} is older than 8.6, the oldest this kit "
                "supports: upgrade TensorRT (JetPack 6 ships 8.6 or 10.x)"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["profile"] = {k: list(v) for k, v in asdict(self.profile).items()}
        for key, version in (("tensorrt_8_6", (8, 6)), ("tensorrt_10", (10, 0)),
                             ("tensorrt_11", (11, 4, 1))):  # fmt: skip
            d[key] = {
                "onnx": self.source_for(version),
                "strongly_typed": self.strongly_typed(version),
                "flags": self.builder_flags(version),
                "cleared_flags": self.cleared_flags(version),
            }
        return d

    # -- NVIDIA's own tools -------------------------------------------------------------------
    def trtexec_args(self, version: Version) -> list[str]:
        """trtexec's options for a TensorRT version (without the program name)."""
        p = self.profile
        # trtexec refuses shape flags for a model whose input shape is fixed.
        shapes = [] if self.static_input else [
            f"--minShapes={INPUT_NAME}:{OptimizationProfile.dims(p.min)}",
            f"--optShapes={INPUT_NAME}:{OptimizationProfile.dims(p.opt)}",
            f"--maxShapes={INPUT_NAME}:{OptimizationProfile.dims(p.max)}",
        ]  # fmt: skip
        args = [
            f"--onnx={self.source_for(version)}",
            f"--saveEngine={self.engine}",
            *shapes,
            # A size without a suffix is MiB in every trtexec from 8.6 to 11.x.
            f"--memPoolSize=workspace:{self.workspace_mb}",
            f"--builderOptimizationLevel={self.optimization_level}",
            f"--timingCacheFile={self.timing_cache}",
        ]
        if self.strongly_typed(version) and version[0] == 10:
            args.append("--stronglyTyped")  # 11.x: always on (the option is a no-op there)
        flags = self.builder_flags(version)
        args += [f"--{f.lower()}" for f in ("INT8", "FP16") if f in flags]
        # PREFER_PRECISION_CONSTRAINTS: trtexec sets it itself for --useDLACore builds.
        if "TF32" in self.cleared_flags(version):
            args.append("--noTF32")
        if self.dla_core is not None:
            args += [f"--useDLACore={self.dla_core}", "--allowGPUFallback"]
        return args

    def trtexec_script(self) -> str:
        eight = shlex.join(self.trtexec_args((8, 6)))
        ten = shlex.join(self.trtexec_args((10, 0)))
        eleven = shlex.join(self.trtexec_args((11, 4, 1)))
        dla_gate = ""
        if self.dla_core is not None:
            dla_gate = (
                'if { [ "$major" -eq 10 ] && [ "$minor" -gt 7 ]; } || '
                '{ [ "$major" -eq 11 ] && { [ "$minor" -lt 4 ] || '
                '{ [ "$minor" -eq 4 ] && [ "$patch" -lt 1 ]; }; }; }; then\n'
                f'  fail "TensorRT $version cannot build for the DLA on a Jetson '
                f"({DLA_GATE_TEXT}). Build with TensorRT 8.6-10.7 or 11.4.1+, or rebuild the kit "
                'without dla_core."\n'
                "fi\n"
            )
        return f"""#!/usr/bin/env bash
# Build {self.engine} with NVIDIA's trtexec, with the settings dense-edge's builder uses.
# Run it in this folder on the target device. trtexec is found on PATH, then in $TENSORRT_BIN
# (default /usr/src/tensorrt/bin, where JetPack puts it); TRTEXEC=/path/to/trtexec overrides.
# The TensorRT version is read from trtexec's banner, "[TensorRT vN]", where N is
# major*1000+minor*100+patch up to 9.x (v8602 = 8.6.2) and major*10000+minor*100+patch from 10.0
# (v100300 = 10.3.0). Extra arguments are passed to trtexec (e.g. --verbose).
set -euo pipefail
cd "$(dirname "$0")"
fail() {{ echo "trtexec.sh: $*" >&2; exit 1; }}
jetpack_bin=${{TENSORRT_BIN:-/usr/src/tensorrt/bin}}
trtexec=${{TRTEXEC:-}}
if [ -z "$trtexec" ]; then
  if command -v trtexec >/dev/null 2>&1; then
    trtexec=$(command -v trtexec)
  elif [ -x "$jetpack_bin/trtexec" ]; then
    trtexec=$jetpack_bin/trtexec
  else
    echo "trtexec.sh: trtexec is not installed: not on PATH and not in $jetpack_bin." >&2
    echo "  On a Jetson: sudo apt install nvidia-tensorrt (JetPack puts trtexec in" >&2
    echo "  /usr/src/tensorrt/bin). Elsewhere: NVIDIA's TensorRT tar package (bin/trtexec) or" >&2
    echo "  the libnvinfer-bin deb. Or point TRTEXEC=/path/to/trtexec at it." >&2
    exit 127
  fi
fi
[ -x "$trtexec" ] || fail "TRTEXEC=$trtexec is not an executable file"
help=$("$trtexec" --help 2>&1) || true
if [[ $help =~ \\[TensorRT\\ v([0-9]+)\\] ]]; then
  code=${{BASH_REMATCH[1]}}
else
  fail "could not read the TensorRT version from '$trtexec --help' (expected a line like \\
'&&&& RUNNING TensorRT.trtexec [TensorRT v100300]'); is $trtexec NVIDIA's trtexec?"
fi
code=$((10#$code))
if [ "$code" -ge 100000 ]; then
  major=$((code / 10000)); minor=$((code / 100 % 100)); patch=$((code % 100))
else
  major=$((code / 1000)); minor=$((code / 100 % 10)); patch=$((code % 100))
fi
version=$major.$minor.$patch
{dla_gate}if [ "$major" -ge 11 ]; then
  args=({eleven})
elif [ "$major" -eq 10 ]; then
  args=({ten})
elif [ "$major" -eq 9 ] || {{ [ "$major" -eq 8 ] && [ "$minor" -ge 6 ]; }}; then
  args=({eight})
else
  fail "TensorRT $version is older than 8.6, the oldest this kit supports; upgrade TensorRT"
fi
echo "trtexec.sh: TensorRT $version ($trtexec)"
exec "$trtexec" "${{args[@]}}" "$@"
"""

    def polygraphy_script(self) -> str:
        tol = {"int8": ("0.3", "0.1", "2.0"), "fp16": ("0.05", "0.01", "0.5"),
               "fp32": ("1e-4", "1e-4", "0.1")}  # fmt: skip
        atol, rtol, drop = tol[self.precision]
        return f"""#!/usr/bin/env bash
# Check {self.engine} against ONNX Runtime running the float32 ONNX with NVIDIA's Polygraphy, on
# the kit's real evaluation images (eval/, through polygraphy_data.py): the logits' median error
# (tolerances for {self.precision}), then top-1 against the labels: the engine's top-1 may fall at
# most {drop} points below the float model's. Polygraphy is found on PATH or as python3 -m
# polygraphy; POLYGRAPHY=... overrides. Extra arguments go to the engine's polygraphy run.
set -euo pipefail
cd "$(dirname "$0")"
fail() {{ echo "polygraphy.sh: $*" >&2; exit 1; }}
if [ -n "${{POLYGRAPHY:-}}" ]; then
  read -r -a polygraphy <<<"$POLYGRAPHY"
elif command -v polygraphy >/dev/null 2>&1; then
  polygraphy=(polygraphy)
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import polygraphy' >/dev/null 2>&1; then
  polygraphy=(python3 -m polygraphy)
else
  echo "polygraphy.sh: Polygraphy is not installed (no polygraphy on PATH, no python3 -m" >&2
  echo "  polygraphy). Install it with: python3 -m pip install polygraphy onnxruntime" >&2
  echo "  (it also needs TensorRT's Python bindings: python3-libnvinfer on JetPack)." >&2
  exit 127
fi
[ -f {self.engine} ] || fail "no {self.engine} here: build it first with bash trtexec.sh"
[ -f eval/images.npy ] || fail "no eval/images.npy: this kit carries no evaluation set"
"${{polygraphy[@]}}" run {self.onnx_fp32} --onnxrt --data-loader-script polygraphy_data.py \\
  --save-outputs reference.json
"${{polygraphy[@]}}" run {self.engine} --model-type engine --trt \\
  --data-loader-script polygraphy_data.py --load-outputs reference.json \\
  --atol {atol} --rtol {rtol} --check-error-stat median --save-outputs engine.json "$@"
python3 polygraphy_data.py --top1 reference.json engine.json --max-drop {drop}
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
    onnx_trt86: str | None = None,
    dynamic_batch: bool = True,
) -> BuildPlan:
    """The plan, refused with every reason at once if it cannot be built on any TensorRT.
    A static-batch ONNX (``dynamic_batch`` False, exported at batch 1) gets the profile 1..1."""
    if not dynamic_batch:
        min_batch, opt_batch, max_batch = 1, 1, 1
    opt = opt_batch or min_batch
    notes = []
    if precision == "int8":
        notes.append(
            "int8: explicit quantisation (Q/DQ ONNX); strongly typed on 10.x/11.x, so layers "
            "without Q/DQ run in the ONNX's float type; on 8.6 (weak typing) the opset-17 "
            "float32-scale model.trt86.onnx with --int8 --fp16"
        )
    if precision == "fp32":
        notes.append("fp32: TF32 is cleared (--noTF32), so fp32 layers compute in fp32")
    if dla_core is not None:
        notes.append(
            "DLA: static shapes; layers the DLA cannot run fall back to the GPU (GPU_FALLBACK); "
            "not on TensorRT 10.8-11.4.0 (NVIDIA: no DLA there on Jetson)"
        )
    plan = BuildPlan(
        precision=precision,
        onnx=onnx,
        onnx_fp32=onnx_fp32,
        profile=OptimizationProfile.for_batches(input_shape, min_batch, opt, max_batch),
        workspace_mb=workspace_mb,
        optimization_level=optimization_level,
        dla_core=dla_core,
        notes=notes,
        onnx_trt86=onnx_trt86,
        static_input=not dynamic_batch,
    )
    problems = plan.problems()
    if problems:
        raise UserError(
            f"tensorrt {precision} with dla_core {dla_core}: " + "; ".join(problems),
            fix="change the recipe's targets entry for tensorrt",
        )
    return plan
