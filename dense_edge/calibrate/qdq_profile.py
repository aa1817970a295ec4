"""Building a Q/DQ profile's int8 ONNX in the calibrate stage: statistics, the accuracy-aware
search, the writer, the profile's own checker, and the calibration record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from dense_edge.accuracy import AccuracyBudget
from dense_edge.calibrate.accuracy import onnx_accuracy
from dense_edge.calibrate.collect import Statistics
from dense_edge.calibrate.job import CalibrationJob
from dense_edge.calibrate.qdq import _activation_params
from dense_edge.calibrate.quantize import quantize_qdq
from dense_edge.calibrate.rules import Rules
from dense_edge.errors import UserError
from dense_edge.fileio import atomic_path, write_json
from dense_edge.progress import info
from dense_edge.records import FullCalibrationRecord


def build(
    job: CalibrationJob,
    rules: Rules,
    target: Path,
    record: FullCalibrationRecord,
    *,
    plan_file: Path | None = None,
) -> FullCalibrationRecord:
    """Write the int8 model of the profile ``rules`` describe to ``target``; return its
    calibration record, ``record`` (the fields every profile writes) completed. With
    ``plan_file``, the precision and traffic plan is written there too."""
    c = job.config
    stats = job.stats()
    model = onnx.load(str(job.onnx_path))
    record["statistics"] = {
        "key": stats.key,
        "tensors": len(stats.tensors),
        "samples": stats.samples,
        "seconds": round(stats.seconds, 2),
        "peak_rss_mib": stats.peak_rss_mib,
    }
    exclude: set[str] = set()
    if c.accuracy_aware.enabled:
        exclude, record["accuracy_aware"] = _search(job, model, stats, rules)
    quantized = quantize_qdq(
        model, stats, rules, job.opts, exclude, manifest=job.manifest, where=str(target)
    )
    qmodel, plan, report = quantized.model, quantized.plan, quantized.check
    with atomic_path(target) as tmp:
        onnx.save(qmodel, str(tmp))
    record["plan"] = plan.summary()
    record["rules"] = rules.record()
    if plan_file is not None:
        from dense_edge.calibrate.traffic import plan_record

        traffic = plan_record(qmodel, model)
        write_json(plan_file, traffic)
        record["traffic"] = {  # plan.json's totals
            "total_bytes_per_image": traffic["total_bytes_per_image"],
            "fp16_engine": traffic["fp16_engine"],
            "ratio_to_fp16_engine": traffic["ratio_to_fp16_engine"],
            "by_precision": traffic["by_precision"],
        }
    record["ranges"] = {
        t: {
            "lo": round(r.lo, 6),
            "hi": round(r.hi, 6),
            "scale": _activation_params(r, rules)[0],
            "zero_point": int(_activation_params(r, rules)[1]),
        }
        for t, r in plan.activations.items()
    }
    record["check"] = report.to_dict()
    if job.val is not None:
        record["validation"] = onnx_accuracy(model, qmodel, job.val)
    if job.debug:
        from dense_edge.calibrate.debug import compare_layers

        worst = compare_layers(model, qmodel, job.calibration.images[:8])
        record["layers"] = [e.to_dict() for e in worst]
    return record


def _search(
    job: CalibrationJob, model: onnx.ModelProto, stats: Statistics, rules: Rules
) -> tuple[set[str], dict[str, Any]]:
    from dense_edge.calibrate.sensitivity import search

    if job.val is None:
        raise UserError(
            "accuracy-aware calibration needs a labelled validation split",
            fix="point data.* at labelled data or disable calibration.accuracy_aware",
        )
    aa = job.config.accuracy_aware
    budget = AccuracyBudget(aa.max_top1_drop, aa.min_agreement)
    result = search(model, stats, rules, job.opts, job.val[0], job.val[1], budget)
    if not result.met:
        info("calibrate: the accuracy budget is not met even with every layer in float")
    return set(result.exclude), result.to_dict()
