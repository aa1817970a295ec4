"""The kit's trtexec.sh and polygraphy.sh, run for real against small stand-ins for NVIDIA's tools.

Each stand-in ``trtexec`` prints the banner the real one prints first on every run (NVIDIA
samples/common/logging.h: ``&&&& RUNNING TensorRT.trtexec [TensorRT v<NV_TENSORRT_VERSION>]``,
``[b<build>]`` appended from 10.4, ``# <command line>``; NV_TENSORRT_VERSION is
major*1000+minor*100+patch up to 9.x and major*10000+minor*100+patch from 10.0) and records the
arguments of a build, so the tests see exactly what the kit would have run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from dense_edge.targets.tensorrt.compiler import make_plan

# (label, NV_TENSORRT_VERSION, build tag as trtexec prints it) for TensorRT releases people run:
BANNERS = {
    "8.6.2": "&&&& RUNNING TensorRT.trtexec [TensorRT v8602]",  # JetPack 6.0
    "10.3.0": "&&&& RUNNING TensorRT.trtexec [TensorRT v100300]",  # JetPack 6.1 / 6.2
    "10.13.0": "&&&& RUNNING TensorRT.trtexec [TensorRT v101300] [b35]",
    "11.1.0": "&&&& RUNNING TensorRT.trtexec [TensorRT v110100] [b106]",
    "10.7.0": "&&&& RUNNING TensorRT.trtexec [TensorRT v100700] [b23]",
    "10.8.0": "&&&& RUNNING TensorRT.trtexec [TensorRT v100800] [b43]",
    "11.4.0": "&&&& RUNNING TensorRT.trtexec [TensorRT v110400] [b106]",
    "11.4.1": "&&&& RUNNING TensorRT.trtexec [TensorRT v110401] [b7]",
}
SYSTEM_PATH = "/usr/bin:/bin"


def _settings(**kw):
    base = {"min_batch": 1, "opt_batch": None, "max_batch": 16, "workspace_mb": 512,
            "optimization_level": 3, "dla_core": None}  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def _kit(tmp_path: Path, precision: str, trt86: str | None = None, **settings) -> Path:
    kit = tmp_path / "kit"
    kit.mkdir()
    plan = replace(make_plan(precision, [1, 8, 8], _settings(**settings)), onnx_trt86=trt86)
    for name, text in (("trtexec.sh", plan.trtexec_script()),
                       ("polygraphy.sh", plan.polygraphy_script())):  # fmt: skip
        (kit / name).write_text(text)
    return kit


def _standin(folder: Path, banner: str, log: Path, name: str = "trtexec") -> Path:
    """A trtexec that prints the real banner (and help) and records a build's arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text(f"""#!/bin/bash
