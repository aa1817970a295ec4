"""Reports and the gate hold up: exit codes by verdict, only the run's current engines, NaN never
"ok", device rows only against their own device, foreign text escaped everywhere, model identity
by the tensors. Issue 22."""

from __future__ import annotations

import copy
import json
import math
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from dense_edge.cli import cli
from dense_edge.errors import StageError, UserError
from dense_edge.kits import seal
from dense_edge.report import html, markdown
from dense_edge.report.merge import merge, merge_into_run
from dense_edge.report.regression import RegressionTolerance, compare, compare_files
from dense_edge.report.write import write_reports
from dense_edge.rundir import RunDir
from tests.conftest import DIGITS_SET, VALIDATE_FAST, digits_recipe

HOST = "jetson-orin"


def _latency(p50: float) -> dict:  # type: ignore[type-arg]
    from dense_edge.targets.base import WALL_CLOCK

    return {"1": {"p50_ms": p50, "p50_ci_low_ms": p50 * 0.95, "p50_ci_high_ms": p50 * 1.05,
                  "p90_ms": p50 * 1.1, "p99_ms": None, "mean_ms": p50, "min_ms": p50 * 0.9,
                  "max_ms": p50 * 1.3, "throughput_ips": 1000 / p50, "iterations": 8,
                  "clock": WALL_CLOCK, "wall_p50_ms": p50, "samples_ms": [p50] * 8}}  # fmt: skip


def _row(name: str, target: str, precision: str, p50: float, *, reference: bool = False) -> dict:  # type: ignore[type-arg]
    return {"name": name, "status": "measured", "target": target, "precision": precision,
            "precision_run": precision, "path": f"engines/{name}", "size_bytes": 2**20,
            "engine_sha256": None, "runtime": "1.0", "device": "CPU", "device_kind": "cpu",
            "threads": 2, "cold_start_s": 0.1, "peak_rss_mib": 100.0, "speedup": {"1": 5.0 / p50},
            "accuracy": {"top1_fraction": 0.98, "agreement_fraction": 1.0,
                         "top1_drop_points": 0.0, "worst_classes": []},
            "latency": _latency(p50), "is_reference": reference, "budget_checks": [],
            "budget_status": "reference" if reference else "pass"}  # fmt: skip


@pytest.fixture()
def report():  # type: ignore[no-untyped-def]
    """A report as validate writes it (its fields, not its measurements): what compare, merge
    and the renderers read. The tests that need real engines use the ``validated`` run."""
    return {
        "schema": "dense-edge/report", "schema_version": 2, "created": "2026-12-02T04:00:00Z",
        "recipe": "digits", "run_dir": "/nowhere",
        "model": {"arch": "densenet-digits", "num_classes": 10, "input_shape": [1, 32, 32],
                  "weights_sha256": "a" * 64, "weights_tensor_sha256": "b" * 64},
        "evaluation": {"samples": 359, "split": "test", "source": "digits"},
        "benchmark": {"decision_batch": 1, "batch_sizes": [1]},
        "environment": {"cpu": {"model": "AMD EPYC", "flags": [], "logical_cores": 2},
                        "versions": {"onnxruntime": "1.0"}, "gpu": None,
                        "load_average": {"start": [3.1, 2.0, 1.0], "end": [5.2, 2.0, 1.0],
                                         "cores": 2}},
        "reference": "pytorch-fp32",
        "reference_check": {"status": "sound", "message": "float top-1 98.00%"},
        "engines": [_row("pytorch-fp32", "pytorch", "fp32", 5.0, reference=True),
                    _row("onnxruntime-int8", "onnxruntime", "int8", 1.0),
                    _row("openvino-int8", "openvino", "int8", 0.8)],
        "budgets": {"max_top1_drop": 1.0, "min_agreement": 0.98, "max_p99_ms": None,
                    "min_speedup": None},
        "violations": [], "recommendations": [], "missing_engines": [], "verdict": "PASSED",
        "verdict_reasons": [], "passed": True,
    }  # fmt: skip


