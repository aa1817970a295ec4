"""Validation: every engine against the float model; budgets gate the exit code."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dense_edge.cli import cli
from dense_edge.rundir import RunDir
from dense_edge.validate.latency import summarize
from tests.conftest import DIGITS_SET


def test_latency_statistics():
    s = summarize([0.001 * i for i in range(1, 101)], batch=4)
    assert (s.p50_ms, s.min_ms, s.max_ms, s.iterations) == (50.5, 1.0, 100.0, 100)
    assert s.p99_ms == pytest.approx(99.01) and s.throughput_ips == pytest.approx(4000 / 50.5)


def test_report_covers_float_and_every_engine(validated):
    run, report = validated
    names = [e["name"] for e in report["engines"]]
    assert names == ["pytorch-fp32", "onnxruntime-fp32", "onnxruntime-int8", "openvino-int8"]
    assert report["evaluation"] == {"split": "test", "samples": 359, "source": "digits"}
    for e in report["engines"]:
        acc = e["accuracy"]
        assert 0.9 < acc["top1"] <= 1 and 0.9 < acc["top5"] <= 1 and acc["agreement"] > 0.95
        assert set(e["latency"]) == {"1", "4"}
        lat = e["latency"]["1"]
        assert lat["min_ms"] <= lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert len(lat["samples_ms"]) == lat["iterations"] == 8
        assert e["cold_start_s"] > 0 and e["peak_rss_mib"] > 10 and e["size_bytes"] > 0
    ref = report["engines"][0]
    assert ref["accuracy"]["agreement"] == 1.0 and ref["speedup"]["1"] == 1.0
    assert report["engines"][1]["precision_run"] == "fp32"
    assert report["engines"][2]["precision_run"].startswith("int8")
    assert report["environment"]["cpu"]["model"] and report["environment"]["versions"]["onnx"]
    for name in ("report.json", "report.md", "report.html"):
        assert (run.report / name).exists()


def _private_copy(validated, tmp_path):
    import shutil

    run, _ = validated
    shutil.copytree(run.root, tmp_path / "run")
    return RunDir.at(tmp_path / "run")


def test_a_broken_budget_exits_non_zero_and_says_which(validated, tmp_path):
    run = _private_copy(validated, tmp_path)
    result = CliRunner().invoke(
        cli,
        ["validate", "--out", str(run.root), "--set", DIGITS_SET, "--min-speedup", "1000",
         "--engine", "onnxruntime-int8", "--iterations", "5", "--batch-size", "1"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "onnxruntime-int8: min_speedup broken" in result.output
    report = json.loads((run.report / "report.json").read_text())
    assert not report["passed"] and report["violations"][0]["budget"] == "min_speedup"


def test_unknown_engine_is_named(validated):
    run, _ = validated
    result = CliRunner().invoke(
        cli, ["validate", "--out", str(run.root), "--set", DIGITS_SET, "--engine", "tflite-int8"]
    )
    assert result.exit_code == 2 and "no engine 'tflite-int8'" in result.output
