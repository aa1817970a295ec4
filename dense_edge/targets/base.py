"""The contracts every target fulfils: a :class:`Target` builds engines, a :class:`Runner` runs one.

A *runner* turns a batch of preprocessed images (float32 NCHW) into logits. It is a context
manager: ``activate`` allocates (creates a session, compiles, deserialises), ``infer`` runs,
``deactivate`` frees. It records the wall time of every ``infer`` call, and says whether it may
be called from several threads at once (``thread_safe``) and the largest batch one call takes
(``max_batch``). Export's parity check, calibration, validation, benchmarks and device apps only
ever see runners, never how an engine was built or a session made.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict

import numpy as np

from dense_edge.catalog import DeviceKind, Precision, ProfileName, TargetDeclaration
from dense_edge.manifest import EngineFile, EngineManifest, ModelManifest

if TYPE_CHECKING:
    from dense_edge.recipe.schema import TargetSection


WALL_CLOCK = "wall"  # the harness's own clock around the call, in Python


@dataclass(frozen=True)
class TimedCall:
    """One engine call on buffers prepared once, for the latency harness.

    ``run`` runs the engine again on the same input and output buffers. Where the runtime times its
    own calls (OpenVINO's ``InferRequest.latency``, TensorRT's CUDA events), ``engine_seconds``
    returns that measure of the last ``run`` and ``clock`` names it; the harness then quotes the
    runtime's figure, as the runtime's own benchmark tool does, and keeps its wall clock beside it.
    Without one, the wall clock around ``run`` is the measure (it includes about 10 us of
    Python's call overhead, and on a GPU the copies to and from it).

    ``output`` returns the logits the last ``run`` wrote (the bound output buffer itself, no
    copy), so a test can check that the timed engine computes what ``Runner.infer`` does.

    Memory a runtime reads or writes by address (a bound input, a preallocated output) must live
    as long as ``run`` can be called: ``run`` and ``output`` close over those arrays themselves,
    and ``buffers`` names them again, so neither a caller keeping only ``run`` nor one keeping
    only this object frees them under the runtime.
    """

    run: Callable[[], object]
    output: Callable[[], np.ndarray] | None = None  # None: a runner that does not expose it yet
    clock: str = WALL_CLOCK
    engine_seconds: Callable[[], float] | None = None
    buffers: tuple[object, ...] = ()


class RunnerDescription(TypedDict, total=False):
    """What :meth:`Runner.describe` says really runs (each runner fills what its runtime has)."""

    runner: str  # the runner's name
    runtime: str  # "<library> <version>"
    device: str  # OpenVINO's device, cuda:N, torch's device
    providers: list[str]  # ONNX Runtime: the providers the session uses
    precision_run: str
    threads: int | str  # a count, or how the runtime chooses it
    graph_optimization: str  # ONNX Runtime
    config: dict[str, str | int]  # OpenVINO's compile settings
    dla_core: int | None  # TensorRT
    min_batch: int | None  # TensorRT: the engine's profile, once active
    max_batch: int | None


class Runner(ABC):
    name: str = "runner"
    # One active runner may be called from several threads at once; when False, a caller that
    # shares it between threads runs one call at a time.
    thread_safe: ClassVar[bool] = False

    def __init__(self) -> None:
        self.inference_times: list[float] = []
        self.is_active = False

    # -- lifecycle ----------------------------------------------------------------------------
    def activate(self) -> Runner:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    # -- inference ----------------------------------------------------------------------------
    def infer(self, images: np.ndarray) -> np.ndarray:
        """Logits for one batch. Records the call's wall time in ``inference_times``."""
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate() the runner before infer()")
        t0 = time.perf_counter()
        out = self.infer_impl(np.ascontiguousarray(images, dtype=np.float32))
        self.inference_times.append(time.perf_counter() - t0)
        return out

    def infer_all(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        """Logits for any number of images, in batches of at most ``batch_size``."""
        parts = [self.infer(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def timed_call(self, images: np.ndarray) -> TimedCall:
        """A call that runs the engine on ``images`` again and again, for timing.

        Buffers are prepared once, so what a timer around the call sees is the engine, not copies
        of our glue. Targets override this with their runtime's zero-copy binding and, where the
        runtime has one, its own clock.
        """
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate() the runner before timed_call()")
        x = np.ascontiguousarray(images, dtype=np.float32)
        last: list[np.ndarray] = [np.zeros((0,), np.float32)]

        def run() -> None:
            last[0] = self.infer_impl(x)

        return TimedCall(run=run, output=lambda: last[0], buffers=(x,))

    @property
    def max_batch(self) -> int | None:
        """The largest batch one ``infer`` call takes once active (an engine's profile), or None
        when any batch runs."""
        return None

    def describe(self) -> RunnerDescription:
        """What really runs: runtime, version, device, precision, threads."""
        return {"runner": self.name}

    # -- hooks --------------------------------------------------------------------------------
    @abstractmethod
    def activate_impl(self) -> None: ...

    @abstractmethod
    def infer_impl(self, images: np.ndarray) -> np.ndarray: ...

    def deactivate_impl(self) -> None:
        return None


# -- the Target contract ----------------------------------------------------------------------
# One object per target package (``dense_edge/targets/<name>/target.py``), listed once in
# ``dense_edge.targets.registry``. What a target *is* (name, title, precisions, library, profile,
# colour...) is data in :mod:`dense_edge.catalog`, given as ``class X(Target, declared=...)``
# and copied onto the class as attributes; what it *does* is a method here, so no module outside
# ``targets/`` branches on a target's name. Declaring a target imports no runtime: ``status``,
# ``compile`` and ``load_runner`` import theirs when called.

Int8Source = Literal["onnx", "ir"]  # a Q/DQ ONNX, or an NNCF OpenVINO IR
Fp16Source = Literal["fp16-onnx", "fp32-onnx"]  # an FP16 ONNX, or the runtime converts fp32


# An OpenVINO device's properties as ``doctor`` shows them (names lower-cased).
DeviceProperties = dict[str, str | int | float | bool | list[str]]


class StatusDetails(TypedDict, total=False):
    """What a target's runtime can use here, beyond its version."""

    providers: list[str]  # ONNX Runtime's available execution providers
    devices: dict[str, DeviceProperties]  # OpenVINO's devices


class StatusJson(StatusDetails):
    """``doctor --json``'s entry for a target."""

    installed: bool
    version: str | None
    reason: str | None


@dataclass(frozen=True)
class TargetStatus:
    """What ``dense-edge doctor`` says about a target's runtime on this machine."""

    installed: bool
    version: str | None
    reason: str | None = None  # why it cannot be used, when not installed
    details: StatusDetails = field(default_factory=lambda: StatusDetails())

    def as_json(self) -> StatusJson:
        """The ``doctor --json`` entry: installed, version, reason, then the details."""
        return {"installed": self.installed, "version": self.version, "reason": self.reason,
                **self.details}  # fmt: skip


@dataclass(frozen=True)
class Compiled:
    """What ``Target.compile`` wrote into the engine folder."""

    files: list[str]  # names relative to the folder, the engine file first
    fields: dict[str, Any]  # engine-manifest fields: runtime, device, precision_run, config, ...
    sidecar_config: dict[str, str | int] | None = None  # written as <name>.txt (OpenVINO's)


@dataclass(frozen=True)
class KitFiles:
    """What ``Target.write_kit`` wrote into a device build kit."""

    files: list[str]
    fields: dict[str, Any]  # kit-manifest fields (e.g. the build plan)


class KitManifest(ModelManifest, total=False):
    """A device build kit's ``manifest.json`` (``Target.read_kit``): the model's keys, what the
    kit builds, the run it came from and the sha256 of every file."""

    target: str
    precision: str
    build_plan: dict[str, Any]  # the target's own plan (TensorRT's BuildPlan.to_dict)
    run: dict[str, str | None]  # dir, weights_sha256
    files: dict[str, EngineFile]


class KitEngine(TypedDict):
    """What a kit run adds to the device report's engine entry."""

    engine: str  # the engine's (or the stand-in's model's) file name
    origin: str  # who built it, or which runtime stands in
    config: dict[str, object]  # its build settings, as recorded (JSON values)
    size_bytes: int


@dataclass(frozen=True)
class KitRun:
    """What ``kit validate`` runs for one of a target's kits, and how the device report names it."""

    runner: Runner  # not yet activated
    name: str  # the engine's name in the device report (and, once merged, the run's report)
    target: str  # the target the report files it under (the stand-in's, for a stand-in)
    engine: KitEngine  # more engine fields for the device report
    precision_run: str | None  # what the report says runs; None: what the runner describes
    note: str | None  # shown with the report (e.g. "a stand-in, not a measurement")
    max_batch: int
    model_sha256: str  # of the model the kit builds from
    # host, device and the version of each runtime that decides what an engine is (names are
    # data: one key per runtime, None where this machine does not say)
    environment: dict[str, str | None]


class Target(ABC):
    """A runtime dense-edge builds engines for. A subclass is declared with its catalogue entry,
    ``class OpenVinoTarget(Target, declared=catalog.OPENVINO)``, and sets the behaviour
    attributes below the declared ones."""

    # declared in dense_edge.catalog (see TargetDeclaration for what each means)
    declared: ClassVar[TargetDeclaration]
    name: ClassVar[str]
    title: ClassVar[str]
    precisions: ClassVar[tuple[Precision, ...]]
    default_precisions: ClassVar[tuple[Precision, ...]]
    in_default_recipe: ClassVar[bool]
    pip_extra: ClassVar[str | None]
    library: ClassVar[str]
    device_kinds: ClassVar[tuple[DeviceKind, ...]]
    profile: ClassVar[ProfileName]
    color: ClassVar[str]
    kit_steps: ClassVar[str]
    # behaviour, set by the subclass
    int8_source: Int8Source
    fp16_source: Fp16Source
    kit_stand_in: str | None = None  # runner that may check its kits where it cannot run

    def __init_subclass__(cls, *, declared: TargetDeclaration, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.declared = declared
        for f in fields(TargetDeclaration):  # what a target is: its catalogue entry's fields
            setattr(cls, f.name, getattr(declared, f.name))

    @property
    def device_kind(self) -> DeviceKind:
        """Where validation measures this target's engines."""
        return self.device_kinds[0]

    @property
    def install_hint(self) -> str:
        if self.pip_extra is None:
            return f"pip install dense-edge (it brings {self.library})"
        return f"pip install 'dense-edge[{self.pip_extra}]'"

    @abstractmethod
    def status(self) -> TargetStatus:
        """Is the runtime installed here, which version, and what it can use; never raises."""

    def doctor_rows(self, status: TargetStatus) -> list[tuple[str, str, str]]:
        """``doctor``'s table rows (component, version, details) for ``status``."""
        if not status.installed:
            return [(self.name, "not installed", status.reason or self.install_hint)]
        return [(self.name, status.version or "?", "")]

    @abstractmethod
    def compile(
        self,
        source: Path,
        out: Path,
        *,
        precision: str,
        settings: TargetSection,
        float_onnx: Path,
        cache_dir: Path,
    ) -> Compiled:
        """Build an engine from ``source`` (the model ``source_kind`` names) into ``out``.

        ``float_onnx`` is the run's float ONNX (for targets that ship it alongside), and
        ``cache_dir`` a folder shared by every engine of the run (for build caches).
        """

    @abstractmethod
    def load_runner(self, folder: Path, manifest: EngineManifest) -> Runner:
        """A runner (not yet activated) for the engine bundle in ``folder``."""

    # -- device build kits (targets that may not run where dense-edge runs) --------------------
    def cannot_build_here(self) -> str | None:
        """Why engines cannot be built on this machine (then a kit is written), or None."""
        return None

    @property
    def kit_kind(self) -> str:
        """The ``kind`` of its kits' manifests."""
        return f"{self.name}-kit"

    @property
    def writes_kits(self) -> bool:
        return type(self).write_kit is not Target.write_kit

    def write_kit(
        self, folder: Path, source: Path, float_onnx: Path, precision: str,
        input_shape: list[int], settings: TargetSection,
    ) -> KitFiles:  # fmt: skip
        """Write what a device needs to build and check the engine itself (``writes_kits``)."""
        raise NotImplementedError(f"{self.name} writes no device build kits")

    def read_kit(self, folder: Path, *, verify: bool) -> KitManifest:
        """One of its kits' manifests; with ``verify``, after checking every file's sha256."""
        raise NotImplementedError(f"{self.name} writes no device build kits")

    def kit_run(self, kit: Path, manifest: KitManifest, *, runner: str, rebuild: bool) -> KitRun:
        """What runs the kit's evaluation set here: the target itself or its ``kit_stand_in``."""
        raise NotImplementedError(f"{self.name} writes no device build kits")
