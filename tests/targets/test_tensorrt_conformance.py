"""The TensorRT code against the real Python bindings of 8.6.1, 10.3, 10.13 and 11.4.

``scripts/trt_bindings.py`` installs NVIDIA's bindings wheels from PyPI, loads each with stand-in
libraries and writes each release's surface; scripts/check (CI) runs it first and sets
``DENSE_EDGE_REQUIRE_TRT_BINDINGS=1``, so there these tests cannot skip. Two kinds of check:

- every TensorRT name the code touches (collected from the source, tests/targets/trt_api.py)
  exists, with a compatible signature, in every release its code path runs on;
- the builder and the runner are driven against a ``tensorrt`` generated from each release's
  surface (tests/targets/trt_standin.py): a call or attribute the release lacks fails as on the
  device.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from dense_edge.errors import UserError
from dense_edge.targets.tensorrt import compiler, runner
from dense_edge.targets.tensorrt.compiler import make_plan
from tests.targets import trt_api, trt_standin
from tests.targets.trt_api import ROOT, Surface

LABELS = ("8.6", "10.3", "10.13", "11.4")


def _surfaces() -> dict[str, Surface]:
    spec = importlib.util.spec_from_file_location("trt_bindings", ROOT / "scripts/trt_bindings.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    root = script.cache_dir()
    paths = {label: root / f"surface-{label}.json" for label in LABELS}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        if os.environ.get("DENSE_EDGE_REQUIRE_TRT_BINDINGS") == "1":
            pytest.fail(
                f"TensorRT binding surfaces missing: {missing} (python scripts/trt_bindings.py)"
            )
        pytest.skip("run python scripts/trt_bindings.py first (installs the real bindings)")
    return {label: Surface(p) for label, p in paths.items()}


@pytest.fixture(scope="module")
def surfaces() -> dict[str, Surface]:
    return _surfaces()


@pytest.fixture(scope="module")
def uses(surfaces):
    files = trt_api.files_importing_tensorrt(ROOT / "dense_edge")
    assert ROOT / "dense_edge/targets/tensorrt/compiler.py" in files
    return trt_api.collect(files, list(surfaces.values()))


def test_the_surfaces_are_the_releases_claimed(surfaces):
    versions = {label: s.version for label, s in surfaces.items()}
    assert versions["8.6"].startswith("8.6.1") and versions["10.3"].startswith("10.3.")
    assert versions["10.13"].startswith("10.13.") and versions["11.4"].startswith("11.4.")
    # The facts the issue found, read from the real bindings.
    s86, s114 = surfaces["8.6"], surfaces["11.4"]
    assert not s86.has(trt_api.MODULE, "IProgressMonitor") and not s86.has(
        "ParserError", "node_name"
    )
    assert not s114.has("BuilderFlag", "INT8") and surfaces["10.3"].has("BuilderFlag", "INT8")


def test_the_collector_sees_the_builder_and_runner(uses):
    seen = {(u.owner, u.name) for u in uses}
    expected_uses = [
        ("IBuilderConfig", "set_timing_cache"),
        ("IBuilderConfig", "create_timing_cache"),
        ("IExecutionContext", "execute_async_v3"),
        ("IExecutionContext", "set_tensor_address"),
        ("Builder", "build_serialized_network"),
        ("OnnxParser", "parse_from_file"),
        ("ParserError", "desc"),
        (trt_api.MODULE, "IProgressMonitor"),
    ]
    for expected in expected_uses:
        assert expected in seen, expected
    assert len(seen) > 60


@pytest.mark.parametrize("label", LABELS)
def test_every_name_the_code_uses_exists_in_each_release(surfaces, uses, label):
    assert trt_api.problems(uses, surfaces[label]) == []


@pytest.mark.parametrize("label", LABELS)
def test_every_builder_flag_a_plan_sets_exists(surfaces, label):
    s = surfaces[label]
    version = tuple(int(p) for p in s.version.split(".")[:3])
    for precision in ("int8", "fp16", "fp32"):
        for dla in (None, 0):
            if dla is not None and precision == "fp32":
                continue
            plan = make_plan(
                precision, [3, 8, 8], _settings(min_batch=2, max_batch=2, dla_core=dla)
            )
            if plan.problems(version):
                continue
            for flag in plan.builder_flags(version) + plan.cleared_flags(version):
                assert s.has("BuilderFlag", flag), (label, precision, dla, flag)


def test_the_collector_flags_an_unguarded_use(surfaces, tmp_path):
    """The check can fail: fix 2 undone (IProgressMonitor and node_name used unguarded)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import tensorrt as trt\n"
        "class M(trt.IProgressMonitor):\n    def phase_start(self, a, b, c): pass\n"
        "def f(e: trt.ParserError, c: trt.IBuilderConfig):\n"
        "    c.progress_monitor = M()\n    return e.node_name()\n"
    )
    found = trt_api.collect([bad], list(surfaces.values()))
    assert trt_api.problems(found, surfaces["10.3"]) == []
    text = "\n".join(trt_api.problems(found, surfaces["8.6"]))
    for name in (
        "tensorrt.IProgressMonitor",
        "ParserError.node_name",
        "IBuilderConfig.progress_monitor",
    ):
        assert name in text


