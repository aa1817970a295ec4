"""The calibrate stage: every profile within budget on digits, statistics cached, CLI errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from dense_edge.calibrate import collect as collect_module
from dense_edge.calibrate.stage import calibrate_stage
from dense_edge.cli import cli
from dense_edge.data import Preprocess, load_splits
from dense_edge.errors import StageError
from tests.conftest import DIGITS_SET, digits_recipe


def _test_split(run):
    manifest = json.loads((run.model / "manifest.json").read_text())
    pre = Preprocess.from_dict(manifest["preprocess"])
    test = load_splits(digits_recipe(), pre).test
    return test.to_array(pre), test.labels


def _top1_onnx(path, x):
    from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner

    with OnnxRuntimeRunner(path) as r:
        return r.infer_all(x, 64).argmax(1)


def _top1_openvino(path, x):
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.concatenate([compiled(x[i : i + 64])[0] for i in range(0, len(x), 64)]).argmax(1)


@pytest.mark.slow
def test_every_profile_loses_at_most_half_a_point_on_the_test_split(run_copy):
    results = calibrate_stage(digits_recipe(), run_copy)
    assert [r.profile for r in results] == ["onnxruntime", "openvino", "tensorrt"]
    x, y = _test_split(run_copy)
    ref = _top1_onnx(run_copy.onnx_model, x)
    for r in results:
        assert r.path.exists() and (r.path.parent / "calibration.json").exists()
        got = _top1_openvino(r.path, x) if r.profile == "openvino" else _top1_onnx(r.path, x)
        drop = ((ref == y).mean() - (got == y).mean()) * 100
        agreement = (ref == got).mean()
        assert drop <= 0.5, (r.profile, drop)
        assert agreement >= 0.98, (r.profile, agreement)
        if r.profile != "openvino":
            assert r.record["check"]["ok"]
        assert r.record["validation"]["split"] == "val"


def test_statistics_are_collected_once(run_copy, monkeypatch):
    recipe = digits_recipe(**{"calibration.method": "minmax"})
    first = calibrate_stage(recipe, run_copy, profiles=["tensorrt"])
    stats_files = sorted(run_copy.stats.glob("*.npz"))
    assert len(stats_files) == 1
    mtime = stats_files[0].stat().st_mtime_ns
    monkeypatch.setattr(collect_module, "collect", _forbid_recollect(collect_module.collect))
    for method in ("entropy", "mse"):
        other = calibrate_stage(
            digits_recipe(**{"calibration.method": method}),
            run_copy,
            profiles=["tensorrt"],
            force=True,  # another method replaces a finished profile only when asked
        )
        assert not other[0].reused
        assert other[0].record["statistics"]["key"] == first[0].record["statistics"]["key"]
    assert stats_files[0].stat().st_mtime_ns == mtime


def _forbid_recollect(real):
    def wrapped(model_path, images, *, bins, key, cache_dir, **kw):
        cached = collect_module.load_cached(cache_dir, key, bins)
        assert cached is not None, "statistics were collected again"
        return real(model_path, images, bins=bins, key=key, cache_dir=cache_dir, **kw)

    return wrapped


def test_a_current_profile_is_reused(run_copy):
    recipe = digits_recipe()
    assert not calibrate_stage(recipe, run_copy, profiles=["onnxruntime"])[0].reused
    assert calibrate_stage(recipe, run_copy, profiles=["onnxruntime"])[0].reused
    changed = digits_recipe(**{"calibration.percentile": 99.9})
    with pytest.raises(StageError, match=r"other inputs: percentile 99\.99 -> 99\.9.*--force"):
        calibrate_stage(changed, run_copy, profiles=["onnxruntime"])
    assert not calibrate_stage(changed, run_copy, profiles=["onnxruntime"], force=True)[0].reused


def test_accuracy_aware_keeps_layers_in_float_to_meet_the_budget(run_copy):
    # An impossible-to-meet-by-luck budget: every validation image must agree with float.
    recipe = digits_recipe(**{
        "calibration.method": "minmax",
        "calibration.samples": 20,  # few images: deliberately rough ranges
        "calibration.accuracy_aware.enabled": True,
        "calibration.accuracy_aware.max_top1_drop": None,
        "calibration.accuracy_aware.min_agreement": 1.0,
    })  # fmt: skip
    result = calibrate_stage(recipe, run_copy, profiles=["tensorrt"])[0]
    aa = result.record["accuracy_aware"]
    assert aa["budget_met"]
    assert aa["steps"][-1]["agreement"] == 1.0
    by_rule = ["/classifier/Gemm"]  # tensorrt keeps Gemms with < 16 outputs in float anyway
    float_layers = [*aa["float_layers"], *(g for g in by_rule if g not in aa["float_layers"])]
    assert sorted(result.record["plan"]["float_layers"]) == sorted(float_layers)
    if aa["float_layers"]:
        assert aa["sensitivity"] and len(aa["steps"]) == len(aa["float_layers"]) + 1
    assert sorted(result.record["check"]["float_layers"]) == sorted(float_layers)


def test_debug_lists_the_worst_layers(run_copy):
    result = calibrate_stage(digits_recipe(), run_copy, profiles=["onnxruntime"], debug=True)[0]
    layers = result.record["layers"]
    assert len(layers) == 28  # every Conv and the classifier
    assert layers[0]["snr_db"] <= layers[-1]["snr_db"]


def test_cli_check_and_bad_input(run_copy, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["calibrate", "--out", str(run_copy.root), "--profile", "tensorrt",
                             "--explain", "--set", DIGITS_SET])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    model = run_copy.int8_profile("tensorrt") / "model.onnx"
    plan = json.loads((model.parent / "plan.json").read_text())
    assert plan["estimate"] and plan["total_bytes_per_image"] < plan["fp16_engine"][
        "total_bytes_per_image"]  # fmt: skip
    assert "estimated traffic per image" in ok.output and "int8" in ok.output
    good = runner.invoke(cli, ["calibrate", "--check", str(model), "--profile", "tensorrt"])
    assert good.exit_code == 0 and "follows the tensorrt profile" in good.output
    bad = runner.invoke(cli, ["calibrate", "--check", str(model), "--profile", "onnxruntime"])
    assert bad.exit_code == 1 and "violations of the onnxruntime rules" in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(cli, ["calibrate", "--out", str(run_copy.root), "--source", str(empty),
                              "--set", DIGITS_SET])  # fmt: skip
    assert res.exit_code == 2 and "calibration folder holds no images" in res.output
    assert len(res.output.strip().splitlines()) == 1
