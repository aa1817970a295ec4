"""Does ``report compare`` with the README's CI defaults fail on regressions and not on noise?

    python bench/gate_noise.py --run runs/digits [--validations 5]
    python bench/gate_noise.py --recipe bench/gate_deep.yaml --run runs/gate-deep

Copies a finished run (train + engines, e.g. from ``dense-edge run``; the digits quick start
unless ``--recipe`` names the recipe it was made with), then, with exactly what the CLI runs
(``report compare BASE NEW`` with its defaults: engines still on the machine are timed side
by side):

1. **noise**: validates the unchanged run ``--validations`` times (each engine in its own
   process, as always) and compares every pair of reports (base earlier, new later). Target:
   zero regressions in every pair.
2. **slowdowns**: the same run with a real slowdown, each compared against every noise-run report
   (or the first ``--bases``) as the base. Target: flagged against every base.
   - ``openvino-int8`` rebuilt with 1 thread instead of the machine's 2;
   - ``onnxruntime-int8`` replaced by the fp32 engine (an fp32 engine in place of int8);
   - ``openvino-int8`` replaced by the fp32 engine;
   - ``onnxruntime-int8`` with ONNX Runtime's runtime graph optimisations switched off (its
     model was optimised offline when compiled, so this one may not be slower at all: the
     printed side-by-side ratio says whether it is).

``--burner`` keeps one core 100% busy for the whole experiment (a second process spinning;
the issue-22 acceptance: 0 false regressions in 10 pairs and every fp32-as-int8 flagged, under
that load and on an idle machine); ``--neighbour`` loads one core on and off instead.
``--slowdown LABEL`` (repeatable) runs only those slowdowns, e.g. ``--slowdown "openvino fp32
as int8"``. The CPU model and the load average are printed at the start and the end.

``--side-by-side-only N`` skips the validations and times only what ``report compare``'s
side-by-side judge times, on the run's own engines: each engine of the run against a copy of
itself N times (unchanged: target 0 flagged), then openvino-fp32 in place of openvino-int8
against openvino-int8 ``--bases`` times (target: every one flagged). Each line gives the wall
ratio and the CPU-time ratio with their 95% intervals. For a machine too busy for the full
experiment.

``--keep DIR`` keeps the run copy and every report there; ``--only-slowdowns DIR`` skips step 1
and compares against the reports a ``--keep DIR`` run wrote there (two shorter jobs instead of
one long one on a shared machine).

Prints one line per comparison (the largest side-by-side ratio, with its interval) and a
summary table.
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


def validate(run_root: Path, recipe: Any, out: Path) -> dict[str, Any]:
    """Validate the run and keep its report.json at ``out`` (report compare reads files)."""
    from dense_edge.pipeline import validate_and_report
    from dense_edge.rundir import RunDir

    report = dict(validate_and_report(recipe, RunDir.at(run_root)))
    out.write_text(json.dumps(report, default=str))
    return report


def judge(base: Path, new: Path, *, side_by_side: bool = True) -> tuple[int, str]:
    """Regressions (count, the first three) and the largest side-by-side ratio."""
    from dense_edge.report.regression import RegressionTolerance, compare_files

    result = compare_files(base, new, RegressionTolerance(), side_by_side=side_by_side)
    regs = result.regressions
    what = ", ".join(f"{r.engine} {r.metric} {r.delta}" for r in regs[:3])
    paired = [r for r in result.rows if "side by side" in r.metric]
    largest = max(paired, key=lambda r: float(r.delta.split("%")[0]), default=None)
    if largest is not None and "slower by the wall clock only" in largest.delta:
        what = (what + "; " if what else "") + "wall-only slowdown not judged"
    most = f"largest {largest.engine} {largest.delta}" if largest else "nothing timed side by side"
    return len(regs), (what + "; " if what else "") + most


def neighbour(stop: Any) -> None:
    """A noisy neighbour: one core busy for 1-4 s, then idle for 1-4 s, until ``stop`` is set."""
    import random
    import time

    rng = random.Random(0)
    while not stop.is_set():
        end = time.perf_counter() + rng.uniform(1, 4)
        while time.perf_counter() < end and not stop.is_set():
            sum(i * i for i in range(10_000))
        stop.wait(rng.uniform(1, 4))


def burner(stop: Any) -> None:
    """A neighbour that keeps one core busy until ``stop`` is set."""
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def machine(when: str) -> str:
    import platform

    model = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                         model)  # fmt: skip
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{when}: CPU {model}, {os.cpu_count()} logical cores, load average {load}"


def side_by_side_only(run: Path, repeats: int, bases: int) -> None:
    """The side-by-side judge alone: unchanged engines against copies of themselves, then
    openvino fp32 in place of int8."""
    from dense_edge.report.regression import RegressionTolerance, _paired_row
    from dense_edge.validate.side_by_side import DEFAULT_ROUNDS, Pair, time_pairs

    engines = run / "engines"
    names = sorted(p.name for p in engines.iterdir() if (p / "manifest.json").is_file())
    tol = RegressionTolerance()
    with tempfile.TemporaryDirectory() as tmp:
        copies = {}
        for name in names:
            copies[name] = Path(tmp) / name
            shutil.copytree(engines / name, copies[name])
        noise = flagged = 0
        print(f"\nunchanged engines, each against a copy of itself ({DEFAULT_ROUNDS} rounds)")
        for k in range(repeats):
            for name in names:
                if name == "openvino-fp32":
                    continue
                (t,) = time_pairs([Pair(name, engines / name, copies[name])], [1])
                row = _paired_row(t, tol)
                noise += 1
                flagged += row.status == "REGRESSION"
                print(f"  {k + 1}: {name}: {row.status}: {row.delta}", flush=True)
        slow = hits = 0
        if "openvino-fp32" in names and "openvino-int8" in names:
            print("\nopenvino-fp32 in place of openvino-int8")
            for k in range(bases):
                (t,) = time_pairs([Pair("openvino-int8", engines / "openvino-int8",
                                        copies["openvino-fp32"])], [1])  # fmt: skip
                row = _paired_row(t, tol)
                slow += 1
                hits += row.status == "REGRESSION"
                print(f"  {k + 1}: {row.status}: {row.delta}", flush=True)
    print(
        f"\nunchanged, side by side: {flagged} of {noise} flagged (target 0); "
        f"openvino fp32 as int8: {hits} of {slow} flagged (target all)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True, help="a finished run folder")
    ap.add_argument("--recipe", type=Path, help="its recipe (default: the digits quick start)")
    ap.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the recipe overrides the run was made with (e.g. train.epochs=2)",
    )
    ap.add_argument("--validations", type=int, default=5)
    ap.add_argument("--bases", type=int, help="slowdowns against the first N reports (all)")
    ap.add_argument("--keep", type=Path, help="keep the run copy and every report.json here")
    ap.add_argument("--only-slowdowns", type=Path, help="reuse the unchanged run kept here")
    ap.add_argument("--only-noise", action="store_true", help="stop after experiment 1")
    ap.add_argument("--burner", action="store_true", help="one core kept busy throughout")
    ap.add_argument("--side-by-side-only", type=int, metavar="N",
                    help="only the side-by-side judge: each engine against a copy of itself "
                    "N times, then openvino fp32 as int8 --bases times")  # fmt: skip
    ap.add_argument("--slowdown", dest="slowdowns", action="append", default=[],
                    help="run only this slowdown (repeatable; default: all)")  # fmt: skip
    ap.add_argument(
        "--neighbour",
        action="store_true",
        help="run everything beside a process that loads one core on and off",
    )
    a = ap.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    import yaml

    from dense_edge import bundle
    from dense_edge.cli.options import with_target
    from dense_edge.compile.stage import compile_stage
    from dense_edge.recipe import load_recipe
    from dense_edge.report.regression import RegressionTolerance
    from dense_edge.rundir import RunDir
    from dense_edge.validate.side_by_side import BURST_S, DEFAULT_ROUNDS

    recipe = load_recipe(a.recipe, {k: yaml.safe_load(v) for k, _, v in
                                    (item.partition("=") for item in a.sets)})  # fmt: skip
    t = RegressionTolerance()
    print(f"defaults: top1={t.top1_points} points, agreement={t.agreement}, "
          f"paired={t.paired_pct:g}% (side by side: {DEFAULT_ROUNDS} rounds of {BURST_S} s "
          f"bursts), size={t.size_pct:g}%; validate: {recipe.validation.iterations} iterations "
          f"or {recipe.validation.time_budget_s} s per batch size in "
          f"{recipe.validation.rounds} interleaved rounds, batches "
          f"{recipe.validation.batch_sizes}", flush=True)  # fmt: skip
    print(machine("start"), flush=True)
    if a.burner:
        import multiprocessing

        stop_burner = multiprocessing.Event()
        burning = multiprocessing.Process(target=burner, args=(stop_burner,), daemon=True)
        burning.start()
        print("a CPU burner keeps one core busy for the whole experiment", flush=True)
    if a.neighbour:
        import multiprocessing

        stop = multiprocessing.Event()
        noisy = multiprocessing.Process(target=neighbour, args=(stop,), daemon=True)
        noisy.start()
        print("a noisy neighbour loads one core on and off (1-4 s each)", flush=True)
    if a.side_by_side_only:
        side_by_side_only(a.run, a.side_by_side_only, a.bases or 5)
        print(machine("end"), flush=True)
        if a.burner:
            stop_burner.set()
            burning.join(timeout=5)
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = a.keep or a.only_slowdowns or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        run = tmp / "run"
        if a.only_slowdowns:
            reports = sorted(tmp.glob("v*.json"), key=lambda p: int(p.stem[1:]))
        else:
            if run.exists():
                shutil.rmtree(run)
            shutil.copytree(a.run, run, ignore=shutil.ignore_patterns("report"))
            reports = []
            for i in range(a.validations):
                reports.append(tmp / f"v{i + 1}.json")
                validate(run, recipe, reports[-1])
                print(f"  validation {i + 1}/{a.validations} done", flush=True)
        noise_pairs, noise_regs, noise_flagged, from_reports = 0, 0, 0, 0
        if not a.only_slowdowns:
            print("\nexperiment 1: unchanged run, every pair (base -> new)", flush=True)
            for i, j in itertools.combinations(range(len(reports)), 2):
                n, what = judge(reports[i], reports[j])
                noise_pairs += 1
                noise_regs += n
                noise_flagged += n > 0
                r, _ = judge(reports[i], reports[j], side_by_side=False)
                from_reports += r > 0
                print(f"  v{i + 1} -> v{j + 1}: {n} regressions; {what} "
                      f"(from the reports' numbers alone: {r})", flush=True)  # fmt: skip

        bases = reports[: a.bases] if a.bases else reports

        def slowed(label: str, change: Any) -> tuple[str, int, int, str]:
            copy = tmp / f"slow-{label.replace(' ', '-')}"
            if copy.exists():
                shutil.rmtree(copy)
            shutil.copytree(run, copy)
            change(copy)
            new = tmp / f"{label.replace(' ', '-')}.json"
            validate(copy, recipe, new)
            flagged, details = 0, ""
            for i, base in enumerate(bases):
                n, what = judge(base, new)
                flagged += n > 0
                details = details or what
                print(f"  v{i + 1} -> {label}: {n} regressions; {what}", flush=True)
            return label, flagged, len(bases), details

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

        experiments: dict[str, Any] = {
            "openvino-int8 on 1 thread": one_thread,
            "onnxruntime fp32 as int8": swap("onnxruntime"),
            "openvino fp32 as int8": swap("openvino"),
            "onnxruntime-int8 unoptimised": no_graph_optimisation,
        }
        if a.slowdowns:
            unknown = set(a.slowdowns) - set(experiments)
            if unknown:
                raise SystemExit(f"unknown slowdown(s): {sorted(unknown)}; "
                                 f"known: {sorted(experiments)}")  # fmt: skip
            experiments = {k: v for k, v in experiments.items() if k in a.slowdowns}
        if a.only_noise:
            experiments = {}
        else:
            print("\nexperiment 2: real slowdowns, against the unchanged validations", flush=True)
        outcomes = [slowed(label, change) for label, change in experiments.items()]
    print(machine("end"), flush=True)
    if a.burner:
        stop_burner.set()
        burning.join(timeout=5)
    print(f"\n{'experiment':<34}{'comparisons':>12}{'flagged':>9}  target")
    verdict = "ok" if noise_regs == 0 else f"FAILED ({noise_regs} regressions)"
    if noise_pairs:
        print(
            f"{'unchanged run, pairwise':<34}{noise_pairs:>12}{noise_flagged:>9}  none flagged: "
            f"{verdict}"
        )
        print(f"{'  the same, --reports-only':<34}{noise_pairs:>12}{from_reports:>9}")
    for label, flagged, total, details in outcomes:
        print(f"{label:<34}{total:>12}{flagged:>9}  all flagged: "
              f"{'ok' if flagged == total else 'MISSED'}  {details}")  # fmt: skip
    print(json.dumps({"noise_regressions": noise_regs, "noise_pairs": noise_pairs,
                      "slowdowns": {o[0]: f"{o[1]}/{o[2]}" for o in outcomes}}))  # fmt: skip


if __name__ == "__main__":
    main()