# -- the builder and the runner driven against each release's surface --------------------------
def _settings(**kw):
    base = {"min_batch": 1, "opt_batch": None, "max_batch": 4, "workspace_mb": 64,
            "optimization_level": 3, "dla_core": None}  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


ENGINE = b"stand-in engine"
CACHE = b"stand-in timing cache"


def _builder_behaviour(ref, calls):
    def create_timing_cache(self, data):
        # As the real one: a blob it cannot read gives None (NVIDIA's cacheUtils guards it).
        calls.append(("create_timing_cache", bytes(data)))
        if bytes(data) in (b"", CACHE):
            cache = object.__new__(ref["mod"].ITimingCache)
            object.__setattr__(cache, "_values", {})
            return cache
        return None

    def set_flag(self, flag):
        calls.append(("set_flag", flag.name))

    def memory(data):
        return lambda *a: trt_standin.host_memory(ref["mod"], data)

    return {
        ("IBuilderConfig", "create_timing_cache"): create_timing_cache,
        ("IBuilderConfig", "set_flag"): set_flag,
        ("Builder", "build_serialized_network"): memory(ENGINE),
        ("ITimingCache", "serialize"): memory(CACHE),
        ("Builder", "num_DLA_cores"): lambda self: 2,
        ("OnnxParser", "num_errors"): lambda self: 0,
        ("INetworkDefinition", "num_layers"): lambda self: 0,
        ("Runtime", "deserialize_cuda_engine"): lambda self, b: None,
    }


def _standin(surface, monkeypatch, behaviour_for):
    ref: dict = {}
    calls: list = []
    mod = trt_standin.build_module(surface, behaviour_for(ref, calls))
    ref["mod"] = mod
    monkeypatch.setitem(sys.modules, "tensorrt", mod)
    return mod, calls


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("cache_blob", [None, CACHE, b"not a timing cache"])
def test_the_builder_runs_on_each_release(surfaces, monkeypatch, tmp_path, label, cache_blob):
    s = surfaces[label]
    _, calls = _standin(s, monkeypatch, _builder_behaviour)
    monkeypatch.setattr(
        compiler, "gpu_properties", lambda: {"name": "stand-in", "compute_capability": "8.7"}
    )
    plan = make_plan("int8", [3, 8, 8], _settings())
    (tmp_path / "model.onnx").write_bytes(b"")
    cache = tmp_path / "timing.cache"
    if cache_blob is not None:
        cache.write_bytes(cache_blob)
    built = compiler.build(plan, tmp_path, timing_cache=cache)
    assert (tmp_path / "model.engine").read_bytes() == ENGINE
    assert cache.read_bytes() == CACHE  # written back
    expected = {None: "new", CACHE: "loaded"}.get(cache_blob, "replaced (the old one was rejected)")
    assert built["timing_cache"] == expected
    flags = [c[1] for c in calls if c[0] == "set_flag"]
    assert flags == (["INT8", "FP16"] if label == "8.6" else [])
    assert built["source_onnx"] == "model.onnx"


