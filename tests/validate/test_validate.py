"""Validation: every engine against the float model; budgets gate the exit code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from dense_edge.cli import cli
from dense_edge.rundir import RunDir
from dense_edge.validate.latency import median_ci_ranks, summarize
from dense_edge.validate.verdict import reference_check
from tests.conftest import DIGITS_SET


def test_latency_statistics():
    s = summarize([0.001 * i for i in range(1, 101)], batch=4)
    assert (s.p50_ms, s.min_ms, s.max_ms, s.iterations) == (50.5, 1.0, 100.0, 100)
    assert s.throughput_ips == pytest.approx(4000 / 50.5)
    # 95% CI of the median of 100 samples: the 40th and 61st order statistics (1-based)
    assert (s.p50_ci_low_ms, s.p50_ci_high_ms) == (40.0, 61.0)
    assert s.p99_ms is None  # 100 samples say nothing about a p99
    big = summarize([0.001 * i for i in range(1, 1001)], batch=1)
    assert big.p99_ms == pytest.approx(990.01)
    assert big.p50_ci_low_ms < big.p50_ms < big.p50_ci_high_ms


def test_median_interval_covers_the_median_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    n, hits = 60, 0
    lo, hi = median_ci_ranks(n)
    for _ in range(2000):
        x = np.sort(rng.exponential(size=n))
        hits += x[lo] <= np.log(2) <= x[hi]  # the exponential's true median
    assert 0.94 <= hits / 2000 <= 0.985


def test_a_reference_near_chance_is_unsound():
    ev = {"split": "test", "samples": 90}
    bad = reference_check(0.33, 3, None, ev, ["b", "c"])
    assert bad["status"] == "unsound" and "reference itself is the problem" in bad["message"]
    assert reference_check(0.97, 10, 0.98, ev)["status"] == "unsound"  # below the recipe's floor
    assert reference_check(0.97, 10, None, ev)["status"] == "sound"
    assert reference_check(None, 10, None, ev)["status"] == "unverified"


def test_report_covers_float_and_every_engine(validated):
    run, report = validated
    names = [e["name"] for e in report["engines"]]
    assert names == ["pytorch-fp32", "onnxruntime-fp32", "onnxruntime-int8", "openvino-int8"]
    ev = report["evaluation"]
    assert (ev["split"], ev["samples"], ev["source"]) == ("test", 359, "digits")
    assert ev["held_out_test"] is True and ev["warning"] is None
    for e in report["engines"]:
        acc = e["accuracy"]
        assert 0.9 < acc["top1_fraction"] <= 1 and 0.9 < acc["top5_fraction"] <= 1
        assert acc["agreement_fraction"] > 0.95
        assert set(e["latency"]) == {"1", "4"}
        lat = e["latency"]["1"]
        assert lat["min_ms"] <= lat["p50_ci_low_ms"] <= lat["p50_ms"] <= lat["p50_ci_high_ms"]
        assert lat["p99_ms"] is None  # 9 samples
        # 8 iterations asked, in 3 interleaved rounds of 3, pooled
        assert len(lat["samples_ms"]) == lat["iterations"] == 9
        assert "wall_samples_ms" not in lat  # pooled across rounds, then dropped
        # OpenVINO times its own inference (as benchmark_app quotes); the rest by the wall clock
        own = e["target"] == "openvino"
        assert lat["clock"] == ("OpenVINO InferRequest.latency" if own else "wall")
        assert (lat["wall_p50_ms"] > lat["p50_ms"]) if own else lat["wall_p50_ms"] == lat["p50_ms"]
        assert e["cold_start_s"] > 0 and e["peak_rss_mib"] > 10 and e["size_bytes"] > 0
        for c in acc["worst_classes"]:  # only classes the engine loses, with counts
            assert c["top1_drop_points"] > 0 and c["correct"] < c["float_correct"] <= c["images"]
    ref = report["engines"][0]
    assert ref["accuracy"]["agreement_fraction"] == 1.0 and ref["speedup"]["1"] == 1.0
    for e in report["engines"]:  # like for like: wall-clock medians on both sides
        for b, lat in e["latency"].items():
            want = ref["latency"][b]["wall_p50_ms"] / lat["wall_p50_ms"]
            assert e["speedup"][b] == pytest.approx(want, rel=1e-3)
    assert ref["is_reference"] and ref["budget_status"] == "reference"
    assert report["engines"][1]["precision_run"] == "fp32"
    assert report["engines"][2]["precision_run"].startswith("int8")
    assert report["environment"]["cpu"]["model"] and report["environment"]["versions"]["onnx"]
    for name in ("report.json", "report.md", "report.html"):
        assert (run.report / name).exists()


def test_verdict_recommendation_and_reference_in_the_report(validated):
    _, report = validated
    check = report["reference_check"]
    assert check["status"] == "sound" and check["top1_fraction"] > 0.9
    assert check["split"] == "test" and check["chance_top1_fraction"] == 0.1
    engines = {e["name"]: e for e in report["engines"]}
    for e in report["engines"][1:]:
        budgets = {c["budget"]: c for c in e["budget_checks"]}
        assert set(budgets) == {"max_top1_drop", "min_agreement"}  # the recipe's two budgets
        assert budgets["max_top1_drop"]["unit"] == "points"
        assert budgets["min_agreement"]["unit"] == "fraction"
        passed = all(c["status"] == "pass" for c in e["budget_checks"])
        assert e["budget_status"] == ("pass" if passed else "fail")
    recs = {r["target"]: r for r in report["recommendations"]}
    assert set(recs) == {"onnxruntime", "openvino"}
    ort = recs["onnxruntime"]
    candidates = [e for n, e in engines.items()
                  if n.startswith("onnxruntime") and e["budget_status"] == "pass"]  # fmt: skip
    fastest = min(candidates, key=lambda e: e["latency"]["1"]["p50_ms"])["latency"]["1"]
    # the fastest, or among engines tied with it on speed (overlapping intervals) the one with
    # the smallest top-1 drop, then size, then name
    top = fastest["p50_ci_high_ms"]
    tied = [e for e in candidates if e["latency"]["1"]["p50_ci_low_ms"] <= top]
    chosen = min(tied, key=lambda e: (e["accuracy"]["top1_drop_points"] or 0.0, e["size_bytes"],
                                      e["name"]))  # fmt: skip
    assert ort["engine"] == chosen["name"] and ort["batch"] == 1
    assert ort["p50_ms"] == chosen["latency"]["1"]["p50_ms"]
    assert ("tied on speed" if len(tied) > 1 else "fastest") in ort["reason"]
    assert report["verdict"] == "PASSED" and report["passed"] and report["verdict_reasons"] == []


def _private_copy(validated, tmp_path):
    import shutil

    run, _ = validated
    shutil.copytree(run.root, tmp_path / "run")
    return RunDir.at(tmp_path / "run")


def test_a_broken_budget_exits_non_zero_and_says_which(validated, tmp_path):
    run = _private_copy(validated, tmp_path)
    result = CliRunner().invoke(
        cli,
        ["validate", "--out", str(run.root), "--set", DIGITS_SET, "--min-speedup", "1000000",
         "--engine", "onnxruntime-int8", "--iterations", "5", "--batch-size", "1"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "onnxruntime-int8: speedup at batch 1" in result.output
    report = json.loads((run.report / "report.json").read_text())
    assert not report["passed"] and report["verdict"] == "FAILED"
    broken = [v for v in report["violations"] if v["budget"] == "min_speedup"]
    assert broken and broken[0]["status"] == "fail" and broken[0]["unit"] == "x"
    engine = next(e for e in report["engines"] if e["name"] == "onnxruntime-int8")
    assert engine["budget_status"] == "fail"


def test_unknown_engine_is_named(validated):
    run, _ = validated
    result = CliRunner().invoke(
        cli, ["validate", "--out", str(run.root), "--set", DIGITS_SET, "--engine", "tflite-int8"]
    )
    assert result.exit_code == 2 and "no engine 'tflite-int8'" in result.output


def test_an_unsound_reference_fails_validation_and_says_so(validated, tmp_path):
    run = _private_copy(validated, tmp_path)
    result = CliRunner().invoke(
        cli,
        ["validate", "--out", str(run.root), "--set", DIGITS_SET, "--iterations", "5",
         "--set", "validate.min_reference_top1=0.9999", "--batch-size", "1"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "the float reference itself is the problem" in result.output
    report = json.loads((run.report / "report.json").read_text())
    assert report["verdict"] == "FAILED" and report["reference_check"]["status"] == "unsound"
    assert report["reference_check"]["min_top1_fraction"] == 0.9999
    assert [e["name"] for e in report["engines"]] == ["pytorch-fp32"]  # engines not judged
    assert all(r["engine"] is None for r in report["recommendations"])
    md = (run.report / "report.md").read_text()
    assert "FAILED" in md and "reference itself is the problem" in md


def test_a_requested_tensorrt_engine_is_a_kit_row_and_not_passed(validated, tmp_path):
    run = _private_copy(validated, tmp_path)
    (run.root / "kits" / "tensorrt-int8").mkdir(parents=True)
    result = CliRunner().invoke(
        cli,
        ["validate", "--out", str(run.root), "--set", DIGITS_SET, "--iterations", "5",
         "--batch-size", "1", "--set",
         "targets=[{name: onnxruntime, precisions: [int8]}, {name: tensorrt, precisions: [int8]}]"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    report = json.loads((run.report / "report.json").read_text())
    kit = next(e for e in report["engines"] if e["name"] == "tensorrt-int8")
    assert kit["status"] == "kit" and kit["kit_path"] == "kits/tensorrt-int8"
    assert report["verdict"] == "INCOMPLETE"
    assert any("tensorrt-int8: kit written, not built here" in r for r in report["verdict_reasons"])
    recs = {r["target"]: r for r in report["recommendations"]}
    assert recs["tensorrt"]["engine"] is None and "kit written" in recs["tensorrt"]["reason"]
    assert recs["onnxruntime"]["engine"].startswith("onnxruntime-")
    for page in ("report.md", "report.html"):
        assert "kit written, not built here" in (run.report / page).read_text()
