"""Accuracy-aware quantisation: keep the fewest layers in float that meet the budget.

1. Quantise everything; if the budget holds on the validation split, stop.
2. Measure each weighted layer's sensitivity: the whole model quantised except that layer, its
   agreement with the float model (and top-1) on the validation split.
3. Return layers to float in order of sensitivity, re-measuring the whole model each time, until
   the budget holds. The record lists every step and each layer's measured effect.

Statistics are reused throughout: only Q/DQ models are rebuilt, the float model is run once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from dense_edge.calibrate.collect import Statistics
from dense_edge.calibrate.graph import Graph, node_name
from dense_edge.calibrate.methods import MethodOptions
from dense_edge.calibrate.profiles import Rules
from dense_edge.calibrate.qdq import quantize_model
from dense_edge.progress import bar


@dataclass(frozen=True)
class Budget:
    max_top1_drop: float | None = None  # points
    min_agreement: float | None = None  # fraction

    def met(self, float_top1: float, top1: float, agreement: float) -> bool:
        ok = True
        if self.max_top1_drop is not None:
            ok &= (float_top1 - top1) * 100 <= self.max_top1_drop + 1e-9
        if self.min_agreement is not None:
            ok &= agreement >= self.min_agreement - 1e-9
        return ok


@dataclass
class SearchResult:
    exclude: list[str]
    met: bool
    float_top1: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    sensitivity: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "float_layers": self.exclude,
            "budget_met": self.met,
            "float_top1": round(self.float_top1, 5),
            "steps": self.steps,
            "sensitivity": self.sensitivity,
        }


def evaluate_onnx(model: onnx.ModelProto, images: np.ndarray, batch: int = 64) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate(
        [sess.run(None, {name: images[i : i + batch]})[0] for i in range(0, len(images), batch)]
    )


def search(
    model: onnx.ModelProto,
    stats: Statistics,
    rules: Rules,
    opts: MethodOptions,
    images: np.ndarray,
    labels: np.ndarray,
    budget: Budget,
    *,
    run: Callable[[onnx.ModelProto, np.ndarray], np.ndarray] = evaluate_onnx,
) -> SearchResult:
    reference = run(model, images)
    ref_top1 = reference.argmax(1)
    float_top1 = float((ref_top1 == labels).mean())

    def measure(exclude: set[str]) -> tuple[float, float]:
        q, _ = quantize_model(model, stats, rules, opts, exclude)
        out = run(q, images).argmax(1)
        return float((out == labels).mean()), float((out == ref_top1).mean())

    top1, agree = measure(set())
    result = SearchResult([], budget.met(float_top1, top1, agree), float_top1)
    result.steps.append({"float_layers": 0, "top1": round(top1, 5), "agreement": round(agree, 5)})
    if result.met:
        return result
    layers = [node_name(n) for n in Graph(model).weighted_nodes()]
    scores = []
    with bar("calibrate: layer sensitivity", len(layers)) as progress:
        for layer in layers:
            t, a = measure({layer})
            scores.append((a - agree, t - top1, layer))
            progress.advance()
    scores.sort(reverse=True)
    result.sensitivity = [
        {"layer": name, "agreement_gain": round(da, 5), "top1_gain_points": round(dt * 100, 3)}
        for da, dt, name in scores
    ]
    exclude: set[str] = set()
    for _, _, layer in scores:
        exclude.add(layer)
        top1, agree = measure(exclude)
        result.steps.append(
            {"float_layers": len(exclude), "added": layer, "top1": round(top1, 5),
             "agreement": round(agree, 5)}
        )  # fmt: skip
        if budget.met(float_top1, top1, agree):
            result.met = True
            break
    result.exclude = sorted(exclude, key=layers.index)
    return result
