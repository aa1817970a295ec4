"""The kit's device check: counts from trtexec's verbose log and layer JSON (real formats).

The log lines are in the form TensorRT's builder prints them under ``trtexec --verbose`` (as
quoted in NVIDIA/TensorRT issue #3254: "Eliminating concatenation", "Generating copy for ... to
... because input is not movable." / "because of stomping hazard.", "Retargeting ... to ...");
the layer JSON is trtexec's ``--exportLayerInfo`` with ``--profilingVerbosity=detailed``. The
``cuda``-marked test runs device_check.sh on a real kit where trtexec exists; every GPU test runs
with ``python -m pytest -m "cuda or tensorrt" tests``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dense_edge.targets.tensorrt import layers

LOG = """\
[12/02/2026-05:01:02] [I] === Build Options ===
[12/02/2026-05:01:07] [V] [TRT] After concat removal: 61 layers
[12/02/2026-05:01:07] [V] [TRT] Eliminating concatenation /features/denseblock1/denselayer1/Concat
[12/02/2026-05:01:07] [V] [TRT] Retargeting /features/pool0/MaxPool_output_0 to /features/denseblock1/denselayer1/Concat_output_0
[12/02/2026-05:01:07] [V] [TRT] Eliminating concatenation /features/denseblock1/denselayer2/Concat
[12/02/2026-05:01:07] [V] [TRT] Generating copy for /features/pool0/MaxPool_output_0 to /features/denseblock1/denselayer2/Concat_output_0 because input is not movable.
[12/02/2026-05:01:07] [V] [TRT] Retargeting /features/denseblock1/denselayer1/conv2/Conv_output_0 to /features/denseblock1/denselayer2/Concat_output_0
[12/02/2026-05:01:07] [V] [TRT] Eliminating concatenation /features/denseblock1/denselayer3/Concat
[12/02/2026-05:01:07] [V] [TRT] Generating copy for /features/pool0/MaxPool_output_0 to /features/denseblock1/denselayer3/Concat_output_0 because input is not movable.
[12/02/2026-05:01:07] [V] [TRT] Generating copy for /features/denseblock1/denselayer1/conv2/Conv_output_0 to /features/denseblock1/denselayer3/Concat_output_0 because input is not movable.
[12/02/2026-05:01:07] [V] [TRT] Generating copy for /head/Mul_output_0 to logits because of stomping hazard.
[12/02/2026-05:01:07] [V] [TRT] Retargeting /features/denseblock1/denselayer2/conv2/Conv_output_0 to /features/denseblock1/denselayer3/Concat_output_0
[12/02/2026-05:01:09] [I] Engine built in 7.1 sec.
"""  # noqa: E501

LAYER_INFO = {
    "Layers": [
        {"Name": "Reformatting CopyNode for Input Tensor 0 to /features/conv0/Conv",
         "LayerType": "Reformat",
         "Inputs": [{"Name": "images", "Format/Datatype": "Row major linear FP32"}],
         "Outputs": [{"Name": "Reformatted Input Tensor 0 to /features/conv0/Conv",
                      "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
         "ParameterType": "Reformat", "Origin": "REFORMAT", "TacticValue": "0x00000000000003e8"},
        {"Name": "/features/conv0/Conv + /features/relu0/Relu", "LayerType": "CaskConvolution",
         "Inputs": [], "Outputs": [], "TacticName": "sm80_xmma_fprop_implicit_gemm"},
        {"Name": "/features/pool0/MaxPool_output_0 copy", "LayerType": "Reformat",
         "Inputs": [], "Outputs": [], "Origin": "CONCAT"},
        {"Name": "/features/transition1/Concat", "LayerType": "Concatenation", "Inputs": [],
         "Outputs": []},
    ],
    "Bindings": ["images", "logits"],
}  # fmt: skip


def test_the_log_counts_eliminated_and_copied_concats():
    got = layers.parse_log(LOG)
    assert got["concats_eliminated"] == 3
    assert got["copies"] == 4 and got["concats_with_copies"] == 3
    assert got["copy_reasons"] == {"input is not movable": 3, "of stomping hazard": 1}
    assert got["producers_retargeted"] == 3
    assert got["copied"][0] == {
        "tensor": "/features/pool0/MaxPool_output_0",
        "into": "/features/denseblock1/denselayer2/Concat_output_0",
        "reason": "input is not movable",
    }


def test_the_layer_json_counts_reformats_and_concats_left():
    got = layers.parse_layers(LAYER_INFO)
    assert got["layers"] == 4 and got["reformat_layers"] == 2 and got["concat_layers_left"] == 1
    assert got["detailed"] and got["layer_types"]["Reformat"] == 2
    names_only = layers.parse_layers({"Layers": ["a", "b"], "Bindings": []})
    assert names_only["layers"] == 2 and not names_only["detailed"]


def test_device_check_py_runs_as_a_script_on_the_files(tmp_path):
    (tmp_path / "trtexec_verbose.log").write_text(LOG)
    (tmp_path / "layer_info.json").write_text(json.dumps(LAYER_INFO))
    out = tmp_path / "device_check.json"
    result = subprocess.run(
        [sys.executable, layers.__file__, str(tmp_path / "trtexec_verbose.log"),
         str(tmp_path / "layer_info.json"), str(out)], capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Concats: 3 eliminated, 3 with copies (4 copies" in result.stdout
    assert "2 reformat, 1 Concat layers left" in result.stdout
    assert json.loads(out.read_text())["log"]["copies"] == 4


def test_device_check_sh_passes_the_verbose_flags_to_trtexec_sh(tmp_path):
    from dense_edge.targets.tensorrt.kit import DEVICE_CHECK_SH

    (tmp_path / "device_check.sh").write_text(DEVICE_CHECK_SH)
    shutil.copyfile(layers.__file__, tmp_path / "device_check.py")
    # a trtexec.sh stand-in that records its arguments and prints the real log lines
    (tmp_path / "trtexec.sh").write_text(
        f"printf '%s\\n' \"$@\" > args.txt\ncat <<'LOG'\n{LOG}LOG\n"
        f"echo '{json.dumps(LAYER_INFO)}' > layer_info.json\n"
    )
    result = subprocess.run(["bash", str(tmp_path / "device_check.sh"), "--useSpinWait"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "args.txt").read_text().split()
    assert args[:3] == ["--verbose", "--profilingVerbosity=detailed",
                        "--exportLayerInfo=layer_info.json"]  # fmt: skip
    assert args[-1] == "--useSpinWait"
    assert (
        json.loads((tmp_path / "device_check.json").read_text())["engine"]["reformat_layers"] == 2
    )


TRTEXEC = shutil.which("trtexec") or "/usr/src/tensorrt/bin/trtexec"


@pytest.mark.cuda
@pytest.mark.tensorrt
@pytest.mark.skipif(not Path(TRTEXEC).exists(), reason="no trtexec here (a TensorRT device)")
def test_device_check_sh_on_a_real_kit(run_copy):
    from dense_edge.kits.write import write_device_kit
    from tests.conftest import digits_recipe

    kit = write_device_kit(digits_recipe(), run_copy, "tensorrt", "int8")
    env = {"TRTEXEC": TRTEXEC, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["bash", str(kit / "device_check.sh")], capture_output=True,
                            text=True, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = json.loads((kit / "device_check.json").read_text())
    assert got["log"]["concats_eliminated"] > 0 and got["engine"]["detailed"]
    print(result.stdout)  # the figures, for the device note


def test_polygraphy_data_feeds_whole_batches_of_the_evaluation_images(tmp_path, monkeypatch):
    import numpy as np

    from dense_edge.targets.tensorrt import polygraphy_data

    images = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1)
    got = polygraphy_data.batches(images, 2)
    assert [b[:, 0, 0, 0].tolist() for b in got] == [[0, 1], [2, 3], [4, 0]]
    assert [len(b) for b in polygraphy_data.batches(images[:1], 4)] == [4]
    # the top-1 check: labels against both runs' logits, the drop judged against --max-drop
    monkeypatch.setattr(polygraphy_data, "HERE", tmp_path)
    (tmp_path / "eval").mkdir()
    np.save(tmp_path / "eval" / "labels.npy", np.array([0, 1, 1, 0]))
    logits = {"ref": np.eye(2)[[0, 1, 1, 0, 0]], "engine": np.eye(2)[[0, 1, 0, 0, 1]]}
    monkeypatch.setattr(polygraphy_data, "_logits", lambda path: logits[path.name])
    assert polygraphy_data.top1(Path("ref"), Path("engine"), max_drop=30.0) == 0
    assert polygraphy_data.top1(Path("ref"), Path("engine"), max_drop=20.0) == 1  # 25 points
