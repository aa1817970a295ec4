"""The one Q/DQ quantise path, shared by the calibrate stage
(:mod:`dense_edge.calibrate.qdq_profile`) and :func:`dense_edge.quantize`: place Q/DQ from the
profile's rules, check the result against the same rules, and carry the float model's dense-edge
manifest over, re-stamped for the int8 model.

The stage adds what only a run has around it (the accuracy-aware search that picks ``exclude``,
the file, the calibration record); the API returns the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import onnx

from dense_edge.calibrate.checker import CheckReport, check_onnx
from dense_edge.calibrate.collect import Statistics
from dense_edge.calibrate.job import int8_manifest
from dense_edge.calibrate.methods import MethodOptions
from dense_edge.calibrate.qdq import QuantPlan, quantize_model
from dense_edge.calibrate.rules import Rules
from dense_edge.export import metadata


@dataclass(frozen=True)
class Quantized:
    model: onnx.ModelProto  # the Q/DQ model, its manifest embedded when the float model had one
    plan: QuantPlan  # what was quantised and what stayed float
    check: CheckReport  # the profile's checker on it (always ok: see quantize_qdq)


def quantize_qdq(
    model: onnx.ModelProto,
    stats: Statistics,
    rules: Rules,
    opts: MethodOptions,
    exclude: set[str] | frozenset[str] = frozenset(),
    *,
    manifest: dict[str, Any] | None,
    where: str = "model",
) -> Quantized:
    """``model`` quantised by ``rules`` with ranges from ``stats``; the layers in ``exclude``
    stay float. ``manifest`` is the float model's dense-edge manifest (None: it has none, and
    the int8 model carries none either)."""
    qmodel, plan = quantize_model(model, stats, rules, opts, exclude)
    report = check_onnx(qmodel, rules, where)
    if not report.ok:  # our own output broke our own rules: a bug, not a user error
        raise RuntimeError(f"{rules.name} Q/DQ model failed its checker: {report.violations[:3]}")
    if manifest is not None:
        metadata.embed(qmodel, int8_manifest(manifest, rules.name, opts.method, plan.kept_float))
    return Quantized(qmodel, plan, report)