@pytest.fixture()
def report_run(report, tmp_path):  # type: ignore[no-untyped-def]
    """A run folder holding that report."""
    run = RunDir.at(tmp_path / "run").create()
    write_reports(report, run.report)
    return run


def _strict_json(text: str):  # type: ignore[no-untyped-def]
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _device_report(report, *, name="tensorrt-int8", host=HOST, weights=None):  # type: ignore[no-untyped-def]
    """A device report as the kit's validate.sh writes it, from one of the run's rows."""
    row = next(e for e in report["engines"] if e["name"] == "onnxruntime-int8")
    return {
        "schema": "dense-edge/device-report",
        "schema_version": 1,
        "created": "2026-12-02T04:00:00Z",
        "measured_by": "tensorrt",
        "note": None,
        "kit": {
            "path": "/kits/tensorrt-int8",
            "precision": "int8",
            "arch": report["model"]["arch"],
            "model_sha256": "0" * 64,
            "run": {
                "dir": "/nowhere",
                "weights_sha256": weights or report["model"]["weights_sha256"],
            },
        },
        "engine": {
            "name": name,
            "target": "tensorrt",
            "precision": "int8",
            "precision_run": "int8",
            "runtime": "TensorRT 10.3",
            "device": "Orin",
            "size_bytes": 1000,
        },
        "evaluation": {
            "split": "test",
            "samples": 300,
            "of": 359,
            "source": "digits",
            "float_top1": 0.99,
        },
        "accuracy": copy.deepcopy(row["accuracy"]),
        "latency": copy.deepcopy(row["latency"]),
        "cold_start_s": 0.5,
        "peak_rss_mib": 100.0,
        "environment": {
            "host": host,
            "gpu": "Orin",
            "tensorrt": "10.3.0",
            "cuda": "12.6",
            "jetpack": "6.1",
        },
    }


def _write(path: Path, data) -> Path:  # type: ignore[no-untyped-def]
    path.write_text(json.dumps(data))
    return path


# -- 1. every validating command exits by its verdict ------------------------------------------


def test_export_target_exits_1_when_its_verdict_is_failed(run_copy):
    args = ["export", "--target", "onnxruntime", "--precision", "fp32", "--out", str(run_copy.root),
            "--set", DIGITS_SET, "--set", "validate.batch_sizes=[1]",
            "--set", "validate.iterations=8", "--set", "validate.warmup=1",
            "--set", "validate.budgets.min_speedup=1000000"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output  # was 0: a failing engine shipped from CI
    assert "FAILED" in result.output and "speedup" in result.output
    assert "limit >= 1000000.00x" in result.output  # the per-engine budget status is printed


# -- 2. reports describe the current run only ---------------------------------------------------


def test_validate_refuses_an_engine_built_from_other_inputs(validated, tmp_path):
    from dense_edge.calibrate.stage import calibrate_stage
    from dense_edge.pipeline import validate_and_report
    from dense_edge.targets.registry import get

    shutil.copytree(validated[0].root, tmp_path / "run")
    run = RunDir.at(tmp_path / "run")
    other = digits_recipe(**VALIDATE_FAST, **{"calibration.samples": 64})
    calibrate_stage(other, run, profiles=[get("onnxruntime").profile], force=True)
    with pytest.raises(StageError, match="onnxruntime-int8") as caught:
        validate_and_report(digits_recipe(**VALIDATE_FAST), run)
    assert "--force" in str(caught.value) and "openvino-int8" not in str(caught.value)


def test_nan_fails_the_check_that_reads_it_and_report_json_stays_json(report, tmp_path):
    new = copy.deepcopy(report)
    row = next(e for e in new["engines"] if e["name"] == "onnxruntime-int8")
    row["accuracy"]["agreement_fraction"] = float("nan")
    result = compare(report, new, RegressionTolerance())
    bad = [r for r in result.regressions if r.engine == "onnxruntime-int8"]
    assert bad, [(r.engine, r.metric, r.status) for r in result.rows]  # NaN is never "ok"
    write_reports(new, tmp_path / "report")
    text = (tmp_path / "report" / "report.json").read_text()
    written = _strict_json(text)  # no NaN token
    again = next(e for e in written["engines"] if e["name"] == "onnxruntime-int8")
    assert again["accuracy"]["agreement_fraction"] is None
    # and the written report, read back by compare, still fails rather than crashing
    base = _write(tmp_path / "base.json", report)
    assert compare_files(base, tmp_path / "report" / "report.json", RegressionTolerance(),
                         side_by_side=False).regressions  # fmt: skip


def test_export_parity_with_nan_weights_does_not_pass(digits_run, tmp_path):
    from safetensors.torch import load_file, save_file

    from dense_edge.export import export_stage
    from dense_edge.train.stage import train_stage

    tensors = load_file(str(digits_run / "model" / "weights.safetensors"))
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.ndim == 4)
    tensors[key][0, 0, 0, 0] = float("nan")
    weights = tmp_path / "nan.safetensors"
    save_file(tensors, str(weights))
    recipe = digits_recipe(**{"model.weights": str(weights)})
    run = RunDir.at(tmp_path / "run").create()
    try:
        train_stage(recipe, run)  # imports the weights
    except UserError:
        return  # refused at import: never reaches a parity record at all
    with pytest.raises(Exception, match=r"finite|NaN|parity") as caught:
        export_stage(recipe, run)
    assert not isinstance(caught.value, AssertionError)
    for parity in tmp_path.rglob("parity.json"):
        record = _strict_json(parity.read_text())  # valid JSON: no NaN token
        assert record["passed"] is False


