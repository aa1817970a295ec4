"""The ``validate`` stage: every engine against the float model, accuracy and latency, one report.

The float PyTorch model and each engine bundle in ``RUN/engines/`` run on the same labelled
evaluation split (``validate.split``, never the calibration images), each in its own process
(:mod:`dense_edge.validate.worker`), timed by the same harness at every batch size of the recipe.
Budgets from the recipe (or flags) are checked; the report goes to ``RUN/report/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.errors import StageError, UserError
from dense_edge.manifest import now
from dense_edge.progress import bar, info
from dense_edge.recipe import Recipe
from dense_edge.rundir import RunDir
from dense_edge.targets import bundle
from dense_edge.validate import accuracy
from dense_edge.validate import budgets as budgets_mod

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


def evaluation_images(
    recipe: Recipe, run: RunDir
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    from dense_edge.data import Preprocess, load_splits

    manifest = json.loads((run.model / "manifest.json").read_text())
    pre = Preprocess.from_dict(manifest["preprocess"])
    v = recipe.validation
    if recipe.data.source in ("imagefolder", "cifar10") and not recipe.data.root:
        # No data configured (e.g. weights-only ImageNet): judge against the float model only.
        # Data that is configured but broken is an error, never a silent fallback.
        info("validate: no labelled data (data.root is not set); judging against float only")
        rng = np.random.default_rng(recipe.seed)
        n = v.limit or 64
        x = rng.standard_normal((n, *pre.input_shape)).astype(np.float32)
        return x, None, {"split": None, "samples": n, "source": "random inputs (no labels)"}
    splits = load_splits(recipe, pre)
    part = splits.split(v.split)
    if v.limit and len(part) > v.limit:
        part = part.subset(np.sort(np.random.default_rng(0).permutation(len(part))[: v.limit]))
    return (
        part.to_array(pre),
        part.labels.copy(),
        {
            "split": v.split,
            "samples": len(part),
            "source": splits.source,
        },
    )


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    out = Path(spec["out"])
    spec_path = out / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "DENSE_EDGE_QUIET": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "dense_edge.validate.worker", str(spec_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode == 2 and (out / "error.txt").exists():
        raise UserError((out / "error.txt").read_text())
    if proc.returncode != 0:
        raise RuntimeError(f"validation worker failed for {spec['path']}:\n{proc.stderr[-3000:]}")
    result = json.loads((out / "result.json").read_text())
    result["logits"] = np.load(out / "logits.npy")
    return result


def validate_stage(
    recipe: Recipe,
    run: RunDir,
    *,
    engines: list[str] | None = None,
    budgets: budgets_mod.Budgets | None = None,
) -> dict[str, Any]:
    from dense_edge import environment
    from dense_edge.report.write import write_reports

    if not (run.model / "manifest.json").exists():
        raise StageError(f"no model in {run.model}", fix="run dense-edge train (or run) first")
    dirs = engine_dirs(run, engines)
    if not dirs:
        raise StageError(
            f"no engines in {run.root / 'engines'}", fix="build some with dense-edge compile or run"
        )
    model_manifest = json.loads((run.model / "manifest.json").read_text())
    classes = model_manifest["classes"]
    images, labels, evaluation = evaluation_images(recipe, run)
    v = recipe.validation
    b = budgets or budgets_mod.Budgets(**v.budgets.model_dump())
    cuda = bool(environment.torch_status().get("cuda"))
    subjects: list[dict[str, Any]] = [
        {"name": REFERENCE, "kind": "pytorch", "path": str(run.model)}
    ]
    if cuda:
        subjects.append({"name": REFERENCE + "-cuda", "kind": "pytorch", "path": str(run.model),
                         "cuda": True})  # fmt: skip
    subjects += [{"name": d.name, "kind": "bundle", "path": str(d)} for d in dirs]

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="dense-edge-validate-") as tmp:
        np.save(Path(tmp) / "images.npy", images)
        with bar("validate", len(subjects), status=True) as progress:
            for s in subjects:
                progress.update(status=s["name"])
                out = Path(tmp) / s["name"]
                out.mkdir()
                results[s["name"]] = _worker({
                    **s,
                    "images": str(Path(tmp) / "images.npy"),
                    "out": str(out),
                    "batch_sizes": list(v.batch_sizes),
                    "warmup": v.warmup,
                    "iterations": v.iterations,
                    "time_budget_s": v.time_budget_s,
                })  # fmt: skip
                progress.advance(1)

    reference = results[REFERENCE]["logits"]
    entries = []
    for s in subjects:
        r = results[s["name"]]
        entry = _entry(s, r, reference, labels, classes, run)
        ref_name = REFERENCE + "-cuda" if cuda and entry.get("device_kind") == "cuda" else REFERENCE
        entry["speedup"] = {
            batch: round(results[ref_name]["latency"][batch]["p50_ms"] / lat["p50_ms"], 4)
            for batch, lat in entry["latency"].items()
        }
        entry["speedup_reference"] = ref_name
        entries.append(entry)
    violations = [
        x for e in entries if not e["name"].startswith(REFERENCE) for x in budgets_mod.check(e, b)
    ]
    report = {
        "schema": "dense-edge/report",
        "schema_version": 1,
        "created": now(),
        "recipe": recipe.name,
        "run_dir": str(run.root),
        "model": {
            "arch": model_manifest["arch"],
            "num_classes": model_manifest["num_classes"],
            "input_shape": model_manifest["input_shape"],
            "weights_sha256": model_manifest.get("weights", {}).get("sha256"),
            "test_top1_at_training": model_manifest.get("metrics", {}).get("test_top1"),
        },
        "evaluation": evaluation,
        "benchmark": {
            "batch_sizes": list(v.batch_sizes),
            "warmup": v.warmup,
            "iterations": v.iterations,
            "time_budget_s": v.time_budget_s,
        },
        "environment": environment.snapshot(),
        "reference": REFERENCE,
        "engines": entries,
        "budgets": b.to_dict(),
        "violations": violations,
        "passed": not violations,
    }
    write_reports(report, run.report)
    return report


def _entry(
    subject: dict[str, Any],
    r: dict[str, Any],
    reference: np.ndarray,
    labels: np.ndarray | None,
    classes: list[str],
    run: RunDir,
) -> dict[str, Any]:
    path = Path(subject["path"])
    if subject["kind"] == "pytorch":
        target, precision, ran = "pytorch", "fp32", "fp32"
        size = sum(f.stat().st_size for f in path.glob("weights.*"))
        device_kind = "cuda" if subject.get("cuda") else "cpu"
    else:
        m = json.loads((path / bundle.MANIFEST).read_text())
        target, precision, ran = m["target"], m["precision"], m.get("precision_run", "?")
        size = sum(int(f["bytes"]) for f in m["files"].values())
        device_kind = "cuda" if target == "tensorrt" else "cpu"
    runner = r["runner"]
    return {
        "name": subject["name"],
        "target": target,
        "precision": precision,
        "precision_run": runner.get("precision_run", ran) if target != "pytorch" else "fp32",
        "path": str(path.relative_to(run.root)) if path.is_relative_to(run.root) else str(path),
        "size_bytes": size,
        "runtime": runner.get("runtime"),
        "device": runner.get("device") or runner.get("providers"),
        "device_kind": device_kind,
        "threads": runner.get("threads"),
        "accuracy": accuracy.evaluate(r["logits"], labels, reference, classes),
        "latency": r["latency"],
        "cold_start_s": r["cold_start_s"],
        "peak_rss_mib": r["peak_rss_mib"],
    }