@pytest.mark.parametrize("label", ["8.6", "10.3"])
def test_a_dla_build_sets_what_trtexec_sets(surfaces, monkeypatch, tmp_path, label):
    s = surfaces[label]
    _, calls = _standin(s, monkeypatch, _builder_behaviour)
    monkeypatch.setattr(
        compiler, "gpu_properties", lambda: {"name": "Orin", "compute_capability": "8.7"}
    )
    plan = make_plan("int8", [3, 8, 8], _settings(min_batch=2, max_batch=2, dla_core=0))
    (tmp_path / "model.onnx").write_bytes(b"")
    compiler.build(plan, tmp_path, timing_cache=None)
    flags = [c[1] for c in calls if c[0] == "set_flag"]
    assert flags == ["INT8", "FP16", "PREFER_PRECISION_CONSTRAINTS", "GPU_FALLBACK"]


def test_the_builder_refuses_dla_where_nvidia_has_none(surfaces, monkeypatch, tmp_path):
    _, _ = _standin(surfaces["11.4"], monkeypatch, _builder_behaviour)  # 11.4.0: no DLA
    monkeypatch.setattr(
        compiler, "gpu_properties", lambda: {"name": "Orin", "compute_capability": "8.7"}
    )
    plan = make_plan("int8", [3, 8, 8], _settings(min_batch=2, max_batch=2, dla_core=0))
    with pytest.raises(UserError, match=r"11\.4\.0 cannot build for the DLA"):
        compiler.build(plan, tmp_path, timing_cache=None)


