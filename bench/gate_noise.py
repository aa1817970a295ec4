"""Does ``report compare`` with the README's CI defaults fail on regressions and not on noise?

    python bench/gate_noise.py --run runs/digits [--validations 5]
    python bench/gate_noise.py --recipe bench/gate_deep.yaml --run runs/gate-deep

Copies a finished run (train + engines, e.g. from ``dense-edge run``; the digits quick start
unless ``--recipe`` names the recipe it was made with), then:

1. **noise**: validates the unchanged run ``--validations`` times (the recipe's own latency
   settings, each engine in its own process as always) and compares every pair of reports with
   the default tolerances (``report compare``'s defaults, the README's CI line). Target: zero
   regressions in every pair.
2. **slowdowns**: the same run with a real slowdown, each compared against every noise-run report
   as the base. Target: flagged against every base.
   - ``openvino-int8`` rebuilt with 1 thread instead of the machine's 2;
   - ``onnxruntime-int8`` replaced by the fp32 engine (an fp32 engine in place of int8);
   - ``openvino-int8`` replaced by the fp32 engine;
   - ``onnxruntime-int8`` with ONNX Runtime's graph optimisations switched off at load.

``--only-slowdowns DIR`` skips step 1 and compares against the reports a ``--keep DIR`` run
wrote there.

Prints one line per comparison and a summary table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def validate(run_root: Path, recipe: Any) -> dict[str, Any]:
    from dense_edge.pipeline import validate_and_report
    from dense_edge.rundir import RunDir

    return dict(validate_and_report(recipe, RunDir.at(run_root)))


def judge(base: dict[str, Any], new: dict[str, Any]) -> tuple[int, str]:
    from dense_edge.report.compare import Tolerance, compare

    result = compare(base, new, Tolerance())
    regs = result.regressions
    what = ", ".join(f"{r.engine} {r.metric} {r.delta}" for r in regs[:3])
    return len(regs), what


def largest_latency_change(base: dict[str, Any], new: dict[str, Any]) -> str:
    from dense_edge.report.compare import Tolerance, compare

    rows = [r for r in compare(base, new, Tolerance()).rows if "p50" in r.metric]
    worst = max(rows, key=lambda r: float(r.delta.rstrip("%")))
    return f"{worst.engine} {worst.metric} {worst.delta}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True, help="a finished run folder")
    ap.add_argument("--recipe", type=Path, help="its recipe (default: the digits quick start)")
    ap.add_argument("--validations", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="also write every report.json into this folder")
    ap.add_argument("--only-slowdowns", type=Path, help="reuse the unchanged reports kept here")
    a = ap.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    from dense_edge.cli.options import with_target
    from dense_edge.compile.stage import compile_stage
    from dense_edge.recipe import load_recipe
    from dense_edge.report.compare import Tolerance
    from dense_edge.rundir import RunDir
    from dense_edge.targets import bundle

    recipe = load_recipe(a.recipe, {})
    t = Tolerance()
    print(f"defaults: top1={t.top1_points} points, agreement={t.agreement}, "
          f"latency={t.latency_pct:g}% (drift-corrected p50), latency_abs={t.latency_abs_pct}; "
          f"validate: {recipe.validation.iterations} iterations or "
          f"{recipe.validation.time_budget_s} s per batch size in {recipe.validation.rounds} "
          f"interleaved rounds, batches {recipe.validation.batch_sizes}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run = tmp / "run"
        shutil.copytree(a.run, run, ignore=shutil.ignore_patterns("report"))
        reports = []
        if a.keep:
            a.keep.mkdir(parents=True, exist_ok=True)
        if a.only_slowdowns:
            kept = sorted(a.only_slowdowns.glob("v*.json"))
            reports = [json.loads(p.read_text()) for p in kept]
        for i in range(0 if a.only_slowdowns else a.validations):
            reports.append(validate(run, recipe))
            if a.keep:
                a.keep.mkdir(parents=True, exist_ok=True)
                (a.keep / f"v{i + 1}.json").write_text(json.dumps(reports[-1], default=str))
            print(f"  validation {i + 1}/{a.validations} done", flush=True)
        print("\nexperiment 1: unchanged run, every pair (base -> new)")
        if a.only_slowdowns:
            print("  (reports kept in", a.only_slowdowns, ")")
        noise_pairs, noise_regs, noise_flagged = 0, 0, 0
        for i, j in itertools.permutations(range(len(reports)), 2):
            n, what = judge(reports[i], reports[j])
            noise_pairs += 1
            noise_regs += n
            noise_flagged += n > 0
            print(f"  v{i + 1} -> v{j + 1}: {n} regressions"
                  + (f" ({what})" if n else f"; largest p50 change "
                     f"{largest_latency_change(reports[i], reports[j])}"))  # fmt: skip

        def slowed(label: str, change: Any) -> tuple[str, int, int, str]:
            copy = tmp / f"slow-{label.replace(' ', '-')}"
            shutil.copytree(run, copy)
            change(copy)
            new = validate(copy, recipe)
            if a.keep:
                (a.keep / f"{label.replace(' ', '-')}.json").write_text(
                    json.dumps(new, default=str)
                )
            flagged, details = 0, ""
            for i, base in enumerate(reports):
                n, what = judge(base, new)
                flagged += n > 0
                details = details or what
                print(f"  v{i + 1} -> {label}: {n} regressions" + (f" ({what})" if n else ""))
            return label, flagged, len(reports), details

        def one_thread(root: Path) -> None:
            r1 = with_target(recipe, "openvino", threads=1)
            compile_stage(r1, RunDir.at(root), "openvino", "int8", force=True)

        def no_graph_optimisation(root: Path) -> None:
            path = root / "engines" / "onnxruntime-int8" / "manifest.json"
            manifest = json.loads(path.read_text())
            manifest["config"]["graph_optimization_runtime"] = "disable"
            # a deliberate change: sealed again, as compile would (an unsealed edit is refused)
            path.write_text(json.dumps(bundle.seal(manifest), indent=2))

        def swap(target: str) -> Any:
            def change(root: Path) -> None:
                engines = root / "engines"
                shutil.rmtree(engines / f"{target}-int8")
                shutil.copytree(engines / f"{target}-fp32", engines / f"{target}-int8")

            return change

        print("\nexperiment 2: real slowdowns, each against every unchanged validation")
        experiments = {
            "openvino-int8 on 1 thread": one_thread,
            "onnxruntime fp32 as int8": swap("onnxruntime"),
            "openvino fp32 as int8": swap("openvino"),
            "onnxruntime-int8 unoptimised": no_graph_optimisation,
        }
        outcomes = [slowed(label, change) for label, change in experiments.items()]
    print(f"\n{'experiment':<34}{'comparisons':>12}{'flagged':>9}  target")
    verdict = "ok" if noise_regs == 0 else f"FAILED ({noise_regs} regressions)"
    print(
        f"{'unchanged run, pairwise':<34}{noise_pairs:>12}{noise_flagged:>9}  none flagged: "
        f"{verdict}"
    )
    for label, flagged, total, details in outcomes:
        print(f"{label:<34}{total:>12}{flagged:>9}  all flagged: "
              f"{'ok' if flagged == total else 'MISSED'}  {details}")  # fmt: skip
    print(json.dumps({"noise_regressions": noise_regs, "noise_pairs": noise_pairs,
                      "slowdowns": {o[0]: f"{o[1]}/{o[2]}" for o in outcomes}}))  # fmt: skip


if __name__ == "__main__":
    main()