# -- 3. untrusted text is escaped in every format; merge checks what it is given ---------------

PAYLOAD = "x\"><img src=nowhere onerror=\"document.title='PW'+'NED'\">\n# Fake heading <b>bold</b>"


def _planted(report):  # type: ignore[no-untyped-def]
    """The report with the payload in a class name, the recipe name and a device row's host."""
    out = copy.deepcopy(report)
    out["recipe"] = PAYLOAD
    row = next(e for e in out["engines"] if e["name"] == "onnxruntime-int8")
    row["accuracy"]["worst_classes"] = [{"class": PAYLOAD, "images": 10, "float_correct": 10,
                                         "correct": 5, "top1_fraction": 0.5,
                                         "top1_drop_points": 50.0}]  # fmt: skip
    device = copy.deepcopy(row)
    device.update(name="tensorrt-int8", target="tensorrt",
                  measured_on={"where": "device", "host": PAYLOAD, "gpu": PAYLOAD})  # fmt: skip
    out["engines"].append(device)
    return out


def test_untrusted_text_is_escaped_in_markdown_and_the_terminal(report):
    from rich.console import Console

    from dense_edge.progress import table

    planted = _planted(report)
    md = markdown.render(planted)
    assert "<img" not in md and "<b>" not in md
    assert not any(line.startswith("# Fake") for line in md.splitlines())  # no fake heading
    console = Console(record=True, width=400, color_system=None)
    console.print(table(PAYLOAD + "\x1b]0;title\x07", ["class"], [[PAYLOAD + "\x1b[2J[red]x"]]))
    shown = console.export_text()
    assert "\x1b" not in shown and "\n# Fake" not in shown and "[red]x" in shown


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _dom(page: Path) -> str:
    browser = _chromium()
    assert browser is not None
    out = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.skipif(_chromium() is None, reason="needs chromium (apt-get install chromium)")
