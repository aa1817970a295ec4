"""The ``compile`` stage: ``RUN/engines/<target>-<precision>/``.

The source is the float ONNX (fp32; fp16 and bf16 on OpenVINO, which converts itself), the FP16
ONNX (fp16 on ONNX Runtime and TensorRT), or the target profile's INT8 model from ``calibrate``.
An engine folder that exists and was built from the same inputs is reused; one built from other
inputs is refused unless ``--force``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from dense_edge import bundle, onnxfile
from dense_edge.calibrate.nncf_openvino import read_manifest
from dense_edge.calibrate.profiles import IR_SUFFIX
from dense_edge.calibrate.stage import calibrate_stage
from dense_edge.errors import UserError
from dense_edge.export import export_stage
from dense_edge.fileio import read_json, sha256_file, write_json
from dense_edge.manifest import (
    EngineManifest,
    StageStamp,
    library_versions,
    model_fields,
    new_manifest,
)
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.recipe.schema import TargetSection
from dense_edge.rundir import RunDir
from dense_edge.stages import Stage, upstream
from dense_edge.targets import registry
from dense_edge.targets.base import Target


@dataclass
class EngineResult:
    target: str
    precision: str
    path: Path
    manifest: EngineManifest
    reused: bool
    seconds: float = 0.0


def target_settings(recipe: Recipe, target: str) -> TargetSection:
    for t in recipe.targets:
        if t.name == target:
            return t
    return TargetSection(name=target)


def source_model(recipe: Recipe, run: RunDir, target: str, precision: str) -> Path:
    """The model a target builds from, producing it (export/calibrate) if needed."""

    info_ = registry.get(target)
    if precision == "int8":
        try:
            return calibrate_stage(recipe, run, profiles=[info_.profile])[0].path
        except UserError as exc:
            if recipe.calibration.source != "data":
                raise  # already an image folder or manifest: its own error says what to fix
            if "calibration" in str(exc) or "data.root" in str(exc):
                raise UserError(
                    f"an int8 engine needs calibration images: {exc}",
                    fix="set calibration.source to an image folder, or give the recipe data",
                ) from None
            raise
    if precision == "fp16" and info_.fp16_source == "fp16-onnx":
        return export_stage(recipe, run, precision="fp16").path
    return export_stage(recipe, run, precision="fp32").path


def compile_stage(
    recipe: Recipe, run: RunDir, target: str, precision: str, *, force: bool = False
) -> EngineResult:
    t = registry.get(target)
    registry.check_precision(target, precision)
    settings = target_settings(recipe, target)
    source = source_model(recipe, run, target, precision)
    out = run.engine(target, precision)
    stage = Stage(
        f"engines/{out.name}",
        out,
        {
            "target": target,
            "precision": precision,
            "source": upstream(source.parent, "source model"),  # the stage that made it
            "settings": settings.model_dump(mode="json"),
            "runtime": library_versions().get(t.library),  # installed now: an upgrade rebuilds
        },
        record_in_manifest=True,
    )
    if stage.reusable(force=force) is not None:
        info(f"compile: reusing {out} (same source and settings; --force to rebuild)", once=True)
        return EngineResult(target, precision, out, read_json(out / bundle.MANIFEST), True)
    t0 = time.perf_counter()
    info(f"compile: {target} {precision} from {source.relative_to(run.root)}")
    with stage.build() as tmp:
        manifest = build_bundle(
            source, tmp, t, precision, settings,
            float_onnx=run.onnx_model, cache_dir=run.root / "engines",
            source_name=str(source.relative_to(run.root)), stage_record=stage.manifest_record(),
        )  # fmt: skip
    seconds = time.perf_counter() - t0
    size = sum(f["bytes"] for f in manifest["files"].values())
    info(
        f"compile: {out} ({size / 2**20:.1f} MiB, runs {manifest.get('precision_run')}) "
        f"in {seconds:.1f} s"
    )
    return EngineResult(target, precision, out, manifest, False, seconds)


def build_bundle(
    source: Path,
    tmp: Path,
    t: Target,
    precision: str,
    settings: TargetSection,
    *,
    float_onnx: Path,
    cache_dir: Path,
    source_name: str,
    stage_record: StageStamp | None = None,
) -> EngineManifest:
    """Compile ``source`` with target ``t`` into the folder ``tmp``: the engine, its sidecars and
    its sealed manifest (returned). The compile stage and the Python API both build this way."""
    source_manifest = _source_manifest(source)
    compiled = t.compile(source, tmp, precision=precision, settings=settings,
                         float_onnx=float_onnx, cache_dir=cache_dir)  # fmt: skip
    files = compiled.files + bundle.write_sidecars(
        tmp, source_manifest, compiled.sidecar_config, target=t.name, title=t.title
    )
    manifest = new_manifest(
        bundle.BUNDLE_KIND,
        **{
            **model_fields(source_manifest),
            "target": t.name,
            "precision": precision,
            **compiled.fields,
            "source": {
                "model": source_name,
                "sha256": sha256_file(source),
                "checkpoint_sha256": source_manifest.get("checkpoint_sha256"),
            },
            "files": bundle.file_table(tmp, files),
            **({"stage": stage_record} if stage_record is not None else {}),
        },
    )
    write_json(tmp / bundle.MANIFEST, bundle.seal(manifest))
    return cast(EngineManifest, dict(manifest))  # new_manifest stamps the keys passed here


def _source_manifest(source: Path) -> dict[str, Any]:
    """The manifest the source model carries: in an IR's rt_info, or in the ONNX metadata."""
    if source.suffix == IR_SUFFIX:
        return read_manifest(source)

    return onnxfile.read_manifest(source)
