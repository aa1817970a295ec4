"""Running the validation workers: each model in a process of its own, latency in rounds.

The parent side of :mod:`dense_edge.validate.worker`: one spec per model and round, the worker's
result read back, and every round's latency samples pooled into the first round's result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import numpy as np

from dense_edge.errors import UserError
from dense_edge.progress import bar
from dense_edge.recipe.schema import ValidateSection
from dense_edge.records import Latency
from dense_edge.validate import latency as latency_mod
from dense_edge.validate.worker import Subject, WorkerResult, WorkerSpec


def run_worker(spec: WorkerSpec) -> WorkerResult:
    """Run one worker on ``spec`` (it writes into ``spec["out"]``); its result, logits included."""
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
    result: WorkerResult = json.loads((out / "result.json").read_text())
    if (out / "logits.npy").exists():
        result["logits_file"] = str(out / "logits.npy")  # read when needed: one model at a time
    return result


def logits(result: WorkerResult) -> np.ndarray:
    """A worker's logits: cached ones handed in, else read from the file it wrote."""
    if "logits" in result:
        out: np.ndarray = result["logits"]
        return out
    out = np.load(result["logits_file"])
    return out


def merge_rounds(first: WorkerResult, later: list[WorkerResult]) -> None:
    """Pool the latency samples of every round into ``first`` and recompute the statistics
    (with no later rounds too: the wall-clock samples are only needed here)."""
    for batch, lat in first["latency"].items():
        samples, wall = list(lat["samples_ms"]), list(lat["wall_samples_ms"])
        for r in later:
            samples += r["latency"][batch]["samples_ms"]
            wall += r["latency"][batch]["wall_samples_ms"]
        stats = cast(Latency, latency_mod.summarize(
            [t / 1000.0 for t in samples], int(batch), clock=lat["clock"],
            wall_s=[t / 1000.0 for t in wall],
        ).to_dict())  # fmt: skip
        stats["samples_ms"] = samples  # the report keeps the quoted clock's samples only
        first["latency"][batch] = stats
    first["peak_rss_mib"] = max([first["peak_rss_mib"], *(r["peak_rss_mib"] for r in later)])


class Rounds:
    """Measures subjects (``{"name", "kind", "path", ...}``) on the cached split ``images``.

    Round 0 of a subject computes its logits unless ``known`` holds them; later rounds time only.
    """

    def __init__(
        self, work: Path, images: Path, v: ValidateSection, batch_sizes: list[int],
        known: dict[str, np.ndarray],
    ) -> None:  # fmt: skip
        self.work, self.images, self.v, self.batch_sizes = work, images, v, batch_sizes
        self.known = known
        self.rounds = max(1, v.rounds)
        # each round times its share of the iterations and of the time budget
        self.iterations = -(-v.iterations // self.rounds)
        self.time_budget_s = None if v.time_budget_s is None else v.time_budget_s / self.rounds
        self.results: dict[str, WorkerResult] = {}
        self.later: dict[str, list[WorkerResult]] = {}

    def measure(self, subjects: list[Subject], title: str, round_: int) -> None:
        with bar(title, len(subjects), status=True) as progress:
            for s in subjects:
                progress.update(status=s["name"])
                out = self.work / f"{s['name']}-{round_}"
                out.mkdir()
                result = run_worker(self._spec(s, out, round_))
                if round_ == 0:
                    if s["name"] in self.known:
                        result["logits"] = self.known[s["name"]]
                    self.results[s["name"]] = result
                else:
                    self.later.setdefault(s["name"], []).append(result)
                progress.advance(1)

    def _spec(self, s: Subject, out: Path, round_: int) -> WorkerSpec:
        spec: WorkerSpec = {
            "name": s["name"],
            "kind": s["kind"],
            "path": s["path"],
            "images": str(self.images),
            "out": str(out),
            "accuracy": round_ == 0 and s["name"] not in self.known,
            "batch_sizes": self.batch_sizes,
            "warmup": self.v.warmup,
            "iterations": self.iterations,
            "time_budget_s": self.time_budget_s,
        }
        if "cuda" in s:
            spec["cuda"] = s["cuda"]
        return spec

    def pool(self) -> dict[str, WorkerResult]:
        """Every subject's round-0 result with all rounds' latency pooled into it."""
        for name, result in self.results.items():
            merge_rounds(result, self.later.get(name, []))
        return self.results
