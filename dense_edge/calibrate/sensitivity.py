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
from typing import Any, TypedDict

import numpy as np
import onnx

from dense_edge.accuracy import AccuracyBudget, Top1Comparison, compare_top1, predictions, top1
from dense_edge.calibrate.accuracy import onnx_logits
from dense_edge.calibrate.collect import Statistics
from dense_edge.calibrate.graph import Graph, node_name
from dense_edge.calibrate.methods import MethodOptions
from dense_edge.calibrate.qdq import quantize_model
from dense_edge.calibrate.rules import Rules
from dense_edge.progress import bar


class _Scores(TypedDict):
    top1: float
    agreement: float  # with the float model's predictions


class _SearchStepKeys(_Scores):
    float_layers: int


class SearchStep(_SearchStepKeys, total=False):
    """One step of the search: the model with ``float_layers`` layers in float and how it
    scored; ``added`` names the layer this step put in float (absent from the all-int8 start)."""

    added: str


class LayerSensitivity(TypedDict):
    """What keeping one layer alone in float gains over the all-int8 model."""

    layer: str
    agreement_gain: float
    top1_gain_points: float


@dataclass
class SearchResult:
    exclude: list[str]
    met: bool
    float_top1: float
    steps: list[SearchStep] = field(default_factory=list)
    sensitivity: list[LayerSensitivity] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "float_layers": self.exclude,
            "budget_met": self.met,
            "float_top1": round(self.float_top1, 5),
            "steps": self.steps,
            "sensitivity": self.sensitivity,
        }


def search(
    model: onnx.ModelProto,
    stats: Statistics,
    rules: Rules,
    opts: MethodOptions,
    images: np.ndarray,
    labels: np.ndarray,
    budget: AccuracyBudget,
    *,
    run: Callable[[onnx.ModelProto, np.ndarray], np.ndarray] = onnx_logits,
) -> SearchResult:
    reference = predictions(run(model, images))
    float_top1 = top1(reference, labels)

    def measure(exclude: set[str]) -> Top1Comparison:
        q, _ = quantize_model(model, stats, rules, opts, exclude)
        return compare_top1(reference, run(q, images), labels)

    now = measure(set())
    result = SearchResult([], budget.met(now), float_top1)
    start = _scores(now)  # every layer in int8
    result.steps.append({"float_layers": 0, "top1": start["top1"], "agreement": start["agreement"]})
    if result.met:
        return result
    layers = [node_name(n) for n in Graph(model).weighted_nodes()]
    scores = []
    with bar("calibrate: layer sensitivity", len(layers)) as progress:
        for layer in layers:
            c = measure({layer})
            scores.append((c.agreement - now.agreement, _top1(c) - _top1(now), layer))
            progress.advance()
    scores.sort(reverse=True)
    result.sensitivity = [
        {"layer": name, "agreement_gain": round(da, 5), "top1_gain_points": round(dt * 100, 3)}
        for da, dt, name in scores
    ]
    exclude: set[str] = set()
    for _, _, layer in scores:
        exclude.add(layer)
        now = measure(exclude)
        result.steps.append({"float_layers": len(exclude), "added": layer, **_scores(now)})
        if budget.met(now):
            result.met = True
            break
    result.exclude = sorted(exclude, key=layers.index)
    return result


def _top1(c: Top1Comparison) -> float:
    assert c.top1 is not None  # the search always has labels
    return c.top1


def _scores(c: Top1Comparison) -> _Scores:
    return {"top1": round(_top1(c), 5), "agreement": round(c.agreement, 5)}
