"""The one evaluation policy (data/evaluation.py) and the one accuracy record (accuracy.py)."""

from __future__ import annotations

import numpy as np
import pytest

from dense_edge.accuracy import AccuracyBudget, calibration_accuracy, compare_top1, judge, top1
from dense_edge.data import preprocess_for
from dense_edge.data.evaluation import evaluation_set
from dense_edge.errors import DataError
from dense_edge.recipe import load_recipe
from dense_edge.validate.budgets import Budgets, checks


def _digits(**over):  # type: ignore[no-untyped-def]
    return load_recipe(None, over)


def test_the_evaluation_set_is_the_named_labelled_split():
    recipe = _digits()
    ev = evaluation_set(recipe, preprocess_for(recipe))
    assert ev.split == recipe.validation.split == "test"
    assert ev.held_out_test and ev.warning is None
    assert len(ev.images) == len(ev.labels) > 0 and ev.images.dtype == np.float32
    assert ev.describe()["samples"] == len(ev.images)


def test_a_non_test_split_is_said_loudly(monkeypatch: pytest.MonkeyPatch):
    said: list[str] = []
    monkeypatch.setattr("dense_edge.data.evaluation.info", said.append)
    recipe = _digits(**{"validate.split": "val"})
    ev = evaluation_set(recipe, preprocess_for(recipe), purpose="validate")
    assert ev.split == "val" and not ev.held_out_test
    assert ev.warning and "not a held-out test split" in ev.warning
    assert said == [f"validate: {ev.warning}"]
    assert ev.describe()["warning"] == ev.warning  # and the report records it
    evaluation_set(recipe, preprocess_for(recipe), announce=False)
    assert len(said) == 1


def test_a_limit_takes_the_same_seeded_sample_every_time():
    recipe = _digits()
    pre = preprocess_for(recipe)
    a = evaluation_set(recipe, pre, limit=50)
    b = evaluation_set(recipe, pre, limit=50)
    full = evaluation_set(recipe, pre)
    assert len(a.images) == 50 and np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, full.images[:50])  # a sample, not the first 50


def test_never_random_inputs_without_labelled_data():
    """A recipe with no data is an error naming the fix, never a fallback to random inputs."""
    recipe = _digits(**{"data.source": "imagefolder"})
    with pytest.raises(DataError, match=r"never judges on random inputs.*--data-root"):
        evaluation_set(recipe, preprocess_for(recipe), purpose="validate")


def test_compare_top1_from_logits_or_classes():
    labels = np.array([0, 1, 2, 3])
    ref = np.eye(4)[[0, 1, 2, 0]]  # 3 of 4 right
    got = np.eye(4)[[0, 1, 1, 0]]  # 2 of 4 right, agrees with ref on 3
    c = compare_top1(ref, got, labels)
    assert (c.samples, c.agreement, c.reference_top1, c.top1) == (4, 0.75, 0.75, 0.5)
    assert c.top1_drop_points == pytest.approx(25.0)
    assert compare_top1(ref.argmax(1), got.argmax(1), labels) == c
    unlabelled = compare_top1(ref, got)
    assert unlabelled.top1 is None and unlabelled.top1_drop_points is None
    assert top1(got, labels) == 0.5
    with pytest.raises(ValueError, match="shape mismatch"):
        compare_top1(ref, got[:3])


def test_one_budget_check():
    assert judge("max_top1_drop", 1.0, 1.0) == "pass"
    assert judge("max_top1_drop", 1.0, 1.01) == "fail"
    assert judge("min_agreement", 0.99, 0.98) == "fail"
    assert judge("min_agreement", 0.99, None) == "unverified"
    c = compare_top1(np.eye(4)[[0, 1, 2, 0]], np.eye(4)[[0, 1, 1, 0]], np.array([0, 1, 2, 3]))
    assert AccuracyBudget(max_top1_drop=30, min_agreement=0.75).met(c)
    assert not AccuracyBudget(max_top1_drop=20).met(c)
    unlabelled = compare_top1(np.eye(2), np.eye(2))
    assert not AccuracyBudget(max_top1_drop=1.0).met(unlabelled)  # unmeasurable: not a pass
    assert AccuracyBudget().met(c)  # no budget set


def test_a_drop_equal_to_the_budget_passes_in_calibration_and_in_validation():
    """4 of 10 right against 1 of 10 computes as 30.000000000000004 points: at a limit of 30 it
    passes calibration's search and validation's budget check alike (one check, one slack)."""
    labels = np.arange(10)
    ref, got = np.where(labels < 4, labels, -1), np.where(labels < 1, labels, -1)
    c = compare_top1(ref, got, labels)
    assert c.top1_drop_points is not None and c.top1_drop_points > 30
    assert AccuracyBudget(max_top1_drop=30).met(c)
    assert Budgets(max_top1_drop=30).met(c)  # validation's budgets: the same, plus latency
    engine = {"accuracy": {"top1_drop_points": c.top1_drop_points}}
    assert [x["status"] for x in checks(engine, Budgets(max_top1_drop=30))] == ["pass"]
    assert not AccuracyBudget(max_top1_drop=29.99).met(c)


def test_the_calibration_accuracy_record_is_made_from_the_same_comparison():
    """What calibration.json's ``validation`` holds: the fields and rounding calibrate writes."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 300)
    ref = np.where(rng.random(300) < 0.9, labels, (labels + 1) % 10)
    got = np.where(rng.random(300) < 0.95, ref, (ref + 3) % 10)
    rec = calibration_accuracy(compare_top1(ref, got, labels), split="val", runtime="onnxruntime")
    f_top1, q_top1 = float((ref == labels).mean()), float((got == labels).mean())
    assert rec == {
        "split": "val",
        "samples": 300,
        "runtime": "onnxruntime",
        "float_top1": round(f_top1, 5),
        "int8_top1": round(q_top1, 5),
        "top1_drop_points": round((f_top1 - q_top1) * 100, 3),
        "agreement": round(float((ref == got).mean()), 5),
    }
    with pytest.raises(ValueError, match="needs labels"):
        calibration_accuracy(compare_top1(ref, got), split="val", runtime="onnxruntime")