echo {shlex.quote(banner)} "# $0 $*"
if [ "${{1:-}}" = --help ]; then echo "=== Model Options ==="; exit 0; fi
printf '%s\\n' "$@" > {shlex.quote(str(log))}
echo "&&&& PASSED TensorRT.trtexec"
""")
    tool.chmod(0o755)
    return tool


def _run(kit: Path, script: str, path: str, *args: str, **env: str):
    clean = {k: v for k, v in os.environ.items() if k not in ("TRTEXEC", "TENSORRT_BIN")}
    return subprocess.run(
        ["/bin/bash", str(kit / script), *args], capture_output=True, text=True,
        env={**clean, "PATH": path, **env}, cwd=kit.parent,
    )  # fmt: skip


BASE = ["--saveEngine=model.engine", "--minShapes=images:1x1x8x8", "--optShapes=images:1x1x8x8",
        "--maxShapes=images:16x1x8x8", "--memPoolSize=workspace:512",
        "--builderOptimizationLevel=3", "--timingCacheFile=timing.cache"]  # fmt: skip
EXPECTED = {
    ("int8", "8.6.2"): ["--onnx=model.onnx", *BASE, "--int8", "--fp16"],
    ("int8", "10.3.0"): ["--onnx=model.onnx", *BASE, "--stronglyTyped"],
    ("int8", "10.13.0"): ["--onnx=model.onnx", *BASE, "--stronglyTyped"],
    ("int8", "11.1.0"): ["--onnx=model.onnx", *BASE],
    ("fp16", "8.6.2"): ["--onnx=model.fp32.onnx", *BASE, "--fp16"],
    ("fp16", "10.3.0"): ["--onnx=model.onnx", *BASE, "--stronglyTyped"],
    ("fp16", "11.1.0"): ["--onnx=model.onnx", *BASE],
    ("fp32", "8.6.2"): ["--onnx=model.onnx", *BASE, "--noTF32"],
    ("fp32", "10.13.0"): ["--onnx=model.onnx", *BASE, "--stronglyTyped", "--noTF32"],
    ("fp32", "11.1.0"): ["--onnx=model.onnx", *BASE, "--noTF32"],
}


@pytest.mark.parametrize(("precision", "version"), list(EXPECTED))
def test_trtexec_sh_reads_the_banner_and_passes_that_versions_flags(tmp_path, precision, version):
    kit = _kit(tmp_path, precision)
    log = tmp_path / "args.txt"
    _standin(tmp_path / "bin", BANNERS[version], log)
    result = _run(kit, "trtexec.sh", f"{tmp_path / 'bin'}:{SYSTEM_PATH}")
    assert result.returncode == 0, result.stderr
    assert f"TensorRT {version} ({tmp_path / 'bin' / 'trtexec'})" in result.stdout
    assert log.read_text().splitlines() == EXPECTED[precision, version]


@pytest.mark.parametrize("precision", ["int8", "fp16", "fp32"])
def test_an_8_6_kit_builds_its_opset_17_model_and_10_x_the_others(tmp_path, precision):
    """A kit with model.trt86.onnx (opset 17, float32 scales) builds that on 8.6, int8 with
    --int8 --fp16; 10.x and 11.x never see it."""
    kit = _kit(tmp_path, precision, trt86="model.trt86.onnx")
    log = tmp_path / "args.txt"
    flags = {"int8": ["--int8", "--fp16"], "fp16": ["--fp16"], "fp32": ["--noTF32"]}[precision]
    for version in ("8.6.2", "10.3.0", "11.1.0"):
        _standin(tmp_path / "bin", BANNERS[version], log)
        assert _run(kit, "trtexec.sh", f"{tmp_path / 'bin'}:{SYSTEM_PATH}").returncode == 0
        args = log.read_text().splitlines()
        if version == "8.6.2":
            assert args == ["--onnx=model.trt86.onnx", *BASE, *flags]
        else:
            assert args[0] != "--onnx=model.trt86.onnx"


def test_trtexec_sh_finds_jetpacks_trtexec_off_path_and_passes_extra_arguments(tmp_path):
    kit = _kit(tmp_path, "int8")
    log = tmp_path / "args.txt"
    jetpack = tmp_path / "usr-src-tensorrt-bin"  # stands for /usr/src/tensorrt/bin
    _standin(jetpack, BANNERS["10.3.0"], log)
    result = _run(kit, "trtexec.sh", SYSTEM_PATH, "--verbose", TENSORRT_BIN=str(jetpack))
    assert result.returncode == 0, result.stderr
    assert f"({jetpack / 'trtexec'})" in result.stdout
    assert log.read_text().splitlines() == [*EXPECTED["int8", "10.3.0"], "--verbose"]


@pytest.mark.skipif(Path("/usr/src/tensorrt/bin/trtexec").exists(), reason="trtexec is installed")
def test_trtexec_sh_without_trtexec_says_what_is_missing_and_how_to_install_it(tmp_path):
    kit = _kit(tmp_path, "int8")
    result = _run(kit, "trtexec.sh", SYSTEM_PATH)
    assert result.returncode == 127
    assert "trtexec is not installed: not on PATH and not in /usr/src/tensorrt/bin" in result.stderr
    assert "sudo apt install nvidia-tensorrt" in result.stderr and "TRTEXEC=" in result.stderr


def test_trtexec_sh_refuses_a_tool_without_the_banner(tmp_path):
    kit = _kit(tmp_path, "int8")
    log = tmp_path / "args.txt"
    _standin(tmp_path / "bin", "TensorRT command line tool", log)
    result = _run(kit, "trtexec.sh", f"{tmp_path / 'bin'}:{SYSTEM_PATH}")
    assert result.returncode == 1 and not log.exists()
    assert "could not read the TensorRT version" in result.stderr


def test_trtexec_sh_refuses_tensorrt_older_than_8_6(tmp_path):
    kit = _kit(tmp_path, "int8")
    log = tmp_path / "args.txt"
    _standin(tmp_path / "bin", "&&&& RUNNING TensorRT.trtexec [TensorRT v8502]", log)  # JP 5.1
    result = _run(kit, "trtexec.sh", f"{tmp_path / 'bin'}:{SYSTEM_PATH}")
    assert result.returncode == 1 and not log.exists()
    assert "TensorRT 8.5.2 is older than 8.6" in result.stderr


def test_dla_kit_builds_where_nvidia_has_dla_and_is_refused_elsewhere(tmp_path):
    kit = _kit(tmp_path, "int8", min_batch=4, max_batch=4, dla_core=0)
    log = tmp_path / "args.txt"
    for version in ("8.6.2", "10.3.0", "10.7.0", "11.4.1"):
        _standin(tmp_path / "bin", BANNERS[version], log)
        assert _run(kit, "trtexec.sh", f"{tmp_path / 'bin'}:{SYSTEM_PATH}").returncode == 0
        args = log.read_text().splitlines()
        assert args[-2:] == ["--useDLACore=0", "--allowGPUFallback"]
        assert "--maxShapes=images:4x1x8x8" in args
        weak = version != "11.4.1"  # 11.4.1's DLA is strongly typed
        assert ("--int8" in args and "--fp16" in args) == weak and "--stronglyTyped" not in args
        log.unlink()
    for version in ("10.8.0", "11.1.0", "11.4.0"):
        _standin(tmp_path / "bin", BANNERS[version], log)
        result = _run(kit, "trtexec.sh", f"{tmp_path / 'bin'}:{SYSTEM_PATH}")
        assert result.returncode == 1 and not log.exists()
        assert f"TensorRT {version} cannot build for the DLA on a Jetson" in result.stderr


def _recording_tool(path: Path, log: Path, body: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/bash\n{body}printf '%s\\n' \"$*\" >> {shlex.quote(str(log))}\n")
    path.chmod(0o755)


def test_polygraphy_sh_runs_polygraphy_from_path(tmp_path):
    kit = _kit(tmp_path, "int8")
    (kit / "model.engine").write_bytes(b"engine")
    (kit / "eval").mkdir()
    (kit / "eval" / "images.npy").write_bytes(b"")
    log = tmp_path / "calls.txt"
    _recording_tool(tmp_path / "bin" / "polygraphy", log)
    _recording_tool(tmp_path / "bin" / "python3", log)
    result = _run(kit, "polygraphy.sh", f"{tmp_path / 'bin'}:{SYSTEM_PATH}", "--verbose")
    assert result.returncode == 0, result.stderr
    first, second, third = log.read_text().splitlines()
    loader = "--data-loader-script polygraphy_data.py"
    assert first == f"run model.fp32.onnx --onnxrt {loader} --save-outputs reference.json"
    assert second.startswith(f"run model.engine --model-type engine --trt {loader}")
    assert "--load-outputs reference.json --atol 0.3 --rtol 0.1" in second
    assert second.endswith("--save-outputs engine.json --verbose")
    assert third == "polygraphy_data.py --top1 reference.json engine.json --max-drop 2.0"


def test_polygraphy_sh_falls_back_to_python3_m_polygraphy(tmp_path):
    kit = _kit(tmp_path, "fp16")
    (kit / "model.engine").write_bytes(b"engine")
    (kit / "eval").mkdir()
    (kit / "eval" / "images.npy").write_bytes(b"")
    log = tmp_path / "calls.txt"
    # A python3 whose `import polygraphy` works: polygraphy is installed as a module only.
    _recording_tool(tmp_path / "bin" / "python3", log, 'if [ "$1" = -c ]; then exit 0; fi\n')
    result = _run(kit, "polygraphy.sh", f"{tmp_path / 'bin'}:{SYSTEM_PATH}")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert [c.split()[:3] for c in calls[:2]] == [["-m", "polygraphy", "run"]] * 2
    assert calls[2].startswith("polygraphy_data.py --top1")


def test_polygraphy_sh_without_polygraphy_or_engine_says_what_to_do(tmp_path):
    kit = _kit(tmp_path, "int8")
    empty = tmp_path / "empty"
    empty.mkdir()
    # A python3 that cannot import polygraphy (the system one may not exist or may have it).
    _recording_tool(empty / "python3", tmp_path / "python.txt", "exit 1\n")
    result = _run(kit, "polygraphy.sh", f"{empty}:{SYSTEM_PATH}")
    assert result.returncode == 127
    assert "Polygraphy is not installed" in result.stderr
    assert "python3 -m pip install polygraphy" in result.stderr
    _recording_tool(tmp_path / "bin" / "polygraphy", tmp_path / "calls.txt")
    result = _run(kit, "polygraphy.sh", f"{tmp_path / 'bin'}:{SYSTEM_PATH}")
    assert result.returncode == 1 and "no model.engine here: build it first" in result.stderr


def test_a_static_batch_model_gets_no_shape_flags_and_a_batch_1_profile(tmp_path):
    """export.dynamic_batch: false exports batch 1; trtexec refuses shape flags for it."""
    plan = make_plan("int8", [1, 8, 8], _settings(min_batch=2, max_batch=16), dynamic_batch=False)
    assert plan.profile.min == plan.profile.max == (1, 1, 8, 8) and plan.static_input
    for version in ((8, 6), (10, 3), (11, 4, 1)):
        assert not any(a.startswith(("--minShapes", "--optShapes", "--maxShapes"))
                       for a in plan.trtexec_args(version))  # fmt: skip
