"""The public Python API: the README's snippet runs as written, on the digits model."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO


def _readme_snippet() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- python-api:.*?-->\n```python\n(.*?)```", readme, re.S)
    assert block, "README lost its Python API snippet"
    return block.group(1)


def test_the_readme_snippet_runs_as_written(digits_exported, tmp_path, monkeypatch):
    onnx_dir = tmp_path / "runs" / "digits" / "onnx"
    onnx_dir.mkdir(parents=True)
    shutil.copy(digits_exported / "onnx" / "model.onnx", onnx_dir / "model.onnx")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {"__name__": "readme"}
    exec(compile(_readme_snippet(), "README.md", "exec"), scope)

    from sklearn.datasets import load_digits

    # the engine answers for the model: the float model's own labels on the same images
    labels = load_digits().target[-100:]
    predicted = np.asarray(scope["predicted"])
    assert (predicted == labels).mean() >= 0.9
    out = tmp_path / "runs" / "digits" / "api"
    assert (out / "model.int8.xml").is_file() and (out / "model.int8.bin").is_file()
    assert (out / "ort-int8" / "manifest.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]  # nothing in the repository root


def test_api_results_match_the_calibrate_stage(run_copy):
    """quantize() and the calibrate stage are one code path: same images, same model."""
    import onnx

    import dense_edge
    from dense_edge import onnxfile
    from dense_edge.calibrate.dataset import load_calibration_set
    from dense_edge.calibrate.stage import calibrate_stage
    from dense_edge.data import Preprocess
    from tests.conftest import digits_recipe

    recipe = digits_recipe(**{"calibration.method": "minmax"})
    staged = calibrate_stage(recipe, run_copy, profiles=["onnxruntime"])[0]
    pre = Preprocess.from_dict(onnxfile.read_manifest(run_copy.onnx_model)["preprocess"])
    images = load_calibration_set(recipe, pre).images
    mine = dense_edge.quantize(run_copy.onnx_model, images, profile="onnxruntime", method="minmax")
    theirs = onnx.load(str(staged.path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in theirs.graph.initializer}
    got = {i.name: onnx.numpy_helper.to_array(i) for i in mine.graph.initializer}
    assert inits.keys() == got.keys()
    for name, value in inits.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_check_names_violations_and_bad_input(digits_exported, tmp_path):
    import dense_edge
    from dense_edge.errors import UserError

    float_model = digits_exported / "onnx" / "model.onnx"
    report = dense_edge.check(float_model, profile="tensorrt")
    assert not report.ok and report.violations[0].rule == "quantized"
    with pytest.raises(UserError, match="unknown profile 'tflite'"):
        dense_edge.check(float_model, profile="tflite")
    with pytest.raises(UserError, match=r"missing\.onnx: model not found"):
        dense_edge.quantize(tmp_path / "missing.onnx", [np.zeros((8, 8), np.uint8)])
    with pytest.raises(UserError, match="output="):
        dense_edge.quantize(float_model, [np.zeros((8, 8), np.uint8)], profile="openvino")


def test_import_stays_light():
    code = (
        "import sys, dense_edge; dense_edge.quantize; "
        "print(sorted({'numpy', 'onnx', 'onnxruntime', 'openvino', 'nncf', 'torch'} "
        "& set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
