"""The ``calibrate`` stage: float ONNX + calibration images -> ``RUN/int8/<profile>/``.

Statistics are collected once and cached (``RUN/int8/stats/``); each profile then derives its
ranges, writes its quantised model and ``calibration.json`` (method, samples, ranges, float
layers, validation accuracy against the float model, checker result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge import onnxfile
from dense_edge.calibrate.dataset import calibration_identity, load_calibration_set
from dense_edge.calibrate.job import CalibrationJob
from dense_edge.calibrate.methods import MethodOptions
from dense_edge.calibrate.profiles import Profile
from dense_edge.calibrate.profiles import get as get_profile
from dense_edge.data import load_splits
from dense_edge.data.identity import data_identity
from dense_edge.errors import UserError
from dense_edge.export import export_stage
from dense_edge.fileio import read_json, write_json
from dense_edge.preprocess import Preprocess
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.records import FullCalibrationRecord
from dense_edge.rundir import RunDir
from dense_edge.stages import Stage, upstream

RULES_VERSION = 2  # bump when Q/DQ placement changes, so old int8 models are redone
__all__ = ["ProfileResult", "calibrate_stage", "calibration_identity", "model_file"]


@dataclass
class ProfileResult:
    profile: str
    path: Path
    reused: bool
    record: FullCalibrationRecord


def model_file(run: RunDir, profile: str) -> Path:
    return run.int8_profile(profile) / get_profile(profile).model_file


def calibrate_stage(
    recipe: Recipe,
    run: RunDir,
    *,
    profiles: list[str] | None = None,
    force: bool = False,
    debug: bool = False,
) -> list[ProfileResult]:

    wanted = {p: get_profile(p) for p in profiles or recipe.calibration.profiles}
    onnx_path = export_stage(recipe, run).path
    images = calibration_identity(recipe)  # decodes nothing: reuse is decided without images
    stages = {name: Stage(f"int8/{name}", run.int8_profile(name), _inputs(recipe, run, p, images),
                          explain={"images": _images_settings(recipe)})
              for name, p in wanted.items()}  # fmt: skip
    results: dict[str, ProfileResult] = {}
    for name, stage in stages.items():
        if stage.reusable(force=force or debug) is not None:
            target = model_file(run, name)
            info(
                f"calibrate: reusing {target} (same model, images and method; --force to redo)",
                once=True,
            )
            record = read_json(stage.folder / "calibration.json")
            results[name] = ProfileResult(name, target, True, record)
    todo = [p for name, p in wanted.items() if name not in results]
    if todo:
        manifest = onnxfile.read_manifest(onnx_path)
        pre = Preprocess.from_dict(manifest["preprocess"])
        cal = load_calibration_set(recipe, pre)
        cal.identity = images
        if cal.skipped:
            info(
                f"calibrate: skipped {len(cal.skipped)} images it cannot use "
                f"(first: {cal.skipped[0][0]})"
            )
        c = recipe.calibration
        job = CalibrationJob(
            c,
            onnx_path,
            manifest,
            pre,
            cal,
            MethodOptions(c.method, c.percentile),
            _validation_split(recipe, pre),
            run.stats,
            debug=debug,
        )
        for p in todo:
            results[p.name] = _one_profile(job, run, p, stages[p.name])
    return [results[name] for name in wanted]


def _validation_split(recipe: Recipe, pre: Preprocess) -> tuple[np.ndarray, np.ndarray] | None:
    """Labelled images for accuracy checks: the validation split, never test or calibration."""

    try:
        splits = load_splits(recipe, pre)
    except UserError:
        return None
    val = splits.val if len(splits.val) else None
    if val is None:
        return None
    n = recipe.calibration.accuracy_aware.samples
    if len(val) > n:
        val = val.subset(np.sort(np.random.default_rng(0).permutation(len(val))[:n]))
    return val.to_array(pre), val.labels.copy()


def _inputs(recipe: Recipe, run: RunDir, profile: Profile, images: str) -> dict[str, Any]:
    c = recipe.calibration
    aa = c.accuracy_aware.model_dump(mode="json")
    return {
        "profile": profile.name,
        "rules": RULES_VERSION,
        "model": upstream(run.onnx, "ONNX model"),
        "images": images,
        "method": c.method,
        "percentile": c.percentile if c.method == "percentile" else None,
        "bins": c.bins,
        **profile.stage_inputs(c),  # float_parts, preset: None where the profile ignores them
        "accuracy_aware": aa,
        # the validation split picks float layers when accuracy-aware
        "validation_data": data_identity(recipe) if c.accuracy_aware.enabled else None,
    }


def _images_settings(recipe: Recipe) -> dict[str, Any]:
    """The recipe keys that choose the calibration images (their digest is the stage's input):
    a refusal names the ones that changed."""
    c = recipe.calibration
    keys: dict[str, Any] = {
        "calibration.source": c.source,
        "calibration.samples": c.samples,
        "calibration.seed": c.seed,
        "calibration.skip_unreadable": c.skip_unreadable,
    }
    if c.source == "data":  # drawn from the data's training split
        keys.update({f"data.{k}": v for k, v in recipe.data.model_dump(mode="json").items()})
    return keys


def _one_profile(job: CalibrationJob, run: RunDir, profile: Profile, stage: Stage) -> ProfileResult:
    target = model_file(run, profile.name)
    t0 = time.perf_counter()
    with stage.build() as tmp:
        record = profile.build(job, tmp / target.name)
        record["seconds"] = round(time.perf_counter() - t0, 2)
        write_json(tmp / "calibration.json", record)
    return ProfileResult(profile.name, target, False, record)


def _short(path: Path) -> str:
    """``int8/<profile>/model.onnx``: the part of the path inside the run directory."""
    return "/".join(path.parts[-3:])


SUMMARY_COLUMNS = [
    "profile",
    "method",
    "float layers",
    "val top-1",
    "int8 top-1",
    "agreement",
    "model",
]


def _pct(v: float | None) -> str | None:
    return None if v is None else f"{v * 100:.2f}%"


def summary_rows(results: list[ProfileResult]) -> list[list[Any]]:
    rows = []
    for r in results:
        v = r.record.get("validation", {})
        plan = r.record.get("plan", {})
        rows.append([
            r.profile,
            r.record.get("method"),
            len(plan.get("float_layers", [])),
            _pct(v.get("float_top1")),  # percentages for people, as in the report
            _pct(v.get("int8_top1")),
            _pct(v.get("agreement")),
            _short(r.path) + (" (reused)" if r.reused else ""),
        ])  # fmt: skip
    return rows
