"""TensorRT: everything that needs no TensorRT (plan, commands, compatibility, kits) here;
building and running engines where TensorRT and a GPU exist (marked, skipped elsewhere)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from dense_edge.calibrate.checker import check
from dense_edge.cli import cli
from dense_edge.errors import MissingDependencyError, UserError
from dense_edge.targets import bundle
from dense_edge.targets.tensorrt import availability, compat
from dense_edge.targets.tensorrt.compiler import make_plan
from dense_edge.targets.tensorrt.export import write_device_kit
from dense_edge.targets.tensorrt.plan import Profile
from tests.conftest import DIGITS_SET, digits_recipe

HAVE_TRT = availability.available()
needs_trt = pytest.mark.skipif(not HAVE_TRT, reason="TensorRT is not installed here")


def _settings(**kw):
    base = {"min_batch": 1, "opt_batch": None, "max_batch": 16, "workspace_mb": 512,
            "optimization_level": 3, "dla_core": None}  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def test_profiles_come_from_the_recipe():
    plan = make_plan("int8", [3, 224, 224], _settings(min_batch=2, opt_batch=4, max_batch=32))
    assert plan.profile == Profile((2, 3, 224, 224), (4, 3, 224, 224), (32, 3, 224, 224))
    assert make_plan("fp16", [1, 8, 8], _settings()).profile.opt == (1, 1, 8, 8)  # opt: min


def test_strong_typing_and_flags_per_version():
    int8 = make_plan("int8", [1, 8, 8], _settings())
    fp16 = make_plan("fp16", [1, 8, 8], _settings())
    assert int8.strongly_typed(10) and int8.strongly_typed(11)
    assert int8.builder_flags(10) == [] == int8.builder_flags(11)  # precision from the Q/DQ ONNX
    # 10.x builds FP16 from the float ONNX with the FP16 flag; 11.x has no flag: FP16 ONNX.
    assert not fp16.strongly_typed(10) and fp16.builder_flags(10) == ["FP16"]
    assert fp16.source_for(10) == "model.fp32.onnx" and fp16.source_for(11) == "model.onnx"
    assert fp16.builder_flags(11) == []
    dla = make_plan("int8", [1, 8, 8], _settings(dla_core=1))
    assert "GPU_FALLBACK" in dla.builder_flags(11)


def test_trtexec_lines_for_10_and_11():
    plan = make_plan("int8", [3, 32, 32], _settings(max_batch=8, dla_core=0))
    ten, eleven = plan.trtexec_args(10), plan.trtexec_args(11)
    assert "--stronglyTyped" in ten and "--stronglyTyped" not in eleven
    for args in (ten, eleven):
        assert "--minShapes=images:1x3x32x32" in args and "--maxShapes=images:8x3x32x32" in args
        assert "--memPoolSize=workspace:512M" in args and "--builderOptimizationLevel=3" in args
        assert "--timingCacheFile=timing.cache" in args
        assert "--useDLACore=0" in args and "--allowGPUFallback" in args
        assert not {"--int8", "--fp16", "--best"} & set(args)
    fp16_10 = make_plan("fp16", [3, 32, 32], _settings()).trtexec_args(10)
    assert "--fp16" in fp16_10 and "--onnx=model.fp32.onnx" in fp16_10
    script = plan.trtexec_script()
    assert "trtexec --onnx=model.onnx" in script and "-ge 11" in script
    assert "polygraphy run model.engine --model-type engine --trt" in plan.polygraphy_script()


def _manifest(version="10.13.0.35", cc="8.9", name="NVIDIA L4"):
    return {"precision": "int8", "runtime": {"name": "tensorrt", "version": version},
            "gpu": {"name": name, "compute_capability": cc}, "config": {}}  # fmt: skip


def test_engine_from_another_tensorrt_version_is_refused_with_the_fix():
    with pytest.raises(UserError, match=r"built with TensorRT 10\.13\.0\.35; this machine has "
                                        r"TensorRT 10\.14\.1\.48.*--force"):  # fmt: skip
        compat.check(_manifest(), trt_version="10.14.1.48", gpu_name="NVIDIA L4",
                     compute_capability="8.9")  # fmt: skip


def test_engine_from_another_gpu_is_refused_with_the_fix():
    with pytest.raises(UserError, match=r"built for NVIDIA L4 \(sm 8\.9\); this machine has "
                                        r"NVIDIA H100 \(sm 9\.0\)"):  # fmt: skip
        compat.check(_manifest(), trt_version="10.13.0.35", gpu_name="NVIDIA H100",
                     compute_capability="9.0")  # fmt: skip
    compat.check(
        _manifest(), trt_version="10.13.0.35", gpu_name="NVIDIA L4", compute_capability="8.9"
    )


def test_stubs_alone_are_not_tensorrt(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("tensorrt")  # what tensorrt-stubs alone gives: an empty namespace
    fake.__file__ = None
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    with pytest.raises(MissingDependencyError, match="only its type stubs"):
        availability.load()


def test_the_device_kit_holds_a_verified_qdq_model_and_the_commands(run_copy):
    kit = write_device_kit(digits_recipe(), run_copy, "int8")
    m = json.loads((kit / bundle.MANIFEST).read_text())
    assert m["kind"] == "tensorrt-kit" and m["precision"] == "int8"
    for name in ("model.onnx", "model.fp32.onnx", "trtexec.sh", "polygraphy.sh", "build_plan.json"):
        assert (kit / name).exists()
        assert m["files"][name]["sha256"] == bundle.sha256(kit / name)
    assert check(kit / "model.onnx", "tensorrt").ok
    plan = json.loads((kit / "build_plan.json").read_text())
    assert plan["tensorrt_11"]["strongly_typed"] and plan["profile"]["max"] == [8, 1, 8, 8]


@pytest.mark.skipif(HAVE_TRT, reason="checks the message shown where TensorRT is missing")
def test_export_without_tensorrt_says_what_to_install_and_leaves_the_kit(run_copy):
    result = CliRunner().invoke(
        cli, ["export", "--target", "tensorrt", "--out", str(run_copy.root), "--set", DIGITS_SET]
    )
    assert result.exit_code == 2
    assert "pip install 'dense-edge[tensorrt]'" in result.output
    assert "trtexec.sh" in result.output
    for precision in ("fp16", "int8"):
        assert (run_copy.root / "kits" / f"tensorrt-{precision}" / "trtexec.sh").exists()
    assert not (run_copy.root / "engines" / "tensorrt-int8").exists()


@needs_trt
@pytest.mark.tensorrt
@pytest.mark.cuda
def test_engine_builds_runs_and_agrees(run_copy):  # pragma: no cover - needs TensorRT + GPU
    import numpy as np

    from dense_edge.compile.stage import compile_stage
    from dense_edge.targets.registry import load_runner

    result = compile_stage(digits_recipe(), run_copy, "tensorrt", "int8")
    x = np.random.default_rng(0).standard_normal((20, 1, 8, 8)).astype(np.float32)
    with load_runner(result.path) as runner:
        assert runner.infer(x).shape == (20, 10)  # split by the profile's max batch of 8


@needs_trt
@pytest.mark.tensorrt
def test_the_parser_reports_rejected_nodes(tmp_path):  # pragma: no cover - needs TensorRT
    import onnx
    import tensorrt as trt
    from onnx import TensorProto, helper

    from dense_edge.targets.tensorrt.compiler import parse_onnx

    node = helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery", domain="custom")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([node], "g", [x], [y])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph), str(path))
    logger = trt.Logger(trt.Logger.ERROR)
    network = trt.Builder(logger).create_network(0)
    with pytest.raises(UserError, match="node mystery"):
        parse_onnx(network, logger, path)
