"""Quick-start training with torch's default threads against train.threads: null (auto), under load.

python bench/train_threads.py                    # 3 rounds, 3 epochs, one busy-loop burner
python bench/train_threads.py --rounds 5 --epochs 5 --burners 2

Each round trains the digits quick start (``train.epochs`` cut to ``--epochs``) twice, in separate
processes, in alternating order: ``default`` (train.threads = every CPU, torch's own choice) and
``auto`` (train.threads: null: usable CPUs x the machine's idle share). ``--burners`` busy-loop
processes run for the whole benchmark. Printed per run: wall and CPU seconds and the threads used;
then the wall-time ratio default/auto per round and its median. CPU model and load at both ends.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train_input import cpu_model, load  # noqa: E402

CHILD = """
import json, os, resource, sys, tempfile, time
os.environ["DENSE_EDGE_QUIET"] = "1"
from dense_edge.recipe import load_recipe
from dense_edge.rundir import RunDir
from dense_edge.train.stage import train_stage
over = json.loads(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    m = train_stage(load_recipe(None, over), RunDir.at(tmp).create()).manifest
    wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
                  "threads": m["training"]["threads"]["intra_op"],
                  "top1": m["metrics"]["test_top1"]}))
"""


def train(threads: int | None, epochs: int) -> dict[str, float]:
    over = {"train.epochs": epochs, "train.threads": threads}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(over)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--burners", type=int, default=1)
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    print(f"CPU: {cpu_model()}; load average at start: {load()}")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(args.burners)]  # fmt: skip
    ratios = []
    try:
        time.sleep(2)
        for r in range(args.rounds):
            order = [("default", cpus), ("auto", None)]
            if r % 2:
                order.reverse()
            got = {name: train(threads, args.epochs) for name, threads in order}
            for name, res in got.items():
                print(f"round {r + 1} {name:>7}: wall {res['wall']:6.1f} s, "
                      f"cpu {res['cpu']:6.1f} s, {res['threads']:.0f} threads, "
                      f"test top-1 {res['top1']:.4f}")  # fmt: skip
            ratios.append(got["default"]["wall"] / got["auto"]["wall"])
            print(f"round {r + 1} wall default/auto = {ratios[-1]:.2f}")
    finally:
        for b in burners:
            b.kill()
            b.wait()
    print(f"median wall default/auto over {len(ratios)} rounds: {statistics.median(ratios):.2f}")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
