"""The ``validate`` stage: every engine against the float model, accuracy and latency, one report.

The float PyTorch model and each engine bundle in ``RUN/engines/`` run on the same labelled
evaluation split (``validate.split``, never the calibration images), each in its own process
(:mod:`dense_edge.validate.worker`), timed by the same harness at every batch size of the recipe.
Budgets from the recipe (or flags) are checked. The stage only measures: it returns the report
of what it measured here, and the report layer (:func:`dense_edge.report.assemble.assemble`)
adds the rows it cannot measure (kits written here, device rows of the last report) and
writes it to ``RUN/report/``.

:func:`validate_stage` reads as its steps: which engines (:func:`engines_to_measure`), the
split (:func:`evaluation_split`), the measurements (:func:`measure_models`), one row per model
(:func:`measured_rows`), the report (:func:`make_report`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from dense_edge import bundle, environment
from dense_edge.accuracy import top1
from dense_edge.data.evaluation import evaluation_set
from dense_edge.environment import skipped_here
from dense_edge.errors import StageError
from dense_edge.manifest import load_manifest, now
from dense_edge.preprocess import Preprocess
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.records import (
    REPORT_SCHEMA,
    REPORT_SCHEMA_VERSION,
    EngineRow,
    Environment,
    EvaluationSummary,
    Latency,
    ModelSummary,
    ReferenceCheck,
    Report,
)
from dense_edge.rundir import RunDir
from dense_edge.targets import registry
from dense_edge.validate import accuracy, provenance, split_cache
from dense_edge.validate import budgets as budgets_mod
from dense_edge.validate import latency as latency_mod
from dense_edge.validate import measure as measure_mod
from dense_edge.validate import verdict as verdict_mod
from dense_edge.validate.split_cache import SplitCache
from dense_edge.validate.worker import Subject, WorkerResult

REFERENCE = "pytorch-fp32"


def engine_dirs(run: RunDir, names: list[str] | None = None) -> list[Path]:
    root = run.root / "engines"
    found = (
        sorted(p for p in root.glob("*") if (p / bundle.MANIFEST).exists()) if root.exists() else []
    )
    if names:
        by_name = {p.name: p for p in found}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise StageError(
                f"no engine {missing[0]!r} in {root}",
                fix="build it with dense-edge compile, or choose from "
                + (", ".join(by_name) or "(none)"),
            )
        return [by_name[n] for n in names]
    return found


def evaluation_split(recipe: Recipe, run: RunDir) -> tuple[SplitCache, EvaluationSummary]:
    """The labelled images every model is judged on (the one evaluation policy: a named split,
    never random inputs), preprocessed once into the run's cache, and the report's
    ``evaluation`` block."""
    pre = Preprocess.from_dict(load_manifest(run.model)["preprocess"])
    ev = evaluation_set(recipe, pre, limit=recipe.validation.limit, purpose="validate")
    return split_cache.prepare(run, ev), cast(EvaluationSummary, ev.describe())


def requested_engines(recipe: Recipe, engines: list[str] | None) -> list[str]:
    """Engine names the run must have: ``--engine`` names, else every target x precision this
    CPU builds (a recipe's bf16 is not built where the CPU has no bf16)."""
    if engines:
        return list(engines)
    return [f"{t.name}-{p}" for t in recipe.targets if t.name != "onnx"
            for p in skipped_here(t.name, list(t.precisions))[0]]  # fmt: skip


def validate_stage(
    recipe: Recipe,
    run: RunDir,
    *,
    engines: list[str] | None = None,
    budgets: budgets_mod.Budgets | None = None,
    kits: Collection[str] = (),
) -> Report:
    """Measure the float model, judge it, then every engine; return the report (unwritten).

    ``kits``: requested engines that exist only as device kits: not measured, not missing (the
    report layer adds their rows). The caller writes the report whatever the verdict
    (:func:`dense_edge.pipeline.validate_and_report`); the CLI turns a verdict other than
    PASSED into exit 1.
    """
    if not (run.model / "manifest.json").exists():
        raise StageError(f"no model in {run.model}", fix="run dense-edge train (or run) first")
    dirs, missing = engines_to_measure(recipe, run, engines, kits)
    load_start = provenance.load_average()
    split, evaluation = evaluation_split(recipe, run)
    v = recipe.validation
    b = budgets or budgets_mod.Budgets(**v.budgets.model_dump())
    cuda = bool(environment.torch_status().get("cuda"))
    engine_subjects: list[Subject] = [
        {"name": d.name, "kind": "bundle", "path": str(d)} for d in dirs
    ]
    measured = measure_models(
        recipe, run, split, evaluation, reference_subjects(run, cuda), engine_subjects
    )
    if measured.reference_check["status"] == "unsound":
        missing = []  # nothing is judged against an unsound reference, nor asked for
    rows = measured_rows(measured, run, cuda, b)
    machine = environment.snapshot()
    machine["load_average"] = provenance.load_record(load_start)
    return make_report(recipe, run, evaluation, machine, measured.reference_check, rows, missing, b)


def engines_to_measure(
    recipe: Recipe, run: RunDir, engines: list[str] | None, kits: Collection[str]
) -> tuple[list[Path], list[str]]:
    """The engine bundles to measure, and the requested engines that are neither built nor kits
    (``missing``). Refuses stale engines, and a run with nothing to report on."""
    present = {p.name for p in engine_dirs(run)}
    missing = [n for n in requested_engines(recipe, engines) if n not in present and n not in kits]
    dirs = engine_dirs(run, [n for n in engines if n not in kits] if engines else None)
    provenance.refuse_stale(run.root, dirs)  # a report describes the run's current engines only
    if not dirs and not kits:
        raise StageError(
            f"no engines in {run.root / 'engines'}", fix="build some with dense-edge compile or run"
        )
    return dirs, missing


def reference_subjects(run: RunDir, cuda: bool) -> list[Subject]:
    """The float model, on the CPU, and on the GPU too where there is one."""
    subjects: list[Subject] = [{"name": REFERENCE, "kind": "pytorch", "path": str(run.model)}]
    if cuda:
        subjects.append({"name": REFERENCE + "-cuda", "kind": "pytorch", "path": str(run.model),
                         "cuda": True})  # fmt: skip
    return subjects


@dataclass
class Measured:
    """What :func:`measure_models` measured: each subject's pooled result, accuracy scored."""

    subjects: list[Subject]  # the float model first; no engines when it is unsound
    results: dict[str, WorkerResult]
    reference_check: ReferenceCheck


def measure_models(
    recipe: Recipe,
    run: RunDir,
    split: SplitCache,
    evaluation: EvaluationSummary,
    references: list[Subject],
    engines: list[Subject],
) -> Measured:
    """The float model first (engines are only worth judging against a sound reference), then
    every engine; latency in interleaved rounds; every model's accuracy against the float's."""
    v = recipe.validation
    labels = split.labels()
    classes = load_manifest(run.model)["classes"]
    weights = _weights_sha256(run)
    known = {s["name"]: cached for s in references
             if (cached := split.logits(weights, s["name"])) is not None}  # fmt: skip
    if known:
        info(f"validate: the float model's logits on these {len(labels)} images are cached; "
             f"not computed again")  # fmt: skip
    with split_cache.workspace(run) as work:
        batch_sizes = sorted(set(v.batch_sizes) | {v.decision_batch})
        rounds = measure_mod.Rounds(work, split.images, v, batch_sizes, known)
        rounds.measure(references, "validate float", 0)
        for s in references:
            if s["name"] not in known:
                split.save_logits(weights, s["name"], measure_mod.logits(rounds.results[s["name"]]))
        reference = measure_mod.logits(rounds.results[REFERENCE])
        never = accuracy.classes_never_right(reference, labels, classes)
        ref_check = verdict_mod.reference_check(
            top1(reference, labels), len(classes), v.min_reference_top1, evaluation, never
        )
        if ref_check["status"] == "unsound":
            info(f"validate: {ref_check['message']}")
            engines = []
        rounds.measure(engines, "validate engines", 0)
        # Latency in interleaved rounds, every model once per round in turn: a shared machine's
        # load drifts over minutes, and pooling the rounds gives each model the same mixture.
        for k in range(1, rounds.rounds):
            rounds.measure(references + engines, f"latency round {k + 1}/{rounds.rounds}", k)
        results = rounds.pool()
        for s in references + engines:  # one model's logits in memory at a time
            r = results[s["name"]]
            r["accuracy"] = accuracy.evaluate(measure_mod.logits(r), labels, reference, classes)
    return Measured(references + engines, results, ref_check)


def measured_rows(
    measured: Measured, run: RunDir, cuda: bool, b: budgets_mod.Budgets
) -> list[EngineRow]:
    """One report row per measured model: what it is, its accuracy and latency, its speedup over
    the float model on the same device, its budgets checked (the float model has none)."""
    rows = []
    for s in measured.subjects:
        row = _row(s, measured.results[s["name"]], run)
        ref_name = REFERENCE + "-cuda" if cuda and row.get("device_kind") == "cuda" else REFERENCE
        reference = measured.results[ref_name]["latency"]
        # like for like: the wall clock on both sides (an engine's own clock leaves out the
        # Python call, or on a GPU the copies, that the float model's time includes)
        row["speedup"] = {
            batch: round(_wall_p50(reference[batch]) / _wall_p50(lat), 4)
            for batch, lat in row["latency"].items()
        }
        row["speedup_reference"] = ref_name
        row["is_reference"] = s["kind"] == "pytorch"
        if row["is_reference"]:
            row["budget_checks"], row["budget_status"] = [], "reference"
        else:
            budgets_mod.check_row(row, b)
        rows.append(row)
    return rows


def make_report(
    recipe: Recipe,
    run: RunDir,
    evaluation: EvaluationSummary,
    machine: Environment,
    ref_check: ReferenceCheck,
    rows: list[EngineRow],
    missing: list[str],
    b: budgets_mod.Budgets,
) -> Report:
    """The report of the rows measured here, its conclusions drawn from them."""
    v = recipe.validation
    targets = list(dict.fromkeys(
        [t.name for t in recipe.targets if t.name != "onnx"]
        + [e["target"] for e in rows if not e.get("is_reference")]
    ))  # fmt: skip
    decided = verdict_mod.decide(ref_check, rows, targets, v.decision_batch, missing)
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "created": now(),
        "recipe": recipe.name,
        "run_dir": str(run.root),
        "model": model_summary(run),
        "evaluation": evaluation,
        "benchmark": {
            "batch_sizes": sorted(set(v.batch_sizes) | {v.decision_batch}),
            "decision_batch": v.decision_batch,
            "warmup": v.warmup,
            "iterations": v.iterations,
            "time_budget_s": v.time_budget_s,
            "rounds": v.rounds,
            "p50_ci_level": latency_mod.CI_LEVEL,
            "p99_min_samples": latency_mod.P99_MIN_SAMPLES,
        },
        "environment": machine,
        "reference": REFERENCE,
        "reference_check": ref_check,
        "engines": rows,
        "budgets": b.to_dict(),
        "violations": decided.violations,
        "recommendations": decided.recommendations,
        "missing_engines": missing,
        "verdict": decided.verdict,
        "verdict_reasons": decided.reasons,
        "passed": decided.verdict == "PASSED",
    }


