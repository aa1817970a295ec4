"""``dense-edge kit validate KIT``: a device build kit proves itself on the device.

Runs the kit's evaluation set through what its target builds from the kit (for TensorRT, the
engine ``trtexec.sh`` built, or one built now) and makes a *device report*
(:mod:`dense_edge.kits.device_report`): accuracy against the labels and the float model's logits
(the project's own metric code, :func:`dense_edge.validate.accuracy.evaluate`), latency p50/p99
(device time where the runner records it) and the versions that decide what an engine is.
``dense-edge report merge`` adds it to the run's report. A target's ``kit_stand_in`` runs the same
path over the kit's model where the target cannot run: a check of the kit and of this code,
labelled as such, never a measurement.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import cast

import numpy as np

from dense_edge import bundle
from dense_edge.errors import UserError
from dense_edge.kits import device_report, evalset, seal
from dense_edge.manifest import now
from dense_edge.records import Latency
from dense_edge.targets.base import Runner, Target
from dense_edge.targets.registry import all_targets
from dense_edge.validate.accuracy import evaluate
from dense_edge.validate.latency import measure
from dense_edge.validate.worker import peak_rss_mib

_KIT_TARGETS = [t for t in all_targets() if t.writes_kits]
# A kit runs on its own target's runtime, or is checked by that target's stand-in where it cannot.
RUNNERS = [t.name for t in _KIT_TARGETS] + [
    s for s in dict.fromkeys(t.kit_stand_in for t in _KIT_TARGETS) if s is not None
]


def validate_and_write(
    kit: Path,
    out: Path | None = None,
    *,
    runner: str | None = None,
    rebuild: bool = False,
    warmup: int = 20,
    iterations: int = 1000,
) -> tuple[device_report.DeviceReport, Path]:
    """:func:`validate_kit`, then its device report written to ``out`` (default
    ``KIT/device_report.json``); (the report, where it was written)."""
    report = validate_kit(kit, runner=runner, rebuild=rebuild, warmup=warmup, iterations=iterations)
    path = device_report.write_device_report(report, out or Path(kit) / device_report.FILE)
    return report, path


def summary(report: device_report.DeviceReport) -> str:
    """One line: the device report's accuracy and its first batch size's latency."""
    acc, first = report["accuracy"], next(iter(report["latency"].values()))
    return (
        f"{report['engine']['name']}: top-1 {acc['top1_fraction']:.2%} "
        f"(top-1 drop {acc['top1_drop_points']:+.2f} points against float), "
        f"agreement {acc['agreement_fraction']:.2%}, cosine {acc['cosine']:.6f}, "
        f"p50 {first['p50_ms']:.3f} ms / p99 {_p99(first)} at batch {first['batch']} "
        f"({first['clock']}) on {report['evaluation']['samples']} images"
    )


def _p99(lat: Latency) -> str:
    p99 = lat.get("p99_ms")
    return f"{p99:.3f} ms" if p99 is not None else f"n/a (n={lat['iterations']} too small)"


def kit_target(kit: Path) -> Target:
    """The target whose kit ``kit`` is, by its manifest's kind."""
    path = kit / bundle.MANIFEST
    try:
        kind = json.loads(path.read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    for t in _KIT_TARGETS:
        if kind == t.kit_kind:
            return t
    if not path.exists():
        raise UserError("not a build kit (no manifest.json)", path=kit)
    kinds = ", ".join(t.kit_kind for t in _KIT_TARGETS)
    raise UserError(f"manifest kind is {kind!r}, not a build kit ({kinds})", path=path)


def validate_kit(
    kit: Path,
    *,
    runner: str | None = None,
    rebuild: bool = False,
    warmup: int = 20,
    iterations: int = 1000,
) -> device_report.DeviceReport:
    """Run the kit's evaluation set on this machine; the device report (not yet written).
    ``runner``: the kit's target (default) or its stand-in."""
    kit = Path(kit)
    target = kit_target(kit)
    manifest = target.read_kit(kit, verify=True)
    images, labels, float_logits, info = evalset.read(kit)
    t0 = time.perf_counter()
    run = target.kit_run(kit, manifest, runner=runner or target.name, rebuild=rebuild)
    r = run.runner
    with r:
        r.infer(images[:1])
        cold = time.perf_counter() - t0
        logits = r.infer_all(images, batch_size=run.max_batch)
        latency = {
            str(b): _latency(r, images, b, warmup, iterations)
            for b in info.get("batch_sizes", [1])
            if b <= run.max_batch
        } or {"1": _latency(r, images, 1, warmup, iterations)}
        described = r.describe()
    accuracy = evaluate(logits, labels, float_logits, manifest["classes"])
    precision = manifest["precision"]
    return {
        "schema": device_report.SCHEMA,
        "schema_version": device_report.VERSION,
        "created": now(),
        "measured_by": runner or target.name,
        "note": run.note,
        "kit": {
            "path": str(kit.resolve()),
            "name": kit.resolve().name,
            # measured from the files this run read; report merge compares it with the run's seal
            "identity": seal.identity(kit),
            "precision": precision,
            "arch": manifest.get("arch"),
            "model_sha256": run.model_sha256,
            "run": manifest.get("run", {}),
        },
        "engine": {
            "name": run.name,
            "target": run.target,
            "precision": precision,
            "precision_run": run.precision_run or described.get("precision_run", precision),
            "runtime": described.get("runtime"),
            "device": described.get("device") or described.get("providers"),
            **run.engine,
        },
        "evaluation": {
            "split": info["split"],
            "samples": info["samples"],
            "of": info["of"],
            "source": info["source"],
            "float_top1": info["float_top1"],
        },
        "accuracy": accuracy,
        "latency": latency,
        "cold_start_s": round(cold, 4),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "environment": run.environment,
    }


def _latency(
    runner: Runner, images: np.ndarray, batch: int, warmup: int, iterations: int
) -> Latency:
    """One batch size, by the runtime's own clock where it has one (``clock`` says which)."""
    stats = measure(runner, images[:batch], batch=batch, warmup=warmup, iterations=iterations,
                    show_progress=False)  # fmt: skip
    return cast(Latency, stats.to_dict())  # LatencyStats' fields are Latency's
