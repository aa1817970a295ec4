"""Reports: the versioned schema, the HTML with its plots, and `report compare` for CI."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from dense_edge.cli import cli
from dense_edge.report.schema import json_schema


def test_report_follows_its_json_schema(validated):
    jsonschema = pytest.importorskip("jsonschema")
    run, report = validated
    jsonschema.validate(json.loads((run.report / "report.json").read_text()), json_schema())
    broken = copy.deepcopy(report)
    broken["engines"][0]["precision"] = "int4"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(json.dumps(broken, default=str)), json_schema())


def test_html_is_self_contained_with_plots(validated):
    run, _ = validated
    page = (run.report / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3  # latency b1, latency b4, accuracy
    assert "http://" not in page and "https://" not in page
    assert "openvino-int8" in page and "PASSED" in page
    md = (run.report / "report.md").read_text()
    assert "| onnxruntime-int8 | int8 |" in md


def _write(tmp_path, name, report):
    path = tmp_path / name
    path.write_text(json.dumps(report, default=str))
    return str(path)


def test_compare_passes_identical_reports_and_fails_a_regression(validated, tmp_path):
    _, report = validated
    base = _write(tmp_path, "base.json", report)
    runner = CliRunner()
    same = runner.invoke(cli, ["report", "compare", base, base])
    assert same.exit_code == 0 and "no regressions" in same.output
    worse = copy.deepcopy(report)
    engine = worse["engines"][2]
    engine["accuracy"]["top1"] -= 0.02
    result = runner.invoke(cli, ["report", "compare", base, _write(tmp_path, "new.json", worse)])
    assert result.exit_code == 1
    assert "REGRESSION" in result.output and "-2.00 pts" in result.output
    loose = runner.invoke(cli, ["report", "compare", base, _write(tmp_path, "new.json", worse),
                                "--tolerance", "top1=3"])  # fmt: skip
    assert loose.exit_code == 0


def test_compare_judges_latency_only_on_the_same_machine(validated, tmp_path):
    _, report = validated
    slower = copy.deepcopy(report)
    for e in slower["engines"]:
        for lat in e["latency"].values():
            lat["p50_ms"] *= 3
            lat["p99_ms"] *= 3
    runner = CliRunner()
    base = _write(tmp_path, "base.json", report)
    same_machine = runner.invoke(
        cli, ["report", "compare", base, _write(tmp_path, "s.json", slower)]
    )
    assert same_machine.exit_code == 1 and "p50 ms b1" in same_machine.output
    slower["environment"]["cpu"]["model"] = "Some Other CPU"
    other = runner.invoke(cli, ["report", "compare", base, _write(tmp_path, "o.json", slower)])
    assert other.exit_code == 0
    assert "different machines" in other.output and "not compared" in other.output


def test_compare_refuses_another_schema_version(validated, tmp_path):
    _, report = validated
    future = dict(report, schema_version=2)
    result = CliRunner().invoke(
        cli,
        [
            "report",
            "compare",
            _write(tmp_path, "a.json", report),
            _write(tmp_path, "b.json", future),
        ],
    )
    assert result.exit_code == 2 and "schema version 2 is not 1" in result.output
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    result = CliRunner().invoke(cli, ["report", "compare", str(bad), str(bad)])
    assert result.exit_code == 2 and "not a dense-edge report" in result.output


def test_report_command_rerenders_and_prints(validated, tmp_path):
    import shutil

    from dense_edge.rundir import RunDir

    shutil.copytree(validated[0].root, tmp_path / "run")
    run = RunDir.at(tmp_path / "run")
    (run.report / "report.html").unlink()
    result = CliRunner().invoke(cli, ["report", "--out", str(run.root)])
    assert result.exit_code == 0, result.output
    assert (run.report / "report.html").exists() and "onnxruntime-int8" in result.output


def test_a_missing_engine_is_a_regression_and_incomplete_reports_are_refused(validated, tmp_path):
    _, report = validated
    fewer = copy.deepcopy(report)
    fewer["engines"] = fewer["engines"][:-1]
    runner = CliRunner()
    base = _write(tmp_path, "base.json", report)
    result = runner.invoke(cli, ["report", "compare", base, _write(tmp_path, "f.json", fewer)])
    assert result.exit_code == 1 and "missing in new report" in result.output
    broken = copy.deepcopy(report)
    del broken["engines"][1]["latency"]
    result = runner.invoke(cli, ["report", "compare", base, _write(tmp_path, "b.json", broken)])
    assert result.exit_code == 2 and "incomplete report" in result.output