def model_summary(run: RunDir) -> ModelSummary:
    """The report's ``model`` block: what the float model is and which weights it measured."""
    m = load_manifest(run.model)
    return {
        "arch": m["arch"],
        "num_classes": m["num_classes"],
        "input_shape": m["input_shape"],
        "weights_sha256": _weights_sha256(run),
        "weights_tensor_sha256": provenance.weights_tensor_sha256(run.model),
        "training_test_top1_fraction": m.get("metrics", {}).get("test_top1"),
    }


def _weights_sha256(run: RunDir) -> str | None:
    sha: str | None = load_manifest(run.model).get("weights", {}).get("sha256")
    return sha


def _wall_p50(lat: Latency) -> float:
    wall = lat["wall_p50_ms"]
    assert wall is not None  # measured here: the harness's wall clock times every call
    return wall


def _row(subject: Subject, r: WorkerResult, run: RunDir) -> EngineRow:
    path = Path(subject["path"])
    if subject["kind"] == "pytorch":
        target, precision, ran = "pytorch", "fp32", "fp32"
        size = sum(f.stat().st_size for f in path.glob("weights.*"))
        device_kind = "cuda" if subject.get("cuda") else "cpu"
        engine_sha256 = engine_content = None
    else:
        m = bundle.read_manifest(path, verify=False)  # the worker checked the files on load
        target, precision, ran = m["target"], m["precision"], m.get("precision_run", "?")
        size = sum(int(f["bytes"]) for f in m["files"].values())
        device_kind = registry.get(target).device_kind
        seal = m.get(bundle.SEAL)
        engine_sha256 = seal if isinstance(seal, str) else None
        engine_content = provenance.engine_content_sha256(path)
    runner = r["runner"]
    return {
        "name": subject["name"],
        "status": "measured",
        "target": target,
        "precision": precision,
        "precision_run": runner.get("precision_run", ran) if target != "pytorch" else "fp32",
        "path": str(path.relative_to(run.root)) if path.is_relative_to(run.root) else str(path),
        "size_bytes": size,
        "engine_sha256": engine_sha256,
        "engine_content_sha256": engine_content,
        "runtime": runner.get("runtime"),
        "device": runner.get("device") or runner.get("providers"),
        "device_kind": device_kind,
        "threads": runner.get("threads"),
        "accuracy": r["accuracy"],
        "latency": r["latency"],
        "cold_start_s": r["cold_start_s"],
        "peak_rss_mib": r["peak_rss_mib"],
    }