def test_a_payload_planted_in_a_report_does_not_run_in_a_browser(report, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(html.render(_planted(report)))
    dom = _dom(page)
    assert "PWNED" not in dom  # the handler would have set the title
    assert "<title>dense-edge report" in dom
    # the check can see a payload run: the same page with the handler unescaped sets the title
    control = tmp_path / "control.html"
    control.write_text(page.read_text().replace("</body>", PAYLOAD + "</body>"))
    assert "PWNED" in _dom(control)


def test_merge_refuses_a_device_report_of_the_wrong_shape_in_one_line(report, report_run, tmp_path):
    good = _device_report(report)
    broken = {
        "no host": lambda d: d["environment"].pop("host"),
        "string latency": lambda d: d["latency"]["1"].update(p50_ms="fast"),
        "no accuracy": lambda d: d.pop("accuracy"),
        "no model proof": lambda d: d["kit"]["run"].pop("weights_sha256"),
        "huge note": lambda d: d.update(note="x" * 100_000),
        "bad name": lambda d: d["engine"].update(name="<script>"),
    }
    for what, damage in broken.items():
        device = copy.deepcopy(good)
        damage(device)
        path = _write(tmp_path / f"{what}.json", device)
        result = CliRunner().invoke(
            cli, ["report", "merge", str(path), "--run", str(report_run.root)]
        )
        assert result.exit_code == 2, (what, result.output)
        assert "Traceback" not in result.output and "not a valid device report" in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_merge_never_replaces_a_row_it_did_not_measure(report, tmp_path):
    for name in ("pytorch-fp32", "onnxruntime-int8"):
        device = _device_report(report, name=name)
        merged = merge(report, device, tmp_path / "d.json")
        local = {e["name"]: e for e in report["engines"]}
        rows = {e["name"]: e for e in merged["engines"]}
        assert rows[name] == local[name]  # the row measured here is untouched
        assert f"{name}@{HOST}" in rows
    # the same device again replaces its own earlier row only
    device = _device_report(report)
    once = merge(report, device, tmp_path / "d.json")
    twice = merge(once, device, tmp_path / "d.json")
    assert [e["name"] for e in twice["engines"]] == [e["name"] for e in once["engines"]]


def test_merge_refuses_a_report_of_another_or_an_unknown_model(report, report_run, tmp_path):
    with pytest.raises(UserError, match="another model"):
        merge(report, _device_report(report, weights="c" * 64), tmp_path / "d.json")
    anonymous = copy.deepcopy(report)
    anonymous["model"]["weights_sha256"] = None
    with pytest.raises(UserError, match="which model"):
        merge(anonymous, _device_report(report), tmp_path / "d.json")
    # The run's own kit, sealed when it was written: a report of it, unchanged, merges.
    kit = report_run.root / "kits" / "tensorrt-int8"
    (kit / "eval").mkdir(parents=True)
    (kit / "manifest.json").write_text('{"build_plan": {"onnx": "model.onnx"}}')
    (kit / "model.onnx").write_bytes(b"onnx")
    (kit / "eval" / "images.npy").write_bytes(b"images")
    seal.write(kit)
    device = _device_report(report)
    device["kit"]["identity"] = seal.identity(kit)
    path = _write(tmp_path / "ok.json", device)
    merged = merge_into_run(path, report_run.report)
    assert any(e.get("measured_on", {}).get("host") == HOST for e in merged["engines"])


# -- 4. device rows only against their own device; a stand-in never fails a gate ---------------


def test_the_documented_flow_baseline_with_a_device_row_ci_without_a_device(report, tmp_path):
    base = merge(report, _device_report(report), tmp_path / "d.json")
    stand_in = _device_report(report, name="tensorrt-int8-kit-onnxruntime")
    stand_in["measured_by"] = "onnxruntime"
    stand_in["engine"]["target"] = "onnxruntime"
    base = merge(base, stand_in, tmp_path / "s.json")
    result = compare(base, report, RegressionTolerance())  # CI: no device, a fresh validation
    assert not result.regressions, [(r.engine, r.delta) for r in result.regressions]
    shown = {r.engine: r.status for r in result.rows if r.metric == "engine"}
    assert shown == {"tensorrt-int8": "not compared here",
                     "tensorrt-int8-kit-onnxruntime": "not compared here"}  # fmt: skip
    # another device's row of the same engine: not compared here either
    other = merge(report, _device_report(report, host="jetson-nano"), tmp_path / "n.json")
    result = compare(base, other, RegressionTolerance())
    assert not result.regressions
    assert any(r.engine == "tensorrt-int8" and r.status == "not compared here" for r in result.rows)
    # the same device, worse: judged (a real device row still gates)
    worse = copy.deepcopy(_device_report(report))
    worse["accuracy"]["agreement_fraction"] -= 0.2
    worse_report = merge(report, worse, tmp_path / "w.json")
    result = compare(base, worse_report, RegressionTolerance())
    assert any(r.engine == "tensorrt-int8" for r in result.regressions)
    # a stand-in measured worse on the same machine is shown, never a regression
    slow = copy.deepcopy(stand_in)
    slow["accuracy"]["agreement_fraction"] -= 0.2
    result = compare(base, merge(base, slow, tmp_path / "s2.json"), RegressionTolerance())
    assert not [r for r in result.regressions if r.engine == "tensorrt-int8-kit-onnxruntime"]


# -- 5. model identity by content; damaged reports ----------------------------------------------


def _safetensors(path: Path, metadata: dict[str, str]) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(path), metadata=metadata)
    return path


