"""ONNX export: clean, checked, self-describing, proven equal to PyTorch; bad input refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from dense_edge import models, onnxfile
from dense_edge.cli import cli
from dense_edge.errors import CheckFailed, StageError, UserError, WeightsError
from dense_edge.export import export_stage
from dense_edge.rundir import RunDir
from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner
from tests.conftest import DIGITS_SET, digits_recipe


@pytest.fixture()
def run(tmp_path, digits_run):
    """A private copy of the trained digits run (tests here write into it)."""
    shutil.copytree(digits_run / "model", tmp_path / "model")
    return RunDir.at(tmp_path)


def _recipe(**over):
    return digits_recipe(**over)


def test_digits_export_passes_parity_and_checks(run):
    result = export_stage(_recipe(), run)
    assert result.path == run.root / "onnx" / "model.onnx"
    p = result.parity
    assert p["passed"] and p["max_abs_error"] <= 1e-4 and p["top1_agreement"] == 1.0
    assert p["inputs"] == "digits test split" and p["samples"] == 64
    assert json.loads((run.onnx / "parity.json").read_text())["passed"]
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert "Identity" not in ops and "Dropout" not in ops
    assert [i.name for i in model.graph.input] == ["images"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert model.opset_import[0].version == 20


def test_the_onnx_file_alone_describes_the_model(run):
    result = export_stage(_recipe(), run)
    manifest = onnxfile.read_manifest(result.path)
    assert manifest["classes"] == [str(i) for i in range(10)]
    assert manifest["input_shape"] == [1, 8, 8]
    assert manifest["preprocess"]["mean"] == [0.3053]
    assert len(manifest["checkpoint_sha256"]) == 64
    props = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert json.loads(props["dense_edge.classes"])[3] == "3"


def test_batch_axis_is_dynamic_and_spatial_fixed_by_default(run):
    result = export_stage(_recipe(), run)
    dims = onnx.load(str(result.path)).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 8, 8]
    with OnnxRuntimeRunner(result.path) as r:
        for n in (1, 5):
            assert r.infer(np.zeros((n, 1, 8, 8), np.float32)).shape == (n, 10)


def test_dynamic_hw(run):
    result = export_stage(_recipe(**{"export.dynamic_hw": True}), run)
    dims = onnx.load(str(result.path)).graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_param
    with OnnxRuntimeRunner(result.path) as r:
        assert r.infer(np.zeros((2, 1, 16, 16), np.float32)).shape == (2, 10)


def test_fp16_export_keeps_float32_io(run):
    result = export_stage(_recipe(), run, precision="fp16")
    assert result.path == run.root / "onnx-fp16" / "model.onnx"
    model = onnx.load(str(result.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    inits = {i.data_type for i in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in inits
    assert result.parity["passed"] and result.parity["top1_agreement"] >= 0.98
    assert onnxfile.read_manifest(result.path)["precision"] == "fp16"


@pytest.mark.slow
def test_torch_export_based_exporter(run):
    pytest.importorskip("onnxscript")
    result = export_stage(_recipe(**{"export.exporter": "dynamo", "export.opset": 18}), run)
    assert result.parity["passed"]
    assert onnx.load(str(result.path)).opset_import[0].version == 18


def test_reused_when_current(run):
    first = export_stage(_recipe(), run)
    assert not first.reused
    assert export_stage(_recipe(), run).reused
    with pytest.raises(StageError, match=r"other inputs: export\.opset 20 -> 16"):
        export_stage(_recipe(**{"export.opset": 16}), run)
    assert not export_stage(_recipe(**{"export.opset": 16}), run, force=True).reused


def test_parity_failure_exits_non_zero_and_leaves_no_model(run):
    recipe = _recipe(**{"export.parity.max_abs_error": 1e-12})
    with pytest.raises(CheckFailed, match="ONNX parity failed"):
        export_stage(recipe, run)
    assert not (run.onnx / "model.onnx").exists()
    rejected = run.root / "rejected" / "onnx"
    assert (rejected / "model.onnx").exists()
    assert not json.loads((rejected / "parity.json").read_text())["passed"]
    assert not [p for p in run.root.iterdir() if "dense-edge-" in p.name]  # no temp folders


@pytest.mark.parametrize("opset", [11, 21])
def test_opset_no_runtime_accepts(run, opset):
    with pytest.raises(UserError, match=f"export.opset {opset} is not accepted"):
        export_stage(_recipe(**{"export.opset": opset}), run)


def test_weights_for_another_architecture(tmp_path):
    torch.save(models.create("densenet-bc-100-12").state_dict(), tmp_path / "w.pth")
    recipe = _recipe(**{"model.weights": str(tmp_path / "w.pth")})
    with pytest.raises(WeightsError, match="look like densenet-bc-100-12"):
        export_stage(recipe, RunDir.at(tmp_path / "run").create())


def test_weights_with_wrong_class_count(tmp_path):
    torch.save(models.create("densenet-digits", num_classes=7).state_dict(), tmp_path / "w.pth")
    recipe = _recipe(**{"model.weights": str(tmp_path / "w.pth")})
    with pytest.raises(WeightsError, match="7 classes"):
        export_stage(recipe, RunDir.at(tmp_path / "run").create())


def test_cli_errors_are_one_line(tmp_path, run):
    runner = CliRunner()
    cases = [
        (["--opset", "30"], "export.opset 30"),
        (["--set", "preprocess.input_size=[2,2]"], "too small for densenet-digits"),
        (["--weights", str(tmp_path / "missing.pth")], "model.weights: file not found"),
    ]
    for args, message in cases:
        result = runner.invoke(cli, ["export", "--out", str(run.root), *args])
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(cli, ["export", "--out", str(blocker / "run")])
    assert result.exit_code == 2 and "cannot create directory" in result.output


def test_cli_export_prints_the_checked_model(run):
    result = CliRunner().invoke(cli, ["export", "--out", str(run.root), "--set", DIGITS_SET])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "onnx (onnxruntime)" in line)
    cells = [c.strip() for c in row.split("│")]
    assert cells[2] == "fp32" and cells[6] == "100.00%"  # agreement with PyTorch