class FakeCuda:
    """The CUDA runtime calls the runner makes, over host memory (addresses are 256-aligned)."""

    def __init__(self) -> None:
        self.memory: dict[int, bytearray] = {}
        self.events = 0
        self.syncs = 0
        self.next = 1 << 20

    def malloc(self, nbytes):
        ptr, self.next = self.next, self.next + ((nbytes + 511) // 512) * 512
        self.memory[ptr] = bytearray(nbytes)
        return ptr

    def free(self, ptr):
        del self.memory[ptr]

    def to_device(self, dst, src, stream):
        self.memory[dst][: src.nbytes] = src.tobytes()

    def to_host(self, dst, src, stream):
        dst[...] = np.frombuffer(bytes(self.memory[src][: dst.nbytes]), dst.dtype).reshape(
            dst.shape
        )

    def stream(self):
        return 7

    def stream_destroy(self, s): ...
    def set_device(self, i): ...
    def record(self, e, s): ...
    def event_destroy(self, e): ...

    def synchronize(self, s):
        self.syncs += 1

    def event(self):
        self.events += 1
        return self.events

    def elapsed_ms(self, a, b):
        return 0.5


def _runner_behaviour(ref, calls, *, lo, hi, item, classes, fail=False):
    state: dict = {}
    io = ["images", "logits"]

    def execute(self, stream):
        n = state["shape"][0]
        cuda = ref["cuda"]
        x = np.frombuffer(bytes(cuda.memory[state["images"]]), np.float32)[: n * int(np.prod(item))]
        means = x.reshape(n, -1).mean(axis=1)
        y = (means[:, None] * np.arange(1, classes + 1)).astype(np.float32)
        cuda.memory[state["logits"]][: y.nbytes] = y.tobytes()
        calls.append(("execute", n))
        return not fail

    def set_input_shape(self, name, shape):
        shape = tuple(shape)
        calls.append(("set_input_shape", shape))
        if not lo <= shape[0] <= hi:
            return False
        state["shape"] = shape
        return True

    def set_address(self, name, address):
        state[name] = address
        return True

    def context(self):
        obj = object.__new__(ref["mod"].IExecutionContext)
        object.__setattr__(obj, "_values", {})
        return obj

    mod = lambda: ref["mod"]  # noqa: E731
    return {
        ("Runtime", "deserialize_cuda_engine"): lambda self, b: _instance(mod().ICudaEngine),
        ("ICudaEngine", "num_io_tensors"): lambda self: 2,
        ("ICudaEngine", "get_tensor_name"): lambda self, i: io[i],
        ("ICudaEngine", "get_tensor_mode"): lambda self, n: (
            mod().TensorIOMode.INPUT if n == "images" else mod().TensorIOMode.OUTPUT
        ),
        ("ICudaEngine", "get_tensor_dtype"): lambda self, n: mod().DataType.FLOAT,
        ("ICudaEngine", "get_tensor_shape"): lambda self, n: (-1 if lo != hi else lo, *item),
        ("ICudaEngine", "get_tensor_profile_shape"): lambda self, n, p: [
            (lo, *item),
            (lo, *item),
            (hi, *item),
        ],
        ("ICudaEngine", "create_execution_context"): context,
        ("IExecutionContext", "set_input_shape"): set_input_shape,
        ("IExecutionContext", "get_tensor_shape"): lambda self, n: (state["shape"][0], classes),
        ("IExecutionContext", "set_tensor_address"): set_address,
        ("IExecutionContext", "execute_async_v3"): execute,
    }


def _instance(cls):
    obj = object.__new__(cls)
    object.__setattr__(obj, "_values", {})
    return obj


def _runner(surface, monkeypatch, tmp_path, **kw):
    cuda = FakeCuda()
    ref: dict = {"cuda": cuda}
    calls: list = []
    mod = trt_standin.build_module(surface, _runner_behaviour(ref, calls, **kw))
    ref["mod"] = mod
    monkeypatch.setitem(sys.modules, "tensorrt", mod)
    monkeypatch.setattr(runner.cudart, "load", lambda: cuda)
    monkeypatch.setattr(
        runner.cudart, "gpu", lambda i: {"name": "Orin", "compute_capability": "8.7"}
    )
    (tmp_path / "model.engine").write_bytes(b"engine")
    return runner.TensorRTRunner(tmp_path / "model.engine"), cuda, calls


@pytest.mark.parametrize("label", LABELS)
def test_the_runner_pads_to_the_profile_min_and_slices(surfaces, monkeypatch, tmp_path, label):
    """A static engine (batch 4..4: every DLA engine) takes 1, 5 or 9 images: each chunk is padded
    up to the profile's min and the padding's logits dropped (fix 3)."""
    r, cuda, calls = _runner(surfaces[label], monkeypatch, tmp_path, lo=4, hi=4, item=(3, 2, 2),
                             classes=10)  # fmt: skip
    rng = np.random.default_rng(0)
    with r:
        for n in (1, 5, 9, 4):
            x = rng.random((n, 3, 2, 2), dtype=np.float32)
            y = r.infer(x)
            want = x.reshape(n, -1).mean(axis=1)[:, None] * np.arange(1, 11)
            np.testing.assert_allclose(y, want, rtol=1e-6)
        shapes = {c[1] for c in calls if c[0] == "set_input_shape"}
        assert shapes == {(4, 3, 2, 2)}  # never outside the profile
        assert cuda.events == 2 * 3  # one pair per chunk of the largest call, created once
        assert r.last_device_ms == 0.5  # one chunk in the last call
    assert cuda.memory == {}  # device buffers freed


@pytest.mark.parametrize("label", ["8.6", "11.4"])
def test_the_runner_splits_by_max_and_checks_the_enqueue(surfaces, monkeypatch, tmp_path, label):
    r, cuda, calls = _runner(surfaces[label], monkeypatch, tmp_path, lo=1, hi=8, item=(1, 2, 2),
                             classes=3)  # fmt: skip
    with r:
        x = np.ones((20, 1, 2, 2), np.float32)
        assert r.infer(x).shape == (20, 3)
        assert [c[1] for c in calls if c[0] == "execute"] == [8, 8, 4]
        assert cuda.syncs == 1  # one synchronise per call, not per chunk
    r, cuda, calls = _runner(surfaces[label], monkeypatch, tmp_path, lo=1, hi=8, item=(1, 2, 2),
                             classes=3, fail=True)  # fmt: skip
    with r, pytest.raises(RuntimeError, match="execute_async_v3 failed"):
        r.infer(np.ones((2, 1, 2, 2), np.float32))


def test_the_tensorrt_path_and_the_runtime_import_no_torch():
    """A Jetson has NVIDIA's torch or none: the TensorRT runner, builder, kit validation and
    dense_edge.runtime must not need it."""
    import subprocess

    code = (
        "import sys\n"
        "import dense_edge.runtime\n"
        "from dense_edge.targets.tensorrt import compiler, runner, selfcheck, target, device\n"
        "from dense_edge.cli import kit\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
