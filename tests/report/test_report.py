"""Reports: the versioned schema, the HTML with its plots, and `report compare` for CI."""

from __future__ import annotations

import copy
import html
import json

import pytest
from click.testing import CliRunner

from dense_edge.cli import cli
from dense_edge.report.schema import json_schema

# the judgement of the reports' own numbers (no engines timed again)
COMPARE = ["report", "compare", "--reports-only"]


def test_report_follows_its_json_schema(validated):
    jsonschema = pytest.importorskip("jsonschema")
    run, report = validated
    jsonschema.validate(json.loads((run.report / "report.json").read_text()), json_schema())
    broken = copy.deepcopy(report)
    broken["engines"][0]["precision"] = "int4"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(json.dumps(broken, default=str)), json_schema())


def _walk_schema(node, path="$"):
    """Every property of the schema, with its path."""
    for key, sub in node.get("properties", {}).items():
        yield f"{path}.{key}", sub
        yield from _walk_schema(sub, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield f"{path}[]", node[key]
            yield from _walk_schema(node[key], f"{path}[]")


def _declared(schema_node, data, path="$"):
    """Keys of ``data`` the schema does not declare (open maps excepted)."""
    missing = []
    if isinstance(data, dict):
        props = schema_node.get("properties")
        if props is None:
            extra = schema_node.get("additionalProperties")
            if isinstance(extra, dict):
                for k, v in data.items():
                    missing += _declared(extra, v, f"{path}.{k}")
            return missing
        for k, v in data.items():
            if k not in props:
                missing.append(f"{path}.{k}")
            else:
                missing += _declared(props[k], v, f"{path}.{k}")
    elif isinstance(data, list) and isinstance(schema_node.get("items"), dict):
        for i, v in enumerate(data):
            missing += _declared(schema_node["items"], v, f"{path}[{i}]")
    return missing


def _with_tensorrt_rows(report):
    """The report with a kit row and a row merged from a device, as report merge writes them."""
    out = copy.deepcopy(report)
    kit = {"name": "tensorrt-fp16", "target": "tensorrt", "precision": "fp16", "status": "kit",
           "kit_path": "kits/tensorrt-fp16", "budget_status": "not built"}  # fmt: skip
    device = copy.deepcopy(report["engines"][2])
    device.update(name="tensorrt-int8", target="tensorrt", device_kind="cuda",
                  measured_on={"where": "device", "host": "jetson-orin", "gpu": "Orin",
                               "tensorrt": "10.3.0", "cuda": "12.6", "jetpack": "6.1",
                               "report": "/tmp/device/report.json"})  # fmt: skip
    for lat in device["latency"].values():
        lat["clock"] = "TensorRT GPU compute (CUDA events)"
    device["evaluation"] = {"split": "test", "samples": 300, "of": 359, "source": "digits",
                            "float_top1": 0.99}  # the kit carries at most 300 images  # fmt: skip
    out["engines"] += [device, kit]
    return out


def test_every_report_field_is_described_in_the_schema(validated):
    _, report = validated
    schema = json_schema()
    undocumented = [p for p, node in _walk_schema(schema) if "description" not in node
                    and not set(node) <= {"type"}]  # fmt: skip
    assert undocumented == []
    data = json.loads(json.dumps(_with_tensorrt_rows(report), default=str))
    assert _declared(schema, data) == []
    assert report["schema_version"] == schema["properties"]["schema_version"]["const"] == 2


def test_kit_and_device_rows_render_and_follow_the_schema(validated, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from dense_edge.report.schema import load
    from dense_edge.report.write import write_reports

    _, report = validated
    report = _with_tensorrt_rows(report)
    jsonschema.validate(json.loads(json.dumps(report, default=str)), json_schema())
    folder = write_reports(report, tmp_path / "report")
    assert load(folder)["engines"][-1]["status"] == "kit"
    for page in ("report.md", "report.html"):
        text = html.unescape((folder / page).read_text())
        assert "kit written, not built here: kits/tensorrt-fp16" in text
        assert "measured on device jetson-orin (Orin, TensorRT 10.3.0)" in text
        assert "accuracy on 300 of 359 images" in text  # not under the header's 359 silently
        # what measured each engine is said in words, the device's clock included
        assert "the runtime's own clock (TensorRT GPU compute (CUDA events))" in text
        assert "the wall clock around each call" in text
    # a device's times get plots of their own: never one axis with this machine's
    page = (folder / "report.html").read_text()
    assert page.count('alt="latency distribution batch 1 on this machine"') == 1
    assert page.count('alt="latency distribution batch 1 on jetson-orin"') == 1
    no_path = copy.deepcopy(report)
    del no_path["engines"][-1]["kit_path"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(json.dumps(no_path, default=str)), json_schema())


def test_html_is_self_contained_with_plots(validated):
    run, report = validated
    page = (run.report / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3  # latency b1, latency b4, accuracy
    assert "http://" not in page and "https://" not in page
    assert "openvino-int8" in page and "PASSED" in page and "Recommendation" in page
    md = (run.report / "report.md").read_text()
    assert "| onnxruntime-int8 | measured here | int8 |" in md
    assert "top-1 drop (points)" in md and "Δ" not in md
    losses = [c for e in report["engines"] for c in e["accuracy"]["worst_classes"]]
    if not losses:
        assert "No engine gets fewer images of any class right" in md


def _write(tmp_path, name, report):
    path = tmp_path / name
    path.write_text(json.dumps(report, default=str))
    return str(path)


def test_compare_passes_identical_reports_and_fails_a_regression(validated, tmp_path):
    _, report = validated
    base = _write(tmp_path, "base.json", report)
    runner = CliRunner()
    same = runner.invoke(cli, [*COMPARE, base, base])
    assert same.exit_code == 0 and "no regressions" in same.output
    worse = copy.deepcopy(report)
    engine = worse["engines"][2]
    engine["accuracy"]["top1_fraction"] -= 0.02
    result = runner.invoke(cli, [*COMPARE, base, _write(tmp_path, "new.json", worse)])
    assert result.exit_code == 1
    assert "REGRESSION" in result.output and "+2.00 points" in result.output
    loose = runner.invoke(cli, [*COMPARE, base, _write(tmp_path, "new.json", worse),
                                "--tolerance", "top1=3"])  # fmt: skip
    assert loose.exit_code == 0


def _tight(report):
    """The report with narrow median intervals (+-2%), as from many samples on a quiet machine."""
    out = copy.deepcopy(report)
    for e in out["engines"]:
        for lat in e["latency"].values():
            lat["p50_ci_low_ms"], lat["p50_ci_high_ms"] = lat["p50_ms"] * 0.98, lat["p50_ms"] * 1.02
    return out


def _slower(report, factor, names=None):
    out = copy.deepcopy(report)
    for e in out["engines"]:
        if names is None or e["name"] in names:
            for lat in e["latency"].values():
                for k in ("p50_ms", "p50_ci_low_ms", "p50_ci_high_ms", "p99_ms"):
                    if lat.get(k) is not None:
                        lat[k] *= factor
    return out


def _regressions(base, new, *tolerances):
    from dense_edge.report.regression import RegressionTolerance, compare

    return [
        (r.engine, r.metric)
        for r in compare(base, new, RegressionTolerance.parse(tolerances)).regressions
    ]


def test_compare_judges_latency_by_medians_relative_to_float(validated):
    report = _tight(validated[1])
    # the machine got 1.5x slower for everyone: drift-corrected unchanged, absolute within 100%
    assert _regressions(report, _slower(report, 1.5), "latency_abs=100%") == []
    # one engine got 3x slower, the others did not: a regression after the drift is removed
    regs = _regressions(report, _slower(report, 3.0, {"openvino-int8"}))
    assert ("openvino-int8", "p50 ms b1 (drift-corrected)") in regs
    assert all(name == "openvino-int8" for name, _ in regs)
    regs = _regressions(report, _slower(report, 3.0, {"openvino-int8"}), "latency_abs=100%")
    assert ("openvino-int8", "p50 ms b1") in regs  # and in absolute terms (+200% > 100%)
    # everything 3x slower: relative unchanged; absolute only judged when asked for
    assert _regressions(report, _slower(report, 3.0)) == []
    regs = _regressions(report, _slower(report, 3.0), "latency_abs=100%")
    assert ("pytorch-fp32", "p50 ms b1") in regs
    assert not any("drift" in metric for _, metric in regs)
    # p99 is never judged, however it moves
    noisy = copy.deepcopy(report)
    for e in noisy["engines"]:
        for lat in e["latency"].values():
            lat["p99_ms"] = (lat["p99_ms"] or lat["max_ms"]) * 8
    assert _regressions(report, noisy) == []


def test_compare_needs_the_intervals_apart(validated):
    report = _tight(validated[1])
    wide = _slower(report, 1.8, {"onnxruntime-int8"})
    for e in wide["engines"]:
        for lat in e["latency"].values():
            lat["p50_ci_low_ms"], lat["p50_ci_high_ms"] = lat["p50_ms"] * 0.1, lat["p50_ms"] * 10
    assert _regressions(report, wide) == []  # +80% but inside a wide interval: not proven
    assert _regressions(report, _slower(report, 1.8, {"onnxruntime-int8"}))
    assert _regressions(report, _slower(report, 1.3, {"onnxruntime-int8"})) == []  # within 50%
    assert _regressions(report, _slower(report, 1.3, {"onnxruntime-int8"}), "latency=20%")


def test_compare_judges_latency_only_on_the_same_machine(validated, tmp_path):
    report = _tight(validated[1])
    slower = _slower(report, 3, {"openvino-int8"})
    runner = CliRunner()
    base = _write(tmp_path, "base.json", report)
    same_machine = runner.invoke(cli, [*COMPARE, base, _write(tmp_path, "s.json", slower)])
    assert same_machine.exit_code == 1 and "drift-corrected" in same_machine.output
    slower["environment"]["cpu"]["model"] = "Some Other CPU"
    other = runner.invoke(cli, [*COMPARE, base, _write(tmp_path, "o.json", slower)])
    assert other.exit_code == 0
    assert "different machines" in other.output and "not compared" in other.output


def test_compare_refuses_another_schema_version(validated, tmp_path):
    _, report = validated
    future = dict(report, schema_version=3)
    result = CliRunner().invoke(
        cli,
        [
            "report",
            "compare",
            _write(tmp_path, "a.json", report),
            _write(tmp_path, "b.json", future),
        ],
    )
    assert result.exit_code == 2 and "schema version 3 is not 2" in result.output
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    result = CliRunner().invoke(cli, [*COMPARE, str(bad), str(bad)])
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
    result = runner.invoke(cli, [*COMPARE, base, _write(tmp_path, "f.json", fewer)])
    assert result.exit_code == 1 and "missing in new report" in result.output
    broken = copy.deepcopy(report)
    del broken["engines"][1]["latency"]
    result = runner.invoke(cli, [*COMPARE, base, _write(tmp_path, "b.json", broken)])
    assert result.exit_code == 2 and "incomplete report" in result.output


def _clocked(report, name, clock, wall_factor=None):
    """``name`` timed by ``clock``, its wall-clock median ``wall_factor`` x its p50 (None: none)."""
    out = copy.deepcopy(report)
    for e in out["engines"]:
        if e["name"] == name:
            for lat in e["latency"].values():
                lat.pop("wall_p50_ms", None)
                if clock is None:
                    lat.pop("clock", None)
                else:
                    lat["clock"] = clock
                if wall_factor is not None:
                    lat["wall_p50_ms"] = lat["p50_ms"] * wall_factor
    return out


def test_compare_across_a_change_of_clock_uses_the_wall_clock(validated):
    from dense_edge.report.regression import RegressionTolerance, compare

    report = _tight(validated[1])
    own = "OpenVINO InferRequest.latency"
    # a report from before clocks were recorded: wall-clock p50s, no clock, no wall_p50_ms
    old = _clocked(report, "openvino-int8", None)
    same = _clocked(report, "openvino-int8", own, wall_factor=1.0)
    result = compare(old, same, RegressionTolerance.parse(()))
    assert result.regressions == []
    assert any("judged by the wall-clock medians" in n for n in result.notes)
    # the wall clock says 3x slower: a regression, whatever the engine's own clock says
    slower = _clocked(report, "openvino-int8", own, wall_factor=3.0)
    regs = [
        (r.engine, r.metric)
        for r in compare(old, slower, RegressionTolerance.parse(())).regressions
    ]
    assert ("openvino-int8", "p50 ms b1 (drift-corrected)") in regs
    # two clocks and no wall-clock median on one side: not compared, and said so
    blind = _clocked(_slower(report, 3.0, {"openvino-int8"}), "openvino-int8", own)
    result = compare(old, blind, RegressionTolerance.parse(()))
    assert not any(r.engine == "openvino-int8" and "p50" in r.metric for r in result.regressions)
    assert any("p50s are not compared" in n for n in result.notes)


def test_clock_names_of_older_device_reports_read_as_today(validated, tmp_path):
    from dense_edge.report.write import write_reports
    from dense_edge.validate.latency import clock_of, wall_p50_of

    assert clock_of({"p50_ms": 1.0}) == "wall" == clock_of({"clock": "wall (time to a result)"})
    assert clock_of({"clock": "gpu compute (CUDA events)"}) == "TensorRT GPU compute (CUDA events)"
    assert wall_p50_of({"p50_ms": 2.0}) == 2.0  # a wall-clock entry is its own wall median
    assert wall_p50_of({"p50_ms": 2.0, "clock": "OpenVINO InferRequest.latency"}) is None
    report = _with_tensorrt_rows(validated[1])
    for lat in report["engines"][-2]["latency"].values():  # the merged device row, as v1 wrote it
        lat["clock"] = "wall (time to a result on the host)"
        lat.pop("wall_p50_ms", None)
    page = html.unescape((write_reports(report, tmp_path / "r") / "report.md").read_text())
    note = next(line for line in page.splitlines() if line.startswith("Latency is measured"))
    assert "the runtime's own clock (wall" not in note
    wall_part = note.split("; by ")[0]
    assert "tensorrt-int8" in wall_part and "onnxruntime-int8" in wall_part
