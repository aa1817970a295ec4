"""Compiling engine bundles for the CPU targets; bad input is refused with a clear message."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dense_edge import bundle
from dense_edge.cli import cli
from dense_edge.compile.stage import compile_stage
from dense_edge.errors import MissingDependencyError, StageError, UserError
from dense_edge.targets.registry import load_runner
from tests.conftest import DIGITS_SET, digits_recipe


def _test_images(run, n=64):
    from dense_edge.data import Preprocess, load_splits

    manifest = json.loads((run.model / "manifest.json").read_text())
    pre = Preprocess.from_dict(manifest["preprocess"])
    test = load_splits(digits_recipe(), pre).test
    return test.to_array(pre)[:n]


def _float_top1(run, x):
    from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner

    with OnnxRuntimeRunner(run.onnx_model) as r:
        return r.infer_all(x, 64).argmax(1)


@pytest.mark.parametrize(
    ("target", "precision", "ran"),
    [("onnxruntime", "fp32", "fp32"), ("onnxruntime", "fp16", "fp"),
     ("onnxruntime", "int8", "int8"),
     ("openvino", "fp32", "fp32"), ("openvino", "fp16", ""), ("openvino", "bf16", ""),
     ("openvino", "int8", "int8")],
)  # fmt: skip
def test_each_cpu_engine_builds_loads_and_agrees(run_copy, target, precision, ran):
    result = compile_stage(digits_recipe(), run_copy, target, precision)
    assert result.path == run_copy.root / "engines" / f"{target}-{precision}"
    m = bundle.read(result.path)  # verifies every file's sha256
    assert m["target"] == target and m["precision"] == precision
    assert m["precision_run"].startswith(ran)
    assert m["classes"] == [str(i) for i in range(10)] and m["input_shape"] == [1, 8, 8]
    assert m["runtime"]["name"] == target and m["runtime"]["version"]
    for name, entry in m["files"].items():
        assert (result.path / name).stat().st_size == entry["bytes"]
    x = _test_images(run_copy)
    with load_runner(result.path) as runner:
        got = runner.infer_all(x, 16).argmax(1)
    assert (got == _float_top1(run_copy, x)).mean() >= 0.95


def test_openvino_fp32_really_runs_fp32(run_copy):
    """OpenVINO runs "fp32" models in bf16 on bf16-capable CPUs unless told not to."""
    m = compile_stage(digits_recipe(), run_copy, "openvino", "fp32").manifest
    assert m["config"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert set(m["runtime_precisions"]["Convolution"]) == {"f32"}


def test_engines_are_reused_or_refused(run_copy):
    recipe = digits_recipe()
    assert not compile_stage(recipe, run_copy, "onnxruntime", "fp32").reused
    assert compile_stage(recipe, run_copy, "onnxruntime", "fp32").reused
    other = recipe.model_copy(
        update={"targets": [recipe.targets[0].model_copy(update={"threads": 1})]}
    )
    changed = r"made from other inputs: settings\.threads null -> 1.*--force"
    with pytest.raises(StageError, match=changed):
        compile_stage(other, run_copy, "onnxruntime", "fp32")
    rebuilt = compile_stage(other, run_copy, "onnxruntime", "fp32", force=True)
    assert not rebuilt.reused and rebuilt.manifest["threads"] == 1


def test_bad_targets_precisions_and_devices(run_copy):
    recipe = digits_recipe()
    with pytest.raises(UserError, match="unknown target 'tflite'"):
        compile_stage(recipe, run_copy, "tflite", "fp32")
    with pytest.raises(UserError, match="does not build bf16"):
        compile_stage(recipe, run_copy, "onnxruntime", "bf16")
    ort_cuda = recipe.model_copy(
        update={"targets": [recipe.targets[0].model_copy(update={"device": "cuda"})]}
    )
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(MissingDependencyError, match="CUDAExecutionProvider is not installed"):
            compile_stage(ort_cuda, run_copy, "onnxruntime", "fp32")
    ov_npu = recipe.model_copy(
        update={"targets": [recipe.targets[1].model_copy(update={"device": "NPU"})]}
    )
    import openvino

    if "NPU" not in openvino.Core().available_devices:
        with pytest.raises(UserError, match="device 'NPU' is not present"):
            compile_stage(ov_npu, run_copy, "openvino", "fp32")


def test_a_corrupted_bundle_is_refused(run_copy):
    result = compile_stage(digits_recipe(), run_copy, "openvino", "fp32")
    xml = result.path / "model.xml"
    xml.write_text(xml.read_text()[:200])
    with pytest.raises(UserError, match="does not have the size its manifest lists"):
        load_runner(result.path)
    # Even without the checksum, OpenVINO's own failure becomes a one-line error.
    with pytest.raises(UserError, match="OpenVINO cannot load the engine"):
        load_runner(result.path, verify=False).activate()


def test_int8_without_calibration_data(run_copy, tmp_path):
    recipe = digits_recipe(**{"calibration.source": str(tmp_path)})
    with pytest.raises(UserError, match="calibration folder holds no images"):
        compile_stage(recipe, run_copy, "onnxruntime", "int8")
    assert not (run_copy.root / "engines" / "onnxruntime-int8").exists()


def test_cli_export_prints_the_engine_table(run_copy):
    result = CliRunner().invoke(
        cli, ["export", "--out", str(run_copy.root), "--target", "onnxruntime",
              "--precision", "int8", "--set", DIGITS_SET],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "onnxruntime engines" in result.output and "p50 ms" in result.output
    engine = run_copy.root / "engines" / "onnxruntime-int8"
    assert (engine / "manifest.json").exists()
    assert f"engine: {engine} (int8, runs in int8" in result.output
    report = json.loads((run_copy.root / "report" / "report.json").read_text())
    assert [e["name"] for e in report["engines"]] == ["pytorch-fp32", "onnxruntime-int8"]
    assert "report updated" in result.output


def test_cli_compile_refuses_an_existing_engine_from_other_inputs(run_copy):
    runner = CliRunner()
    base = ["compile", "--out", str(run_copy.root), "--target", "openvino", "--precision", "fp32",
            "--set", DIGITS_SET]  # fmt: skip
    assert runner.invoke(cli, base).exit_code == 0
    again = runner.invoke(cli, base)
    assert again.exit_code == 0 and "(reused)" in again.output
    other = runner.invoke(cli, [*base, "--threads", "1"])
    assert other.exit_code == 2 and "--force" in other.output
    assert runner.invoke(cli, [*base, "--threads", "1", "--force"]).exit_code == 0
