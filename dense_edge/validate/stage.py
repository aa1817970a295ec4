"""The ``validate`` stage: every engine against the float model, accuracy and latency, one report.

The float PyTorch model and each engine bundle in ``RUN/engines/`` run on the same labelled
evaluation split (``validate.split``, never the calibration images), each in its own process
(:mod:`dense_edge.validate.worker`), timed by the same harness at every batch size of the recipe.
Budgets from the recipe (or flags) are checked. The stage returns the report; the report layer
(:func:`dense_edge.pipeline.validate_and_report`) writes it to ``RUN/report/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dense_edge import bundle, environment
from dense_edge.accuracy import top1
from dense_edge.data.evaluation import evaluation_set
from dense_edge.environment import skipped_here
from dense_edge.errors import StageError
from dense_edge.manifest import load_manifest, now
from dense_edge.preprocess import Preprocess
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.records import REPORT_SCHEMA, REPORT_SCHEMA_VERSION, Report
from dense_edge.rundir import RunDir
from dense_edge.targets import registry
from dense_edge.validate import accuracy, provenance, split_cache
from dense_edge.validate import budgets as budgets_mod
from dense_edge.validate import latency as latency_mod
from dense_edge.validate import measure as measure_mod
from dense_edge.validate import verdict as verdict_mod
from dense_edge.validate.split_cache import SplitCache

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


def evaluation_split(recipe: Recipe, run: RunDir) -> tuple[SplitCache, dict[str, Any]]:
    """The labelled images every model is judged on (the one evaluation policy: a named split,
    never random inputs), preprocessed once into the run's cache, and the report's
    ``evaluation`` block."""
    pre = Preprocess.from_dict(load_manifest(run.model)["preprocess"])
    ev = evaluation_set(recipe, pre, limit=recipe.validation.limit, purpose="validate")
    return split_cache.prepare(run, ev), ev.describe()


def requested_engines(recipe: Recipe, engines: list[str] | None) -> list[str]:
    """Engine names the run must have: ``--engine`` names, else every target x precision this
    CPU builds (a recipe's bf16 is not built where the CPU has no bf16)."""
    if engines:
        return list(engines)
    return [f"{t.name}-{p}" for t in recipe.targets if t.name != "onnx"
            for p in skipped_here(t.name, list(t.precisions))[0]]  # fmt: skip


def _kit_entry(name: str, kit: Path, run: RunDir) -> dict[str, Any]:
    target, _, precision = name.partition("-")
    path = str(kit.relative_to(run.root)) if kit.is_relative_to(run.root) else str(kit)
    return {"name": name, "target": target, "precision": precision, "status": "kit",
            "kit_path": path, "budget_status": "not built"}  # fmt: skip


def validate_stage(
    recipe: Recipe,
    run: RunDir,
    *,
    engines: list[str] | None = None,
    budgets: budgets_mod.Budgets | None = None,
    previous: Mapping[str, Any] | None = None,
) -> Report:
    """Measure the float model, judge it, then every engine; return the report (unwritten).

    The caller writes it whatever the verdict (:func:`dense_edge.pipeline.validate_and_report`);
    the CLI turns a verdict other than PASSED into exit 1. ``previous`` is the run's last report,
    if any: its device rows (``report merge``) are kept.
    """
    if not (run.model / "manifest.json").exists():
        raise StageError(f"no model in {run.model}", fix="run dense-edge train (or run) first")
    wanted = requested_engines(recipe, engines)
    present = {p.name for p in engine_dirs(run)}
    kits = {n: run.root / "kits" / n for n in wanted
            if n not in present and (run.root / "kits" / n).is_dir()}  # fmt: skip
    missing = [n for n in wanted if n not in present and n not in kits]
    dirs = engine_dirs(run, [n for n in engines if n not in kits] if engines else None)
    provenance.refuse_stale(run.root, dirs)  # a report describes the run's current engines only
    load_start = provenance.load_average()
    if not dirs and not kits:
        raise StageError(
            f"no engines in {run.root / 'engines'}", fix="build some with dense-edge compile or run"
        )
    model_manifest = load_manifest(run.model)
    classes = model_manifest["classes"]
    split, evaluation = evaluation_split(recipe, run)
    labels = split.labels()
    v = recipe.validation
    batch_sizes = sorted(set(v.batch_sizes) | {v.decision_batch})
    b = budgets or budgets_mod.Budgets(**v.budgets.model_dump())
    cuda = bool(environment.torch_status().get("cuda"))
    ref_subjects: list[dict[str, Any]] = [
        {"name": REFERENCE, "kind": "pytorch", "path": str(run.model)}
    ]
    if cuda:
        ref_subjects.append({"name": REFERENCE + "-cuda", "kind": "pytorch",
                             "path": str(run.model), "cuda": True})  # fmt: skip
    engine_subjects = [{"name": d.name, "kind": "bundle", "path": str(d)} for d in dirs]

    weights = model_manifest.get("weights", {}).get("sha256")
    known = {s["name"]: cached for s in ref_subjects
             if (cached := split.logits(weights, s["name"])) is not None}  # fmt: skip
    if known:
        info(f"validate: the float model's logits on these {len(labels)} images are cached; "
             f"not computed again")  # fmt: skip
    with split_cache.workspace(run) as work:
        rounds = measure_mod.Rounds(work, split.images, v, batch_sizes, known)
        # The float model first: engines are only worth judging against a sound reference.
        rounds.measure(ref_subjects, "validate float", 0)
        for s in ref_subjects:
            if s["name"] not in known:
                split.save_logits(weights, s["name"], measure_mod.logits(rounds.results[s["name"]]))
        reference = measure_mod.logits(rounds.results[REFERENCE])
        ref_top1 = top1(reference, labels)
        never = accuracy.classes_never_right(reference, labels, classes)
        ref_check = verdict_mod.reference_check(
            ref_top1, len(classes), v.min_reference_top1, evaluation, never
        )
        if ref_check["status"] == "unsound":
            info(f"validate: {ref_check['message']}")
            engine_subjects = []
        rounds.measure(engine_subjects, "validate engines", 0)
        # Latency in interleaved rounds, every model once per round in turn: a shared machine's
        # load drifts over minutes, and pooling the rounds gives each model the same mixture.
        for k in range(1, rounds.rounds):
            rounds.measure(
                ref_subjects + engine_subjects, f"latency round {k + 1}/{rounds.rounds}", k
            )
        results = rounds.pool()
        for s in ref_subjects + engine_subjects:  # one model's logits in memory at a time
            r = results[s["name"]]
            r["accuracy"] = accuracy.evaluate(measure_mod.logits(r), labels, reference, classes)

    entries = []
    for s in ref_subjects + engine_subjects:
        r = results[s["name"]]
        entry = _entry(s, r, run)
        ref_name = REFERENCE + "-cuda" if cuda and entry.get("device_kind") == "cuda" else REFERENCE
        # like for like: the wall clock on both sides (an engine's own clock leaves out the
        # Python call, or on a GPU the copies, that the float model's time includes)
        entry["speedup"] = {
            batch: round(results[ref_name]["latency"][batch]["wall_p50_ms"] / lat["wall_p50_ms"], 4)
            for batch, lat in entry["latency"].items()
        }
        entry["speedup_reference"] = ref_name
        entry["is_reference"] = s["kind"] == "pytorch"
        if entry["is_reference"]:
            entry["budget_checks"], entry["budget_status"] = [], "reference"
        else:
            entry["budget_checks"] = budgets_mod.checks(entry, b)
            entry["budget_status"] = budgets_mod.status(entry["budget_checks"])
        entries.append(entry)
    if ref_check["status"] != "unsound":
        entries += [_kit_entry(n, k, run) for n, k in kits.items()]
        entries = _keep_device_rows(entries, previous, weights, b)
    else:
        missing = []
    violations = [
        {"engine": e["name"], **c}
        for e in entries
        for c in e.get("budget_checks", [])
        if c["status"] != "pass"
    ]
    targets = list(dict.fromkeys(
        [t.name for t in recipe.targets if t.name != "onnx"]
        + [e["target"] for e in entries if not e.get("is_reference")]
    ))  # fmt: skip
    state, reasons = verdict_mod.verdict(ref_check, entries, missing)
    report: Report = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "created": now(),
        "recipe": recipe.name,
        "run_dir": str(run.root),
        "model": {
            "arch": model_manifest["arch"],
            "num_classes": model_manifest["num_classes"],
            "input_shape": model_manifest["input_shape"],
            "weights_sha256": model_manifest.get("weights", {}).get("sha256"),
            "weights_tensor_sha256": provenance.weights_tensor_sha256(run.model),
            "training_test_top1_fraction": model_manifest.get("metrics", {}).get("test_top1"),
        },
        "evaluation": evaluation,
        "benchmark": {
            "batch_sizes": batch_sizes,
            "decision_batch": v.decision_batch,
            "warmup": v.warmup,
            "iterations": v.iterations,
            "time_budget_s": v.time_budget_s,
            "rounds": v.rounds,
            "p50_ci_level": latency_mod.CI_LEVEL,
            "p99_min_samples": latency_mod.P99_MIN_SAMPLES,
        },
        "environment": {
            **environment.snapshot(),
            "load_average": provenance.load_record(load_start),
        },
        "reference": REFERENCE,
        "reference_check": ref_check,
        "engines": entries,
        "budgets": b.to_dict(),
        "violations": violations,
        "recommendations": verdict_mod.recommendations(
            entries, targets, v.decision_batch, ref_check
        ),
        "missing_engines": missing,
        "verdict": state,
        "verdict_reasons": reasons,
        "passed": state == "PASSED",
    }
    return report


def _keep_device_rows(
    entries: list[dict[str, Any]],
    old: Mapping[str, Any] | None,
    weights: str | None,
    b: budgets_mod.Budgets,
) -> list[dict[str, Any]]:
    """``entries`` with the device rows merged into the previous report (``report merge``).

    They were measured elsewhere and cannot be measured again here, so a new validation keeps
    them, re-checked against today's budgets, as long as they measured this same model (the
    weights' sha256); a device row takes the place of its own kit row.
    """
    if old is None or old.get("model", {}).get("weights_sha256") != weights:
        return entries
    rows = [e for e in old.get("engines", []) if isinstance(e, dict) and e.get("measured_on")]
    names = {e["name"] for e in rows}
    kept = [e for e in entries if not (e.get("status") == "kit" and e["name"] in names)]
    have = {e["name"] for e in kept}
    for e in rows:
        if e["name"] in have:
            continue
        e["budget_checks"] = budgets_mod.checks(e, b)
        e["budget_status"] = budgets_mod.status(e["budget_checks"])
        kept.append(e)
    return kept


def _entry(subject: dict[str, Any], r: dict[str, Any], run: RunDir) -> dict[str, Any]:
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
        engine_sha256 = m.get(bundle.SEAL)
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