def test_the_report_records_the_tensor_hash_of_its_weights(validated):
    from dense_edge.validate.provenance import weights_tensor_sha256

    run_dir, report = validated
    assert report["model"]["weights_tensor_sha256"] == weights_tensor_sha256(run_dir.model)
    assert report["model"]["weights_tensor_sha256"] is not None
    load = report["environment"]["load_average"]
    assert len(load["start"]) == len(load["end"]) == 3


def test_identical_tensors_are_the_same_model_whatever_the_file_says(report, tmp_path):
    from dense_edge.fileio import sha256_file
    from dense_edge.validate.provenance import tensor_sha256

    a = _safetensors(tmp_path / "a.safetensors", {"created": "2026-12-02T04:00:00"})
    b = _safetensors(tmp_path / "b.safetensors", {"created": "2026-12-02T05:00:00"})
    assert sha256_file(a) != sha256_file(b) and tensor_sha256(a) == tensor_sha256(b)
    retrained = copy.deepcopy(report)
    retrained["model"]["weights_sha256"] = "f" * 64  # another file, the same tensors
    notes = compare(report, retrained, RegressionTolerance()).notes
    assert not any("different model weights" in n for n in notes), notes
    changed = copy.deepcopy(retrained)
    changed["model"]["weights_tensor_sha256"] = "e" * 64
    assert any(
        "different model weights" in n
        for n in compare(report, changed, RegressionTolerance()).notes
    )


