"""TensorRT: everything that needs no TensorRT (plan, commands, compatibility, kits) here;
building and running engines where TensorRT and a GPU exist (marked, skipped elsewhere)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from dense_edge import bundle
from dense_edge.calibrate.checker import check
from dense_edge.cli import cli
from dense_edge.errors import MissingDependencyError, UserError
from dense_edge.kits.write import write_device_kit
from dense_edge.targets.tensorrt import availability, compat
from dense_edge.targets.tensorrt.compiler import make_plan
from dense_edge.targets.tensorrt.dla import describe_placement, summarize_placement
from dense_edge.targets.tensorrt.plan import OptimizationProfile, dla_refusal
from dense_edge.targets.tensorrt.runner import chunks, is_aligned
from tests.conftest import DIGITS_SET, digits_recipe

HAVE_TRT = availability.available()
needs_trt = pytest.mark.skipif(not HAVE_TRT, reason="TensorRT is not installed here")


def _settings(**kw):
    base = {"min_batch": 1, "opt_batch": None, "max_batch": 16, "workspace_mb": 512,
            "optimization_level": 3, "dla_core": None}  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def test_profiles_come_from_the_recipe():
    plan = make_plan("int8", [3, 224, 224], _settings(min_batch=2, opt_batch=4, max_batch=32))
    assert plan.profile == OptimizationProfile(
        (2, 3, 224, 224), (4, 3, 224, 224), (32, 3, 224, 224)
    )
    assert make_plan("fp16", [1, 8, 8], _settings()).profile.opt == (1, 1, 8, 8)  # opt: min


def test_strong_typing_and_flags_per_version():
    int8 = make_plan("int8", [1, 8, 8], _settings())
    fp16 = make_plan("fp16", [1, 8, 8], _settings())
    fp32 = make_plan("fp32", [1, 8, 8], _settings())
    # 8.6: weak typing, the only mode: the Q/DQ model with INT8 and FP16 (its float parts in FP16,
    # not FP32), the float model with FP16.
    assert not int8.strongly_typed((8, 6)) and int8.builder_flags((8, 6)) == ["INT8", "FP16"]
    assert fp16.builder_flags((8, 6)) == ["FP16"] and fp16.source_for((8, 6)) == "model.fp32.onnx"
    # 10.x and 11.x: strongly typed, precision from the ONNX, FP16 from the FP16 ONNX on both.
    for version in ((10, 0), (10, 13), (11, 0)):
        for plan in (int8, fp16, fp32):
            assert plan.strongly_typed(version) and plan.builder_flags(version) == []
        assert fp16.source_for(version) == "model.onnx"
    # fp32 means fp32: TF32 cleared everywhere, never for the other precisions.
    assert all(fp32.cleared_flags(v) == ["TF32"] for v in ((8, 6), (10, 0), (11, 1)))
    assert int8.cleared_flags((10, 0)) == [] == fp16.cleared_flags((11, 0))


def _dla(precision="int8", **kw):
    return make_plan(precision, [1, 8, 8], _settings(min_batch=4, max_batch=4, dla_core=0, **kw))


def test_dla_plans_need_static_shapes_and_fp16_or_int8():
    with pytest.raises(UserError, match=r"DLA needs a static shape.*batch 1\.\.16.*equal"):
        make_plan("int8", [1, 8, 8], _settings(dla_core=0))
    with pytest.raises(UserError, match="DLA runs FP16 or INT8 only"):
        _dla("fp32")
    plan = _dla()
    assert plan.profile.is_static and plan.problems() == []
    # 10.x DLA builds are weakly typed (NVIDIA's DLA recipe): INT8 + FP16, the precision
    # constraints trtexec sets for every DLA build, GPU fallback.
    assert not plan.strongly_typed((10, 3))
    prefer = "PREFER_PRECISION_CONSTRAINTS"
    assert plan.builder_flags((10, 3)) == ["INT8", "FP16", prefer, "GPU_FALLBACK"]
    assert _dla("fp16").builder_flags((10, 3)) == ["FP16", prefer, "GPU_FALLBACK"]
    assert plan.strongly_typed((11, 4, 1)) and plan.builder_flags((11, 4, 1)) == ["GPU_FALLBACK"]


def test_dla_is_gated_by_exact_version_as_nvidia_states():
    """NVIDIA: 10.7 was the last 10.x with DLA; none in 11.0-11.3; 11.4.0 only on Windows on
    ARM; 11.4.1+ on AGX Orin with JetPack 7.2.2+."""
    plan = _dla()
    for version in ((10, 8, 0), (10, 13, 0), (11, 0, 0), (11, 3, 0), (11, 4, 0)):
        (problem,) = plan.problems(version)
        shown = ".".join(map(str, version))
        assert f"TensorRT {shown} cannot build for the DLA on a Jetson" in problem
        assert "10.7 was the last 10.x" in problem and "11.4.1+" in problem
    for version in ((8, 6, 2), (10, 3, 0), (10, 7, 0), (11, 4, 1), (11, 5, 0)):
        assert dla_refusal(version) is None and plan.problems(version) == []
    assert make_plan("int8", [1, 8, 8], _settings()).problems((11, 1, 0)) == []  # GPU: fine


def test_tensorrt_older_than_8_6_is_refused():
    (problem,) = make_plan("int8", [1, 8, 8], _settings()).problems((8, 5))
    assert "TensorRT 8.5 is older than 8.6" in problem


def test_dla_placement_counts_what_falls_back_to_the_gpu():
    rows = [("conv0", "CONVOLUTION", True), ("cat1", "CONCATENATION", False),
            ("pool", "POOLING", True), ("cat2", "CONCATENATION", False), ("fc", "MATRIX_MULTIPLY",
            False)]  # fmt: skip
    p = summarize_placement(rows)
    assert (p["layers"], p["dla_layers"], p["gpu_fallback_layers"]) == (5, 2, 3)
    assert p["gpu_fallback"] == ["cat1", "cat2", "fc"]
    assert p["gpu_fallback_by_type"] == {"CONCATENATION": 2, "MATRIX_MULTIPLY": 1}
    line = describe_placement(p)
    assert line == ("tensorrt: DLA runs 2 of 5 layers; 3 fall back to the GPU "
                    "(CONCATENATION x2, MATRIX_MULTIPLY x1)")  # fmt: skip


def test_batches_are_split_by_the_profile_max_and_padded_to_its_min():
    assert is_aligned(0) and is_aligned(512) and not is_aligned(128)
    # (start, images, run as): every enqueue's batch lies in [min, max].
    assert chunks(20, 1, 8) == [(0, 8, 8), (8, 8, 8), (16, 4, 4)]
    assert chunks(1, 4, 4) == [(0, 1, 4)]  # a static engine: 1 image runs as 4
    assert chunks(9, 2, 4) == [(0, 4, 4), (4, 4, 4), (8, 1, 2)]
    assert chunks(0, 1, 8) == []


def test_trtexec_lines_per_version():
    plan = make_plan("int8", [3, 32, 32], _settings(max_batch=8))
    base = ["--onnx=model.onnx", "--saveEngine=model.engine", "--minShapes=images:1x3x32x32",
            "--optShapes=images:1x3x32x32", "--maxShapes=images:8x3x32x32",
            "--memPoolSize=workspace:512", "--builderOptimizationLevel=3",
            "--timingCacheFile=timing.cache"]  # fmt: skip
    assert plan.trtexec_args((8, 6)) == [*base, "--int8", "--fp16"]
    assert plan.trtexec_args((10, 3)) == [*base, "--stronglyTyped"]
    assert plan.trtexec_args((11, 1)) == base
    dla = _dla().trtexec_args((10, 3))
    assert dla[-4:] == ["--int8", "--fp16", "--useDLACore=0", "--allowGPUFallback"]
    assert "--stronglyTyped" not in dla
    script = plan.trtexec_script()
    assert "/usr/src/tensorrt/bin" in script and "TensorRT v" in script


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
    kit = write_device_kit(digits_recipe(), run_copy, "tensorrt", "int8")
    m = json.loads((kit / bundle.MANIFEST).read_text())
    assert m["kind"] == "tensorrt-kit" and m["precision"] == "int8"
    names = ("model.onnx", "model.fp32.onnx", "trtexec.sh", "polygraphy.sh", "validate.sh",
             "build_plan.json", "eval/images.npy", "eval/labels.npy", "eval/eval.json")  # fmt: skip
    for name in names:
        assert (kit / name).exists()
        assert m["files"][name]["sha256"] == bundle.sha256(kit / name)
    assert check(kit / "model.onnx", "tensorrt").ok
    plan = json.loads((kit / "build_plan.json").read_text())
    assert plan["tensorrt_11"]["strongly_typed"] and plan["profile"]["max"] == [8, 1, 8, 8]
    assert (
        plan["tensorrt_8_6"]["flags"] == ["INT8", "FP16"] and plan["tensorrt_10"]["strongly_typed"]
    )


@pytest.mark.skipif(HAVE_TRT, reason="checks the message shown where TensorRT is missing")
def test_export_without_tensorrt_says_what_to_install_and_leaves_the_kit(run_copy):
    result = CliRunner().invoke(
        cli, ["export", "--target", "tensorrt", "--out", str(run_copy.root), "--set", DIGITS_SET]
    )
    assert result.exit_code == 2
    assert "pip install tensorrt on a machine with an NVIDIA GPU" in result.output
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
