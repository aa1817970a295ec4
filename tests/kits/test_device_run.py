"""A kit validating itself: the device path (``kit validate``) run here with ONNX Runtime over the
kit's Q/DQ model (labelled as not a TensorRT measurement), and ``report merge`` of its report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dense_edge import bundle
from dense_edge.cli import cli
from dense_edge.kits import evalset
from dense_edge.kits.write import write_device_kit
from dense_edge.report.merge import merge
from dense_edge.report.schema import json_schema
from dense_edge.rundir import RunDir
from dense_edge.targets.tensorrt import availability
from dense_edge.targets.tensorrt.selfcheck import l4t_release
from tests.conftest import VALIDATE_FAST, digits_recipe


@pytest.fixture(scope="module")
def kit_run(validated, tmp_path_factory):
    """A copy of the validated digits run with its tensorrt int8 kit, and a device report made
    from the kit with the ONNX Runtime runner."""
    run_dir, _ = validated
    root = tmp_path_factory.mktemp("kit") / "run"
    shutil.copytree(run_dir.root, root)
    run = RunDir.at(root)
    kit = write_device_kit(digits_recipe(**VALIDATE_FAST), run, "tensorrt", "int8")
    device = root.parent / "device_report.json"
    args = ["kit", "validate", str(kit), "--runner", "onnxruntime", "--iterations", "5",
            "--warmup", "1", "--out", str(device)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return run, kit, device, result.output


def test_the_kit_carries_validation_images_labels_and_float_logits(kit_run):
    from dense_edge.data import Preprocess, load_splits
    from dense_edge.targets.pytorch.runner import PyTorchRunner

    run, kit, _, _ = kit_run
    images, labels, logits, info = evalset.read(kit)
    manifest = json.loads((kit / bundle.MANIFEST).read_text())
    for name in ("images.npy", "labels.npy", "float_logits.npy", "eval.json"):
        assert manifest["files"][f"eval/{name}"]["sha256"] == bundle.sha256(kit / "eval" / name)
    pre = Preprocess.from_dict(json.loads((run.model / "manifest.json").read_text())["preprocess"])
    test = load_splits(digits_recipe(), pre).split("test")  # the validation split, not train
    assert info["split"] == "test" and info["samples"] == min(300, len(test)) == len(images)
    assert (
        info["of"] == len(test)
        and sum(f.stat().st_size for f in (kit / "eval").iterdir()) < 16 << 20
    )
    test_rows = {row.tobytes() for row in test.to_array(pre)}
    assert all(img.tobytes() in test_rows for img in images)  # every image is a test image
    with PyTorchRunner(run.model) as reference:
        np.testing.assert_allclose(reference.infer_all(images, 64), logits, rtol=1e-5, atol=1e-5)
    assert set(labels) <= set(range(10))


def test_device_report_metrics_are_those_of_the_kits_qdq_model(kit_run):
    from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner

    _, kit, device, output = kit_run
    report = json.loads(device.read_text())
    images, labels, float_logits, _ = evalset.read(kit)
    with OnnxRuntimeRunner(kit / "model.onnx") as ort:  # the Q/DQ model, checked independently
        logits = ort.infer_all(images, 8)
    pred, ref = logits.argmax(1), float_logits.argmax(1)
    cos = (logits * float_logits).sum(1) / (
        np.linalg.norm(logits, axis=1) * np.linalg.norm(float_logits, axis=1)
    )
    acc = report["accuracy"]
    assert acc["top1_fraction"] == pytest.approx((pred == labels).mean(), abs=1e-6)
    assert acc["agreement_fraction"] == pytest.approx((pred == ref).mean(), abs=1e-6)
    assert acc["top1_drop_points"] == pytest.approx(
        ((ref == labels).mean() - (pred == labels).mean()) * 100, abs=1e-3
    )
    assert acc["cosine"] == pytest.approx(cos.mean(), abs=1e-5)
    assert report["measured_by"] == "onnxruntime" and "not a TensorRT measurement" in report["note"]
    assert report["engine"]["target"] == "onnxruntime" and report["environment"]["tensorrt"] is None
    lat = report["latency"]["1"]
    # 5 samples: a p50 with its interval, and no p99 (too few samples to mean anything)
    assert lat["clock"].startswith("wall") and lat["p50_ms"] > 0 and lat["p99_ms"] is None
    assert "not a TensorRT measurement" in output and f"top-1 {acc['top1_fraction']:.2%}" in output


def test_report_merge_adds_the_row_marked_where_it_was_measured(kit_run, tmp_path):
    run, _, device, _ = kit_run
    root = tmp_path / "run"
    shutil.copytree(run.root, root)
    before = json.loads((root / "report" / "report.json").read_text())
    for _ in range(2):  # merging the same device report again replaces its row
        result = CliRunner().invoke(cli, ["report", "merge", str(device), "--run", str(root)])
        assert result.exit_code == 0, result.output
    after = json.loads((root / "report" / "report.json").read_text())
    assert [e["name"] for e in after["engines"]] == [
        *[e["name"] for e in before["engines"]], "tensorrt-int8-kit-onnxruntime"]  # fmt: skip
    row = after["engines"][-1]
    dev = json.loads(device.read_text())
    assert row["accuracy"] == dev["accuracy"] and row["latency"] == dev["latency"]
    assert row["measured_on"]["where"] == "device"
    assert row["measured_on"]["report"] == str(device.resolve())
    assert row["measured_on"]["host"] == dev["environment"]["host"]
    assert "tensorrt-int8-kit-onnxruntime" in (root / "report" / "report.md").read_text()
    assert "tensorrt-int8-kit-onnxruntime" in (root / "report" / "report.html").read_text()
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(after, json_schema())


def test_a_stand_in_row_is_shown_but_never_recommended_and_survives_a_new_validation(
    kit_run, tmp_path
):
    """The merged row of a kit run by ONNX Runtime says what it is, takes no part in the
    recommendation, and is kept by the next `validate` (it cannot be measured again here)."""
    from dense_edge.pipeline import validate_and_report

    run, _, device, _ = kit_run
    root = tmp_path / "run"
    shutil.copytree(run.root, root)
    result = CliRunner().invoke(cli, ["report", "merge", str(device), "--run", str(root)])
    assert result.exit_code == 0, result.output
    merged = json.loads((root / "report" / "report.json").read_text())
    row = next(e for e in merged["engines"] if e.get("measured_on"))
    assert row["stand_in"] is True
    assert all(r["engine"] != row["name"] for r in merged["recommendations"])
    assert "not a TensorRT measurement" in (root / "report" / "report.md").read_text()
    again = validate_and_report(digits_recipe(**VALIDATE_FAST), RunDir.at(root))
    kept = [e for e in again["engines"] if e["name"] == row["name"]]
    assert len(kept) == 1 and kept[0]["measured_on"] == row["measured_on"]
    assert kept[0]["accuracy"] == row["accuracy"]


def test_report_merge_waits_for_the_run_folders_lock(kit_run, tmp_path, monkeypatch):
    run, _, device, _ = kit_run
    root = tmp_path / "run"
    shutil.copytree(run.root, root)
    before = (root / "report" / "report.json").read_bytes()
    monkeypatch.setenv("DENSE_EDGE_LOCK_TIMEOUT", "0.2")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from dense_edge.rundir import RunDir, lock\n"
         "with lock(RunDir.at(sys.argv[1]), 'holder'):\n print('held', flush=True); "
         "time.sleep(30)", str(root)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(cli, ["report", "merge", str(device), "--run", str(root)])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2 and "is in use by" in result.output
    assert (root / "report" / "report.json").read_bytes() == before


def test_merge_replaces_the_kit_row_and_refuses_another_models_report(kit_run, tmp_path):
    run, _, device, _ = kit_run
    report = json.loads((run.report / "report.json").read_text())
    dev = json.loads(device.read_text())
    # The report a run without TensorRT has: a kit row for tensorrt-int8, so not passed.
    kit_row = {"name": "tensorrt-int8", "target": "tensorrt", "precision": "int8",
               "status": "kit", "kit_path": "kits/tensorrt-int8"}  # fmt: skip
    report = {**report, "engines": [*report["engines"], kit_row], "passed": False}
    # The same device report shape as a TensorRT run would write (merge logic only).
    engine = {**dev["engine"], "name": "tensorrt-int8", "target": "tensorrt"}
    trt_like = {**dev, "measured_by": "tensorrt", "engine": engine}
    merged = merge(report, trt_like, device)
    rows = [e for e in merged["engines"] if e["name"] == "tensorrt-int8"]
    assert len(rows) == 1 and rows[0]["status"] == "measured" and rows[0]["measured_on"]
    from dense_edge.validate import verdict as verdict_mod

    before, reasons = verdict_mod.verdict(report["reference_check"], report["engines"], [])
    assert before != "PASSED" and any("kit written, not built here" in r for r in reasons)
    assert not any("kit written" in r for r in merged["verdict_reasons"])
    assert merged["passed"] == (merged["verdict"] == "PASSED")
    assert rows[0]["budget_status"] in ("pass", "fail", "unverified")
    # An engine asked for but never built keeps the run from passing after a merge, too.
    still = merge({**report, "missing_engines": ["tensorrt-fp16"]}, trt_like, device)
    assert still["verdict"] != "PASSED"
    assert any("tensorrt-fp16: requested but not built" in r for r in still["verdict_reasons"])
    other = {**dev, "kit": {**dev["kit"], "run": {"weights_sha256": "0" * 64}}}
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps(other))
    result = CliRunner().invoke(cli, ["report", "merge", str(bad), "--run", str(run.root)])
    assert result.exit_code == 2 and "a kit of another model" in result.output


def test_kit_validate_refuses_a_modified_kit(kit_run, tmp_path):
    _, kit, _, _ = kit_run
    copy = tmp_path / "kit"
    shutil.copytree(kit, copy)
    labels = np.load(copy / "eval" / "labels.npy")
    np.save(copy / "eval" / "labels.npy", (labels + 1) % 10)
    result = CliRunner().invoke(cli, ["kit", "validate", str(copy), "--runner", "onnxruntime"])
    assert result.exit_code == 2
    assert "eval/labels.npy is missing or does not match its sha256" in result.output


def test_validate_sh_says_what_is_missing_in_one_line(kit_run, tmp_path):
    """validate.sh needs only python3 and numpy itself (no dense-edge, no torch); on a machine
    without TensorRT or trtexec it says which is missing, exits 2 and writes no report."""
    _, kit, _, _ = kit_run
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    script = ["/bin/bash", str(kit / "validate.sh")]
    result = subprocess.run([*script, "--out", str(tmp_path / "r.json")],
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("validate_kit: "), result.stderr
    assert re.search(r"TensorRT|trtexec", result.stderr), result.stderr
    assert not (tmp_path / "r.json").exists()
    empty = tmp_path / "bin"
    empty.mkdir()
    (empty / "python3").write_text("#!/bin/bash\nexit 1\n")  # a python3 without numpy
    (empty / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{empty}:/usr/bin:/bin"}
    result = subprocess.run(script, capture_output=True, text=True, env=env)
    assert result.returncode == 127 and "numpy is missing" in result.stderr, result.stderr


def test_jetpack_release_is_read_from_nv_tegra_release():
    text = ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
            "DATE: Wed Jan  8 01:49:37 UTC 2025")  # fmt: skip
    assert l4t_release(text) == "R36.4.3"
    assert l4t_release("# R35 (release), REVISION: 5.0, GCID: 35550185") == "R35.5.0"
    assert l4t_release("not a tegra release file") is None


@pytest.mark.skipif(not availability.available(), reason="TensorRT is not installed here")
@pytest.mark.tensorrt
@pytest.mark.cuda
def test_kit_validate_builds_and_measures_on_the_gpu(kit_run, tmp_path):  # pragma: no cover
    _, kit, _, _ = kit_run
    copy = tmp_path / "kit"
    shutil.copytree(kit, copy)
    out = tmp_path / "device.json"
    result = CliRunner().invoke(cli, ["kit", "validate", str(copy), "--iterations", "20",
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["measured_by"] == "tensorrt" and report["environment"]["tensorrt"]
    assert report["accuracy"]["agreement_fraction"] >= 0.98
    assert report["latency"]["1"]["clock"].startswith("TensorRT GPU compute")
