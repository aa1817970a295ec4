"""Building a TensorRT engine with the official ``tensorrt`` Python API (8.6, 10.x and 11.x).

What a release lacks is probed, never assumed: 8.6 has no ``IProgressMonitor`` (no progress
lines there) and its ``ParserError`` has no ``node_name``/``node_operator`` (the node index is
shown). tests/targets/test_tensorrt_conformance.py checks every name used here against the real
bindings of 8.6.1, 10.3, 10.13 and 11.4. No torch: the GPU is asked through ``libcudart``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from dense_edge import onnxfile
from dense_edge.errors import UserError
from dense_edge.fileio import atomic_path
from dense_edge.progress import console, info, quiet
from dense_edge.targets.tensorrt import availability, cuda, polygraphy_data
from dense_edge.targets.tensorrt.dla import Placement, describe_placement, summarize_placement
from dense_edge.targets.tensorrt.plan import INPUT_NAME, PRECISION_RUN, BuildPlan, plan_for

if TYPE_CHECKING:
    import tensorrt as trt

ENGINE = "model.engine"
LAYERS = "layers.json"  # the engine inspector's description of the built engine


def make_plan(
    precision: str, input_shape: list[int], settings: Any, *, dynamic_batch: bool = True
) -> BuildPlan:
    """Kit layout: ``model.onnx`` is what 11.x builds; ``model.fp32.onnx`` the float model."""
    return plan_for(
        precision,
        input_shape,
        min_batch=settings.min_batch,
        opt_batch=settings.opt_batch,
        max_batch=settings.max_batch,
        workspace_mb=settings.workspace_mb,
        optimization_level=settings.optimization_level,
        dla_core=settings.dla_core,
        onnx="model.onnx",
        onnx_fp32="model.onnx" if precision == "fp32" else "model.fp32.onnx",
        dynamic_batch=dynamic_batch,
    )


TRT86_ONNX = "model.trt86.onnx"  # what TensorRT 8.6/9.x build (see onnx86)


def write_kit(
    folder: Path, source: Path, float_onnx: Path, plan: BuildPlan
) -> tuple[list[str], BuildPlan]:
    """The files a device needs to build the engine with NVIDIA's tools: ONNX, scripts, plan.
    The plan comes back with ``onnx_trt86`` set where 8.6 needs a converted model."""
    import onnx

    from dense_edge.targets.tensorrt import onnx86  # imports onnx at its top

    shutil.copyfile(source, folder / plan.onnx)
    names = [plan.onnx]
    if plan.onnx_fp32 != plan.onnx:
        shutil.copyfile(float_onnx, folder / plan.onnx_fp32)
        names.append(plan.onnx_fp32)
    # 8.6 builds int8 from the Q/DQ model, fp16/fp32 from the float32 model.
    base = folder / (plan.onnx if plan.precision == "int8" else plan.onnx_fp32)
    model = onnx.load(str(base))
    if onnx86.needs_conversion(model):
        onnx.save(onnx86.convert(model), str(folder / TRT86_ONNX))
        names.append(TRT86_ONNX)
        plan = replace(plan, onnx_trt86=TRT86_ONNX)
    for name, text in (
        ("trtexec.sh", plan.trtexec_script()),
        ("polygraphy.sh", plan.polygraphy_script()),
    ):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
        names.append(name)
    (folder / "build_plan.json").write_text(json.dumps(plan.to_dict(), indent=2) + "\n")
    names.append("build_plan.json")
    shutil.copyfile(Path(polygraphy_data.__file__), folder / "polygraphy_data.py")
    names.append("polygraphy_data.py")
    return names, plan


def _progress_monitor() -> trt.IProgressMonitor | None:
    """Build progress on the terminal (TensorRT builds can take minutes); None before 10.0."""
    import tensorrt as trt

    if not hasattr(trt, "IProgressMonitor"):
        return None  # 8.6: the bindings have no progress monitor

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.depth = 0

        def phase_start(self, phase_name: str, parent_phase: str, num_steps: int) -> None:
            try:
                if not quiet():
                    indent = "  " * self.depth
                    console().print(f"{indent}tensorrt: {phase_name} ({num_steps} steps)")
                self.depth += 1
            except Exception:  # an exception must never escape into TensorRT
                pass

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            self.depth = max(0, self.depth - 1)

    return Monitor()


def parse_onnx(network: trt.INetworkDefinition, logger: trt.ILogger, onnx: Path) -> None:
    """Parse ``onnx`` into ``network``; every parser error, with its node, in one message."""
    import tensorrt as trt

    parser = trt.OnnxParser(network, logger)
    ok = parser.parse_from_file(str(onnx))
    errors = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        # 8.6's ParserError has neither node_name nor node_operator (both arrive in 10.0).
        node = (e.node_name() or str(e.node())) if hasattr(e, "node_name") else str(e.node())
        op = f" ({e.node_operator()})" if hasattr(e, "node_operator") else ""
        errors.append(f"node {node}{op}: {e.desc()}")
    if not ok or errors:
        shown = "; ".join(errors[:5]) + (f"; ... {len(errors) - 5} more" if len(errors) > 5 else "")
        raise UserError(
            f"TensorRT's ONNX parser rejected the model: {shown or 'no details'}",
            path=onnx,
            fix="check the model with `dense-edge calibrate --check` or polygraphy inspect model",
        )


class Built(TypedDict):
    """What :func:`build` did: the TensorRT and GPU, and the settings the engine was built with."""

    version: str  # TensorRT's
    major: int
    gpu: dict[str, str]  # name, compute_capability
    strongly_typed: bool
    flags: list[str]  # BuilderFlag names set
    cleared_flags: list[str]
    source_onnx: str  # the kit's ONNX it built from
    timing_cache: str  # loaded, new or replaced
    dla: Placement | None  # where the layers run, for a DLA build


def build(plan: BuildPlan, kit: Path, *, timing_cache: Path | None) -> Built:
    """Build ``kit/model.engine`` from the kit's ONNX following ``plan``."""
    availability.load()  # a clear error if TensorRT is missing or only its stubs are
    import tensorrt as trt

    gpu = gpu_properties()
    version = str(trt.__version__)
    release = availability.version_tuple(version)
    problems = plan.problems(release)
    if problems:
        raise UserError("; ".join(problems), fix="change the recipe's targets entry for tensorrt")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    # 11.x is always strongly typed (the flag is deprecated and ignored there).
    strongly_typed_flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if plan.strongly_typed(release) and release[0] < 11 and strongly_typed_flag is not None:
        flags |= 1 << int(strongly_typed_flag)
    network = builder.create_network(flags)
    source = kit / plan.source_for(release)
    parse_onnx(network, logger, source)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
    config.builder_optimization_level = plan.optimization_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # for the layer report
    for name in plan.builder_flags(release):
        config.set_flag(_builder_flag(name, version))
    for name in plan.cleared_flags(release):
        config.clear_flag(_builder_flag(name, version))
    placement = None
    if plan.dla_core is not None:
        if builder.num_DLA_cores <= plan.dla_core:
            raise UserError(
                f"dla_core {plan.dla_core}: this device has {builder.num_DLA_cores} DLA cores",
                fix="remove dla_core or choose a core that exists",
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
        placement = dla_placement(network, config)
        info(describe_placement(placement))

    if not plan.static_input:  # a fixed-shape input takes no profile (as trtexec)
        profile = builder.create_optimization_profile()
        p = plan.profile
        profile.set_shape(
            INPUT_NAME, trt.Dims(list(p.min)), trt.Dims(list(p.opt)), trt.Dims(list(p.max))
        )
        if config.add_optimization_profile(profile) < 0:
            raise UserError(f"invalid optimisation profile {plan.profile}")

    cache_state = attach_timing_cache(config, timing_cache)
    monitor = _progress_monitor()  # must outlive the build
    if monitor is not None and hasattr(config, "progress_monitor"):  # 10.0+
        config.progress_monitor = monitor

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError(
            "TensorRT could not build the engine (see the TensorRT messages above)",
            fix="lower optimization_level, raise workspace_mb, or check the model with polygraphy",
        )
    (kit / ENGINE).write_bytes(bytes(serialized))
    _write_layer_info(logger, bytes(serialized), kit / LAYERS, plan.dla_core)
    if timing_cache is not None:
        updated = config.get_timing_cache()
        if updated is not None:
            with atomic_path(timing_cache) as tmp:
                tmp.write_bytes(bytes(updated.serialize()))
    return {
        "version": version,
        "major": release[0],
        "gpu": gpu,
        "strongly_typed": plan.strongly_typed(release),
        "flags": plan.builder_flags(release),
        "cleared_flags": plan.cleared_flags(release),
        "source_onnx": source.name,
        "timing_cache": cache_state,
        "dla": placement,
    }


def _builder_flag(name: str, version: str) -> trt.BuilderFlag:
    import tensorrt as trt

    flag = getattr(trt.BuilderFlag, name, None)
    if flag is None:
        raise UserError(f"TensorRT {version} has no builder flag {name}")
    return cast("trt.BuilderFlag", flag)


def attach_timing_cache(config: trt.IBuilderConfig, path: Path | None) -> str:
    """Load the timing cache at ``path`` into ``config``; one TensorRT rejects is replaced.

    ``set_timing_cache`` returns False for a cache from another TensorRT version or GPU; the
    build then starts from an empty cache, which overwrites the old file, and says so.
    """
    data = path.read_bytes() if path is not None and path.exists() else b""
    # create_timing_cache returns None for a blob it cannot read (a truncated or foreign file),
    # and set_timing_cache(None, ...) raises TypeError: both cases fall back to an empty cache.
    cache = config.create_timing_cache(data)
    if cache is not None and config.set_timing_cache(cache, False):
        return "loaded" if data else "new"
    info(
        f"tensorrt: TensorRT rejected the timing cache {path} (unreadable, or made by another "
        "TensorRT version or GPU?); building with an empty one, which replaces it"
    )
    empty = config.create_timing_cache(b"")
    if empty is None or not config.set_timing_cache(empty, False):
        raise UserError("TensorRT rejected an empty timing cache")
    return "replaced (the old one was rejected)"


def gpu_properties() -> dict[str, str]:
    """Name and compute capability of the GPU builds run on (MissingDependencyError: none)."""

    return cuda.gpu(0)


def dla_placement(network: trt.INetworkDefinition, config: trt.IBuilderConfig) -> Placement:
    """Which network layers the builder can run on the DLA, and which fall back to the GPU."""
    import tensorrt as trt

    rows = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        on_dla = (
            config.can_run_on_DLA(layer) and config.get_device_type(layer) == trt.DeviceType.DLA
        )
        rows.append((layer.name, str(layer.type).split(".")[-1], bool(on_dla)))
    return summarize_placement(rows)


def _write_layer_info(
    logger: trt.ILogger, engine_bytes: bytes, path: Path, dla_core: int | None
) -> None:
    """The built engine's layers, as TensorRT's engine inspector describes them (JSON)."""
    import tensorrt as trt

    runtime = trt.Runtime(logger)
    if dla_core is not None:
        runtime.DLA_core = dla_core
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    if engine is None:
        return
    inspector = engine.create_engine_inspector()
    path.write_text(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


def compile_engine(
    source: Path,
    out_dir: Path,
    *,
    precision: str,
    device: str | None,
    hint: str,
    threads: int | None,
    streams: int | None,
    settings: Any,
    float_onnx: Path,
    timing_cache: Path | None = None,
) -> dict[str, Any]:
    """The compile stage's entry point: the kit, then ``model.engine`` (needs TensorRT + GPU)."""

    manifest = onnxfile.read_manifest(source)
    dynamic = bool(manifest.get("dynamic", {}).get("batch", True))
    plan = make_plan(precision, manifest["input_shape"], settings, dynamic_batch=dynamic)
    files, plan = write_kit(out_dir, source, float_onnx, plan)
    built = build(plan, out_dir, timing_cache=timing_cache)
    files.insert(0, ENGINE)
    if (out_dir / LAYERS).exists():
        files.append(LAYERS)
    return {
        "files": files,
        "runtime": {"name": "tensorrt", "version": built["version"]},
        "device": "cuda:0" if plan.dla_core is None else f"DLA:{plan.dla_core}",
        "device_name": built["gpu"]["name"],
        "gpu": built["gpu"],
        "config": {
            "strongly_typed": built["strongly_typed"],
            "builder_flags": built["flags"],
            "cleared_builder_flags": built["cleared_flags"],
            "timing_cache": built["timing_cache"],
            "dla_placement": built["dla"],
            "source_onnx": built["source_onnx"],
            "workspace_mb": plan.workspace_mb,
            "optimization_level": plan.optimization_level,
            "dla_core": plan.dla_core,
            "hardware_compatibility": "NONE",
        },
        "profiles": [{k: list(v) for k, v in plan.to_dict()["profile"].items()}],
        "precision_run": PRECISION_RUN[precision],
        "threads": None,
        "streams": None,
        "build_plan": plan.to_dict(),
    }
