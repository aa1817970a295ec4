"""Every registered target fulfils the Target contract (dense_edge/targets/base.py).

Parametrised over the registry, so a new target is checked the moment its registry line exists:
its declared attributes have the right types and agree with each other, with the calibration
profiles and with pyproject's extras; ``status()`` has the documented shape; and where its runtime
is installed here, ``compile`` builds a real engine from the digits model and ``load_runner`` gives
a Runner that classifies real images like the float model does.
"""

from __future__ import annotations

import json
import re
import typing

import numpy as np
import pytest
import tomllib

from dense_edge.calibrate.profiles import PROFILES
from dense_edge.compile.stage import compile_stage
from dense_edge.manifest import library_versions
from dense_edge.targets import registry
from dense_edge.targets.base import (
    DeviceKind,
    Fp16Source,
    Int8Source,
    Precision,
    Runner,
    Target,
    TargetStatus,
)
from tests.conftest import REPO, digits_recipe

TARGETS = registry.all_targets()
IDS = [t.name for t in TARGETS]


def _choices(alias: object) -> set[str]:
    return set(typing.get_args(alias))


def test_the_registry_is_keyed_by_each_targets_own_name():
    assert TARGETS, "no target is registered"
    assert list(registry.TARGETS) == [t.name for t in TARGETS]
    assert registry.ONNX not in registry.TARGETS  # `--target onnx` is no engine target
    for name, target in registry.TARGETS.items():
        assert registry.get(name) is target


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_declared_attributes(target: Target):
    assert isinstance(target, Target)
    assert isinstance(target.name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", target.name)
    assert isinstance(target.title, str) and target.title
    assert target.precisions and set(target.precisions) <= _choices(Precision)
    assert len(set(target.precisions)) == len(target.precisions)
    assert target.default_precisions
    assert set(target.default_precisions) <= set(target.precisions)
    assert isinstance(target.in_default_recipe, bool)
    assert target.device_kinds and set(target.device_kinds) <= _choices(DeviceKind)
    assert target.device_kind == target.device_kinds[0]
    assert target.int8_source in _choices(Int8Source)
    assert target.fp16_source in _choices(Fp16Source)
    assert re.fullmatch(r"#[0-9a-f]{3}([0-9a-f]{3})?", target.color)
    # its int8 model comes from a profile calibrate knows
    assert target.profile in PROFILES
    # the runtime whose version every manifest records (and whose upgrade rebuilds its engines)
    assert isinstance(target.library, str) and target.library in library_versions()


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_pip_extra_exists_in_pyproject(target: Target):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    if target.pip_extra is None:  # a core dependency
        assert any(d.startswith(target.library) for d in project["dependencies"])
    else:
        extra = project["optional-dependencies"][target.pip_extra]
        assert any(d.startswith(target.library) for d in extra)
        assert target.pip_extra in target.install_hint or "dense-edge[" in target.install_hint


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_kit_declarations_agree(target: Target):
    if target.writes_kits:
        assert target.kit_steps, "a kit target says what to run on the device"
        assert target.kit_kind.startswith(target.name)
    else:
        assert target.cannot_build_here() is None  # no kit to fall back on: it builds here
    assert target.kit_stand_in is None or target.kit_stand_in in registry.TARGETS


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_status_has_the_documented_shape(target: Target):
    status = target.status()
    assert isinstance(status, TargetStatus)
    assert isinstance(status.installed, bool)
    if status.installed:
        assert isinstance(status.version, str) and status.version
        assert library_versions()[target.library] is not None
    else:
        assert status.version is None
        assert isinstance(status.reason, str) and status.reason
    assert isinstance(status.details, dict)
    entry = status.as_json()
    assert entry["installed"] is status.installed and entry["version"] == status.version
    json.dumps(entry)  # doctor --json prints it
    rows = target.doctor_rows(status)
    assert rows and all(len(r) == 3 and all(isinstance(c, str) for c in r) for r in rows)
    assert all(r[0].startswith(target.name) for r in rows)


def _precision_to_build(target: Target) -> str:
    return "fp32" if "fp32" in target.precisions else target.precisions[0]


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_compile_and_load_runner_run_a_real_model(target: Target, run_copy):
    status = target.status()
    if not status.installed:
        pytest.skip(f"{target.name} is not installed here: {status.reason}")
    reason = target.cannot_build_here()
    if reason is not None:
        pytest.skip(f"{target.name} cannot build engines here: {reason}")
    from dense_edge import bundle
    from dense_edge.data import Preprocess, load_splits
    from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner

    precision = _precision_to_build(target)
    engine = compile_stage(digits_recipe(), run_copy, target.name, precision)
    manifest = bundle.read(engine.path)
    assert manifest["target"] == target.name and manifest["precision"] == precision

    model = json.loads((run_copy.model / "manifest.json").read_text())
    pre = Preprocess.from_dict(model["preprocess"])
    images = load_splits(digits_recipe(), pre).test.to_array(pre)[:64]
    with OnnxRuntimeRunner(run_copy.onnx_model) as reference:
        expected = reference.infer_all(images, 16).argmax(1)

    runner = target.load_runner(engine.path, manifest)
    assert isinstance(runner, Runner) and not runner.is_active
    assert isinstance(runner.thread_safe, bool)  # what runtime.Model locks by
    with runner:
        limit = runner.max_batch  # what runtime.Model batches by: None is any batch
        assert limit is None or (isinstance(limit, int) and limit >= 1)
        logits = runner.infer_all(images, 16)
    assert logits.shape == (len(images), model["num_classes"])
    assert np.isfinite(logits).all()
    assert (logits.argmax(1) == expected).mean() >= 0.95
    # the registry picks the same kind of runner from the manifest alone
    assert type(registry.load_runner(engine.path)) is type(runner)


# -- the timed call on a 1000-class model, under heap checking ----------------------------------
# A 1000-class output is 4 KB per image: large enough that a buffer freed under the runtime goes
# back to glibc (numpy keeps blocks under 1 KB in a cache of its own), so a runner that lets the
# memory it bound be freed corrupts the heap or computes on garbage here, where the 10-class
# digits model stays silent.
@pytest.fixture(scope="module")
def wide_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.heapcheck import make_wide_run

    return make_wide_run(tmp_path_factory.mktemp("wide"))


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_timed_call_output_is_infer_on_a_1000_class_model_under_heap_checking(target, wide_run):
    status = target.status()
    if not status.installed:
        pytest.skip(f"{target.name} is not installed here: {status.reason}")
    reason = target.cannot_build_here()
    if reason is not None:
        pytest.skip(f"{target.name} cannot build engines here: {reason}")
    from tests.heapcheck import probe

    recipe, run = wide_run
    engine = compile_stage(recipe, run, target.name, _precision_to_build(target))
    done = probe(engine.path)
    assert done.returncode == 0, (
        f"{target.name}: the heap-checked timed call failed (exit {done.returncode}):\n"
        f"{done.stdout[-2000:]}{done.stderr[-3000:]}"
    )
