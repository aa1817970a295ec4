"""``dense-edge export --target tensorrt``: engines where TensorRT runs, build kits everywhere.

A *build kit* (``RUN/kits/tensorrt-<precision>/``) holds what a device needs to build the engine
itself: the verified ONNX (the Q/DQ model for int8, checked against the tensorrt rules), the float
ONNX, ``trtexec.sh`` (the same build with NVIDIA's tool, for TensorRT 10 and 11),
``polygraphy.sh`` (the accuracy check with NVIDIA's tool), ``build_plan.json`` and a manifest with
sha256 sums. Without TensorRT here, the kit is what export leaves, and it says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dense_edge.errors import MissingDependencyError, UserError
from dense_edge.fileio import atomic_dir, write_json
from dense_edge.manifest import model_fields, new_manifest
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.rundir import RunDir
from dense_edge.targets import bundle
from dense_edge.targets.tensorrt import availability, evalset
from dense_edge.targets.tensorrt.compiler import make_plan, write_kit

KIT_KIND = "tensorrt-kit"


def kit_dir(run: RunDir, precision: str) -> Path:
    return run.root / "kits" / f"tensorrt-{precision}"


def write_device_kit(recipe: Recipe, run: RunDir, precision: str) -> Path:
    from dense_edge.calibrate.checker import check_onnx
    from dense_edge.compile.stage import source_model, target_settings
    from dense_edge.export import metadata
    from dense_edge.targets import registry

    registry.check_precision("tensorrt", precision)
    source = source_model(recipe, run, "tensorrt", precision)
    if precision == "int8":
        import onnx

        report = check_onnx(onnx.load(str(source)), "tensorrt", str(source))
        if not report.ok:
            raise RuntimeError(
                f"the tensorrt Q/DQ model fails its checker: {report.violations[:3]}"
            )
    manifest = metadata.read(source)
    plan = make_plan(precision, manifest["input_shape"], target_settings(recipe, "tensorrt"))
    out = kit_dir(run, precision)
    model_manifest = json.loads((run.model / "manifest.json").read_text())
    with atomic_dir(out) as tmp:
        files = write_kit(tmp, source, run.onnx_model, plan)
        eval_files, evaluation = evalset.write(tmp, recipe, run)
        files += eval_files
        (tmp / "validate.sh").write_text(VALIDATE_SH)
        (tmp / "validate.sh").chmod(0o755)
        (tmp / "README.txt").write_text(_readme(precision, plan.engine))
        files += ["validate.sh", "README.txt"]
        write_json(
            tmp / bundle.MANIFEST,
            new_manifest(
                KIT_KIND,
                **{
                    **model_fields(manifest),
                    "target": "tensorrt",
                    "precision": precision,
                    "build_plan": plan.to_dict(),
                    "evaluation": evaluation,
                    "run": {
                        "dir": str(run.root.resolve()),
                        "weights_sha256": model_manifest.get("weights", {}).get("sha256"),
                    },
                    "files": bundle.file_table(tmp, files),
                },
            ),
        )
    return out


VALIDATE_SH = """#!/usr/bin/env bash
# Validate this kit on the device: build (or load) the engine, run eval/ through it, and write
# device_report.json (top-1, drop against float, agreement, cosine, GPU latency, versions).
# Bring the report home and add it to the run: dense-edge report merge device_report.json --run RUN
set -euo pipefail
cd "$(dirname "$0")"
if command -v dense-edge >/dev/null 2>&1; then
  exec dense-edge kit validate . "$@"
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import dense_edge' >/dev/null 2>&1; then
  exec python3 -m dense_edge kit validate . "$@"
fi
echo "validate.sh: dense-edge is not installed here. Install it with" >&2
echo "  python3 -m pip install 'dense-edge[tensorrt]'  (on JetPack: python3 -m pip install" >&2
echo "  dense-edge, with JetPack's TensorRT and NVIDIA's torch for Jetson); run this again" >&2
exit 127
"""


def _readme(precision: str, engine: str) -> str:
    return f"""TensorRT build kit ({precision}), made by dense-edge.

On the device (TensorRT 8.6, 10.x or 11.x; trtexec on PATH or in /usr/src/tensorrt/bin):
    bash trtexec.sh          # builds {engine} with the recipe's profiles and settings
    bash polygraphy.sh       # checks {engine} against ONNX Runtime on the float model
    bash validate.sh         # runs eval/ through {engine}: device_report.json
Then, where the run lives:
    dense-edge report merge device_report.json --run RUN
model.onnx is what TensorRT builds (strongly typed on 10.x/11.x: its precision is the
engine's); build_plan.json records profiles, workspace and flags per TensorRT version.
eval/ holds validation images (never the calibration images), labels and the float model's
logits; manifest.json holds the sha256 of every file.
"""


def export_tensorrt(
    recipe: Recipe, run: RunDir, precisions: list[str], *, force: bool = False
) -> tuple[list[Any], str | None]:
    """Engines (compile stage) where TensorRT and a GPU exist; otherwise kits and a note."""
    from dense_edge.compile.stage import compile_stage

    reason = _why_not_here()
    if reason is None:
        return [compile_stage(recipe, run, "tensorrt", p, force=force) for p in precisions], None
    kits = [write_device_kit(recipe, run, p) for p in precisions]
    for k in kits:
        info(f"tensorrt: wrote the build kit {k}")
    where = ", ".join(str(k) for k in kits)
    return [], (
        f"TensorRT engines were not built here ({reason}); the build kits for the device are in "
        f"{where}: on the device run `bash trtexec.sh` and `bash validate.sh`, then "
        f"`dense-edge report merge device_report.json --run {run.root}` here; or install with "
        f"{availability.INSTALL_HINT}"
    )


def _why_not_here() -> str | None:
    try:
        availability.load()
    except MissingDependencyError as exc:
        return str(exc).split(" (pip install")[0]
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return None


def read_kit(folder: Path, *, verify: bool = False) -> dict[str, Any]:
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
    return manifest
