"""TensorRT build kits: what ``export --target tensorrt`` leaves where TensorRT cannot run.

A *build kit* (``RUN/kits/tensorrt-<precision>/``) holds what a device needs to build the engine
itself: the verified ONNX (the Q/DQ model for int8, checked against the tensorrt rules), the float
ONNX, ``trtexec.sh`` (the same build with NVIDIA's tool, for TensorRT 10 and 11),
``polygraphy.sh`` (the accuracy check with NVIDIA's tool), ``build_plan.json`` and a manifest with
sha256 sums. Without TensorRT here, the kit is what export leaves, and it says so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, cast

from dense_edge import bundle, onnxfile
from dense_edge.errors import UserError
from dense_edge.targets.base import KitFiles, KitManifest
from dense_edge.targets.tensorrt import device, layers
from dense_edge.targets.tensorrt.compiler import make_plan, write_kit

if TYPE_CHECKING:
    from dense_edge.recipe.schema import TargetSection

KIT_KIND = "tensorrt-kit"  # Target.kit_kind


def write(
    folder: Path,
    source: Path,
    float_onnx: Path,
    precision: str,
    input_shape: list[int],
    settings: TargetSection,
) -> KitFiles:
    """The TensorRT part of a kit: the ONNX models, trtexec/Polygraphy scripts, the build plan,
    ``validate.sh`` and a README (the evaluation set and the manifest are the caller's)."""

    dynamic = bool(onnxfile.read_manifest(source).get("dynamic", {}).get("batch", True))
    plan = make_plan(precision, input_shape, settings, dynamic_batch=dynamic)
    files, plan = write_kit(folder, source, float_onnx, plan)
    (folder / "validate.sh").write_text(VALIDATE_SH)
    (folder / "validate.sh").chmod(0o755)
    shutil.copyfile(Path(device.__file__), folder / VALIDATOR)
    shutil.copyfile(Path(layers.__file__), folder / "device_check.py")
    (folder / "device_check.sh").write_text(DEVICE_CHECK_SH)
    (folder / "device_check.sh").chmod(0o755)
    (folder / "README.txt").write_text(_readme(precision, plan.engine))
    files += ["validate.sh", VALIDATOR, "device_check.sh", "device_check.py", "README.txt"]
    return KitFiles(files, {"build_plan": plan.to_dict()})


VALIDATOR = "validate_kit.py"  # a verbatim copy of dense_edge/targets/tensorrt/device.py
VALIDATE_SH = """#!/usr/bin/env bash
# Validate this kit on the device: build (bash trtexec.sh) or load the engine, run eval/ through
# it, and write device_report.json (top-1, drop against float, agreement, cosine, GPU latency,
# versions). Needs only what JetPack ships: python3, numpy and TensorRT's Python bindings (CUDA
# through libcudart); no torch, no dense-edge, nothing to install. --runner onnxruntime checks the
# kit on ONNX Runtime where there is no GPU. PYTHON=/path/to/python3 overrides the interpreter.
# Bring the report home and add it to the run: dense-edge report merge device_report.json --run RUN
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "validate.sh: $python is not installed (JetPack ships python3)" >&2
  exit 127
fi
if ! "$python" -c 'import numpy' >/dev/null 2>&1; then
  echo "validate.sh: numpy is missing for $python: sudo apt install python3-numpy" >&2
  exit 127
fi
exec "$python" validate_kit.py --kit . "$@"
"""


DEVICE_CHECK_SH = """#!/usr/bin/env bash
# What TensorRT does with the Concats on this device: build the engine with trtexec.sh (the kit's
# flags) and --verbose --profilingVerbosity=detailed --exportLayerInfo, then count eliminated and
# copied Concats and reformat layers (device_check.py): device_check.json, trtexec_verbose.log,
# layer_info.json. Extra arguments go to trtexec. Bring device_check.json home with the report.
set -euo pipefail
cd "$(dirname "$0")"
bash trtexec.sh --verbose --profilingVerbosity=detailed --exportLayerInfo=layer_info.json \\
  --exportProfile=profile.json "$@" > trtexec_verbose.log 2>&1 || {
  tail -n 20 trtexec_verbose.log >&2
  echo "device_check.sh: trtexec failed; its log is trtexec_verbose.log" >&2
  exit 1
}
exec python3 device_check.py trtexec_verbose.log layer_info.json device_check.json
"""


def _readme(precision: str, engine: str) -> str:
    return f"""TensorRT build kit ({precision}), made by dense-edge.

On the device (TensorRT 8.6, 10.x or 11.x; trtexec on PATH or in /usr/src/tensorrt/bin):
    bash trtexec.sh          # builds {engine} with the recipe's profiles and settings
    bash polygraphy.sh       # checks {engine} against ONNX Runtime on eval/'s images (top-1)
    bash validate.sh         # runs eval/ through {engine}: device_report.json
    bash device_check.sh     # trtexec's layer report: eliminated/copied Concats, reformats
validate.sh needs only JetPack's python3, numpy and TensorRT bindings (validate_kit.py, one
file: no torch, no dense-edge, nothing to install).
Then, where the run lives:
    dense-edge report merge device_report.json --run RUN
model.onnx is what TensorRT 10.x/11.x build (strongly typed: its precision is the engine's);
model.trt86.onnx, where present, is what 8.6 builds (opset 17, float32 scales; --int8 --fp16).
build_plan.json records profiles, workspace and flags per TensorRT version.
eval/ holds validation images (never the calibration images), labels and the float model's
logits; manifest.json holds the sha256 of every file.
"""


def read_kit(folder: Path, *, verify: bool = False) -> KitManifest:
    """A kit's manifest; with ``verify``, after checking every listed file's sha256."""
    path = folder / bundle.MANIFEST
    if not path.exists():
        raise UserError("not a TensorRT build kit (no manifest.json)", path=folder)
    manifest = dict(json.loads(path.read_text()))
    if manifest.get("kind") != KIT_KIND:
        raise UserError(f"manifest kind is {manifest.get('kind')!r}, not a TensorRT kit", path=path)
    if verify:
        for name, entry in manifest.get("files", {}).items():
            f = folder / name
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise UserError(f"the kit lists a file outside it: {name}", path=path)
            if not f.exists() or bundle.sha256(f) != entry.get("sha256"):
                raise UserError(
                    f"kit file {name} is missing or does not match its sha256",
                    path=folder,
                    fix="copy the kit again (scp -r) or export it again",
                )
    return cast(KitManifest, manifest)  # a kit's, by its kind: as the kit writer wrote it