def test_an_engine_made_again_from_identical_weights_is_the_same_engine(validated, tmp_path):
    """Export embeds its manifest (with the time it was made) in the ONNX model, and OpenVINO's
    IR and ONNX Runtime's model carry it on: the files of an engine rebuilt from the same weights
    differ, the engine does not. Its content hash says so, and ``report compare`` still times it
    side by side (on main it said "rebuilt after its report was made" and fell back to the
    reports)."""
    import time

    from dense_edge.compile.stage import compile_stage
    from dense_edge.export import export_stage
    from dense_edge.fileio import sha256_file
    from dense_edge.report.regression import side_by_side_pairs
    from dense_edge.validate.provenance import engine_content_sha256

    shutil.copytree(validated[0].root, tmp_path / "run")
    run = RunDir.at(tmp_path / "run")
    report = json.loads((run.report / "report.json").read_text())
    report["run_dir"] = str(run.root)
    path = _write(run.report / "report.json", report)
    row = next(e for e in report["engines"] if e["name"] == "onnxruntime-fp32")
    engine = run.engine("onnxruntime", "fp32")
    before = sha256_file(engine / "model.onnx")
    assert row["engine_content_sha256"] == engine_content_sha256(engine) is not None

    time.sleep(1.1)  # the embedded manifest's "created" has one-second resolution
    recipe = digits_recipe(**VALIDATE_FAST)
    export_stage(recipe, run, force=True)
    compile_stage(recipe, run, "onnxruntime", "fp32", force=True)
    assert sha256_file(engine / "model.onnx") != before  # other bytes: the embedded manifest
    assert engine_content_sha256(engine) == row["engine_content_sha256"]
    pairs, why = side_by_side_pairs(report, path, report, path)
    assert "onnxruntime-fp32" in [p.name for p in pairs], why
    assert not any("onnxruntime-fp32" in w for w in why), why

    ov = run.engine("openvino", "int8")  # one weight changed: another engine
    data = bytearray((ov / "model.bin").read_bytes())
    data[len(data) // 2] ^= 0x40
    ours = engine_content_sha256(ov)
    (ov / "model.bin").write_bytes(bytes(data))
    assert engine_content_sha256(ov) not in (ours, None)
    rebuilt = copy.deepcopy(report)
    for e in rebuilt["engines"]:
        if e["name"] == "openvino-int8":
            e["engine_content_sha256"] = engine_content_sha256(ov)
    notes = compare(report, rebuilt, RegressionTolerance()).notes
    assert "engines whose content changed: openvino-int8" in notes, notes
    assert any(n.startswith("identical engines") and "onnxruntime-int8" in n for n in notes)


def test_compare_of_a_damaged_report_is_one_line_not_a_traceback(report, tmp_path):
    base = _write(tmp_path / "base.json", report)
    damage = {
        "no p50": lambda r: r["engines"][1]["latency"]["1"].pop("p50_ms"),
        "string accuracy": lambda r: r["engines"][1]["accuracy"].update(top1_fraction="97%"),
        "engine not an object": lambda r: r["engines"].append("engine"),
        "gpu a string": lambda r: r["environment"].update(gpu="A100"),
    }
    for what, spoil in damage.items():
        new = copy.deepcopy(report)
        spoil(new)
        path = _write(tmp_path / f"{what}.json", new)
        result = CliRunner().invoke(cli, ["report", "compare", str(base), str(path),
                                          "--reports-only"])  # fmt: skip
        assert result.exit_code == 2, (what, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), what
        assert len(result.output.strip().splitlines()) == 1, (what, result.output)


def test_tensor_hash_of_a_damaged_file_is_none(tmp_path):
    from dense_edge.validate.provenance import tensor_sha256

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    assert tensor_sha256(bad) is None
    assert not math.isnan(0.0)


# -- 6. tables people decide from -----------------------------------------------------------------


def test_tables_mark_clocks_counts_units_and_the_machines_load(report):
    from dense_edge.pipeline import EngineCheck
    from dense_edge.report import tables
    from dense_edge.validate.budgets import describe_check

    planted = merge(report, _device_report(report), Path("d.json"))
    columns, rows = tables.summary_columns(planted), tables.summary_rows(planted)
    clock = columns.index("clock")
    assert all(r[clock] for r in rows if r[1] != tables.KIT_STATUS)  # a clock on every row
    device = next(r for r in rows if r[0] == "tensorrt-int8")
    assert "(300 images)" in device[columns.index("top-1")]  # the header says 359
    assert all("images)" not in str(r[columns.index("top-1")]) for r in rows if r is not device)
    md, page = markdown.render(planted), html.render(planted)
    for text in (md, page):
        assert "timed on:" in text and "load average" in text and "at the end" in text
    assert "last column" not in tables.clock_note(planted)
    # a budget line states value, rule and verdict, never rounding into a contradiction
    line = describe_check({"budget": "max_top1_drop", "batch": None, "value": 1.005,
                           "limit": 1.0, "unit": "points", "status": "fail"})  # fmt: skip
    assert line == "top-1 drop 1.005 points (limit <= 1.000 points): fail", line
    line = describe_check({"budget": "min_agreement", "batch": None, "value": 0.9582,
                           "limit": 0.98, "unit": "fraction", "status": "fail"})  # fmt: skip
    assert line == "agreement 95.82% (limit >= 98.00%): fail", line
    # the export table: percentages, as everywhere else people read accuracy
    row = EngineCheck("openvino", "int8", "int8", Path("x"), 2**20, 0.9916, 0.99721, 0.5).row()
    assert row[4:6] == ["99.16%", "99.72%"]


def test_plot_markers_at_one_spot_stay_visible(report):
    """Two engines at the same accuracy and speed: the first one's marker shows as much of its
    colour as when the two stand apart (none hides the other)."""
    import base64
    import io

    from PIL import Image

    from dense_edge.targets.registry import get

    want = tuple(int(get("onnxruntime").color[i : i + 2], 16) for i in (1, 3, 5))

    def pixels(r) -> int:  # type: ignore[no-untyped-def]
        png = base64.b64decode(html.accuracy_latency_plot(r, "1"))
        image = Image.open(io.BytesIO(png)).convert("RGB")
        return sum(n for n, c in image.getcolors(1 << 20) if
                   sum(abs(a - b) for a, b in zip(c, want, strict=True)) < 60)  # fmt: skip

    twin = copy.deepcopy(report)
    rows = {e["name"]: e for e in twin["engines"]}
    rows["openvino-int8"]["accuracy"] = copy.deepcopy(rows["onnxruntime-int8"]["accuracy"])
    rows["openvino-int8"]["latency"] = copy.deepcopy(rows["onnxruntime-int8"]["latency"])
    apart = copy.deepcopy(twin)
    for lat in next(e for e in apart["engines"] if e["name"] == "openvino-int8")[
        "latency"
    ].values():
        lat["p50_ms"] *= 3
    assert pixels(twin) >= 0.8 * pixels(apart)  # main: 50 of 100 (one marker hid the other)


# -- 7. the gate under load: CPU time beside wall time --------------------------------------------


def test_a_wall_only_slowdown_is_not_a_regression_but_more_cpu_work_is(report):
    from dense_edge.validate.side_by_side import PairedTiming

    def status(wall, cpu):  # type: ignore[no-untyped-def]
        t = PairedTiming("openvino-int8", 1, tuple(1.0 for _ in wall), tuple(wall), tuple(wall),
                         cpu_ratios=tuple(cpu))  # fmt: skip
        rows = compare(report, report, RegressionTolerance(), paired=[t]).rows
        return next(r for r in rows if "side by side" in r.metric and r.engine == t.name)

    waited = status(
        [1.16, 1.2, 1.15, 1.18, 1.17, 1.2, 1.16], [1.0, 0.99, 1.01, 1.0, 1.0, 1.02, 1.0]
    )
    assert waited.status == "ok" and "wall clock only" in waited.delta
    worked = status([1.4, 1.45, 1.38, 1.5, 1.42, 1.4, 1.44], [1.35, 1.4, 1.3, 1.38, 1.4, 1.36, 1.4])
    assert worked.status == "REGRESSION" and "CPU time x1.38" in worked.delta


def test_an_engine_whose_source_was_made_again_from_other_inputs_is_stale(tmp_path):
    """The stage records alone (no runtime): an engine records the fingerprint of the stage
    that made its source model; once that stage is made again from other inputs, the engine is
    not the run's current one."""
    from dense_edge import bundle
    from dense_edge.fileio import sha256_file
    from dense_edge.stages import Stage
    from dense_edge.validate.provenance import refuse_stale, stale_reason

    source = tmp_path / "int8" / "onnxruntime"

    def calibrate(samples: int) -> str:
        stage = Stage("int8/onnxruntime", source, {"samples": samples})
        with stage.build() as tmp:
            (tmp / "model.onnx").write_bytes(b"model %d" % samples)
        return stage.fingerprint

    built_from = calibrate(300)
    engine = tmp_path / "engines" / "onnxruntime-int8"
    engine.mkdir(parents=True)
    (engine / bundle.MANIFEST).write_text(json.dumps({
        "source": {"model": "int8/onnxruntime/model.onnx",
                   "sha256": sha256_file(source / "model.onnx")},
        "stage": {"fingerprint": "x", "inputs": {"source": built_from}},
    }))  # fmt: skip
    assert stale_reason(tmp_path, engine) is None
    refuse_stale(tmp_path, [engine])  # current: no error
    calibrate(64)  # calibrate --force with other settings
    assert "other inputs" in (stale_reason(tmp_path, engine) or "")
    with pytest.raises(StageError, match="compile --target onnxruntime --precision int8 --force"):
        refuse_stale(tmp_path, [engine])
