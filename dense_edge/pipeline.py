"""Whole-pipeline commands: ``export --target X`` (one engine, checked) and ``run`` (a recipe).

Each stage is reused when current, so running these again after a change redoes only what the
change touches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.accuracy import compare_top1
from dense_edge.calibrate.stage import calibrate_stage
from dense_edge.catalog import ONNX
from dense_edge.compile.stage import EngineResult, compile_stage
from dense_edge.data.evaluation import evaluation_set
from dense_edge.environment import skipped_here
from dense_edge.errors import MissingDependencyError
from dense_edge.export import export_stage
from dense_edge.kits.write import write_device_kit
from dense_edge.manifest import load_manifest
from dense_edge.preprocess import Preprocess
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.records import Report
from dense_edge.report.assemble import assemble
from dense_edge.report.write import write_reports
from dense_edge.rundir import RunDir
from dense_edge.targets.base import Runner
from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner
from dense_edge.targets.pytorch.runner import PyTorchRunner
from dense_edge.targets.registry import get, load_runner
from dense_edge.validate.budgets import Budgets
from dense_edge.validate.latency import measure


@dataclass
class EngineCheck:
    engine: str
    precision: str
    precision_run: str
    path: Path
    size_bytes: int
    top1: float | None
    agreement: float | None
    p50_ms: float | None

    def row(self) -> list[Any]:
        return [
            self.engine,
            self.precision,
            self.precision_run,
            f"{self.size_bytes / 2**20:.2f} MiB",
            None if self.top1 is None else f"{self.top1 * 100:.2f}%",  # for people: percent
            None if self.agreement is None else f"{self.agreement * 100:.2f}%",
            None if self.p50_ms is None else round(self.p50_ms, 3),
        ]


CHECK_COLUMNS = ["engine", "precision", "runs in", "size", "top-1", "agreement", "p50 ms (b1)"]


def _eval_images(
    recipe: Recipe, run: RunDir, limit: int = 1000
) -> tuple[np.ndarray, np.ndarray, str]:
    """Labelled images for the quick check: the one evaluation policy (validation's split, never
    calibration images, never random inputs)."""
    pre = Preprocess.from_dict(load_manifest(run.model)["preprocess"])
    ev = evaluation_set(recipe, pre, limit=limit, purpose="export check")
    return ev.images, ev.labels, f"{ev.split} split"


def quick_check(
    recipe: Recipe,
    run: RunDir,
    runner: Runner,
    reference: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
) -> tuple[float | None, float, float]:
    """(top-1, agreement with the float model, p50 ms at batch 1) for one runner."""
    with runner:
        logits = runner.infer_all(images, batch_size=32)
        lat = measure(runner, images[:1], batch=1, warmup=5, iterations=50, time_budget_s=3.0,
                      show_progress=False)  # fmt: skip
    vs_float = compare_top1(reference, logits, labels)
    return vs_float.top1, vs_float.agreement, lat.p50_ms


def export_target(
    recipe: Recipe, run: RunDir, target: str, precisions: list[str], *, force: bool = False
) -> list[EngineCheck]:
    """load-or-train -> ONNX -> (calibrate) -> compile -> quick parity/accuracy check."""
    built: list[tuple[str, str, Path, str, int, Runner]] = []
    if target == ONNX:
        for precision in precisions:
            result = export_stage(recipe, run, precision=precision, force=force)
            built.append(("onnx (onnxruntime)", precision, result.path, precision,
                          result.path.stat().st_size, OnnxRuntimeRunner(result.path)))  # fmt: skip
    else:
        engines, note = build_engines(recipe, run, target, precisions, force=force)
        if note:  # the kits are written; the engines could not be built here
            raise MissingDependencyError(note)
        for engine in engines:
            m = engine.manifest
            size = sum(f["bytes"] for f in m["files"].values())
            built.append((target, engine.precision, engine.path, m.get("precision_run", "?"),
                          size, load_runner(engine.path)))  # fmt: skip
    images, labels, source = _eval_images(recipe, run)
    info(f"checking {len(built)} engine(s) on {len(images)} images from the {source}")
    with PyTorchRunner(run.model) as torch_runner:
        reference = torch_runner.infer_all(images, batch_size=32)
    checks = []
    for name, precision, path, ran, size, runner in built:
        top1, agree, p50 = quick_check(recipe, run, runner, reference, images, labels)
        checks.append(EngineCheck(name, precision, ran, path, size, top1, agree, p50))
    return checks


def build_engines(
    recipe: Recipe, run: RunDir, target: str, precisions: list[str], *, force: bool = False
) -> tuple[list[EngineResult], str | None]:
    """Engines (the compile stage) where the target builds here; otherwise its device build kits
    and a note saying where they are and what to run on the device."""
    t = get(target)
    reason = t.cannot_build_here() if t.writes_kits else None
    if reason is None:
        return [compile_stage(recipe, run, target, p, force=force) for p in precisions], None
    kits = [write_device_kit(recipe, run, target, p) for p in precisions]
    for k in kits:
        info(f"{target}: wrote the build kit {k}")
    where = ", ".join(str(k) for k in kits)
    return [], (
        f"{t.title} engines were not built here ({reason}); the build kits for the device are in "
        f"{where}: on the device run {t.kit_steps}, then "
        f"`dense-edge report merge device_report.json --run {run.root}` here; or install with "
        f"{t.install_hint}"
    )


@dataclass
class RunResult:
    engines: list[Any]
    report: Report | None
    notes: list[str] = field(default_factory=list)


def validate_and_report(
    recipe: Recipe,
    run: RunDir,
    *,
    engines: list[str] | None = None,
    budgets: Budgets | None = None,
) -> Report:
    """The validate stage, then the report stage: validate returns the report of what it
    measured, the report layer adds the kit rows and the device rows of the run's last report
    (``report merge``), and this writes it (``RUN/report/report.json``, ``.md``, ``.html``)
    whatever the verdict."""
    report = assemble(recipe, run, engines=engines, budgets=budgets)
    write_reports(report, run.report)
    return report


def run_recipe(recipe: Recipe, run: RunDir, *, force: bool = False) -> RunResult:
    """Every stage of a recipe: train, export, calibrate, compile every target, validate, report."""
    from dense_edge.train.stage import train_stage  # imports torch

    train_stage(recipe, run, force=force)
    export_stage(recipe, run, force=force)
    if force:  # compile reaches calibrate without --force: redo the int8 models here
        profiles: list[str] = sorted({get(t.name).profile for t in recipe.targets
                           if t.name != ONNX and "int8" in t.precisions})  # fmt: skip
        if profiles:
            calibrate_stage(recipe, run, profiles=profiles, force=True)
    engines, notes, names = [], [], []
    for target in recipe.targets:
        if target.name == ONNX:
            for precision in target.precisions:
                export_stage(recipe, run, precision=precision, force=force)
            continue
        precisions, skipped = skipped_here(target.name, list(target.precisions))
        notes += skipped
        built, note = build_engines(recipe, run, target.name, precisions, force=force)
        engines += built
        names += [e.path.name for e in built]
        if note:
            notes.append(note)
    report = validate_and_report(recipe, run, engines=names) if names else None
    return RunResult(engines, report, notes)
