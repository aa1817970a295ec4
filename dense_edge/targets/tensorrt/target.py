"""The TensorRT target: an engine built on the NVIDIA device, or a build kit where none is here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dense_edge import catalog
from dense_edge.errors import MissingDependencyError
from dense_edge.targets.base import (
    Compiled,
    KitFiles,
    KitManifest,
    KitRun,
    Runner,
    Target,
    TargetStatus,
)
from dense_edge.targets.tensorrt import availability, cuda, kit, selfcheck
from dense_edge.targets.tensorrt.compiler import compile_engine
from dense_edge.targets.tensorrt.runner import TensorRTRunner

if TYPE_CHECKING:
    from dense_edge.manifest import EngineManifest
    from dense_edge.recipe.schema import TargetSection

NAME = catalog.TENSORRT.name


class TensorRTTarget(Target, declared=catalog.TENSORRT):
    int8_source = "onnx"
    fp16_source = "fp16-onnx"
    kit_stand_in = "onnxruntime"  # `kit validate --runner onnxruntime` checks a kit on a CPU

    def status(self) -> TargetStatus:
        try:
            import tensorrt as trt
        except ImportError as exc:
            return TargetStatus(False, None, f"not installed ({exc.msg})")
        except OSError as exc:  # the bindings exist but libnvinfer does not load
            return TargetStatus(False, None, f"libraries missing ({exc})")
        if not hasattr(trt, "Builder"):
            # tensorrt-stubs alone makes `import tensorrt` succeed as an empty namespace package.
            return TargetStatus(False, None, "not installed (only type stubs)")
        return TargetStatus(True, getattr(trt, "__version__", "unknown"))

    def doctor_rows(self, status: TargetStatus) -> list[tuple[str, str, str]]:
        return [(self.name, status.version or "not installed", status.reason or "")]

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
        fields = compile_engine(source, out, precision=precision, device=settings.device,
                                hint=settings.hint, threads=settings.threads,
                                streams=settings.streams, settings=settings, float_onnx=float_onnx,
                                timing_cache=cache_dir / f"{NAME}.timing.cache")  # fmt: skip
        return Compiled(fields.pop("files"), fields)

    def load_runner(self, folder: Path, manifest: EngineManifest) -> Runner:

        return TensorRTRunner.from_bundle(folder, manifest)

    def cannot_build_here(self) -> str | None:
        try:
            availability.load()
        except MissingDependencyError as exc:
            return str(exc).split(" (install")[0]

        try:
            cuda.gpu(0)
        except MissingDependencyError as exc:
            return str(exc).split(" (")[0]
        return None

    @property
    def install_hint(self) -> str:
        return availability.INSTALL_HINT

    def write_kit(
        self, folder: Path, source: Path, float_onnx: Path, precision: str,
        input_shape: list[int], settings: TargetSection,
    ) -> KitFiles:  # fmt: skip

        return kit.write(folder, source, float_onnx, precision, input_shape, settings)

    def read_kit(self, folder: Path, *, verify: bool) -> KitManifest:

        return kit.read_kit(folder, verify=verify)

    def kit_run(self, kit: Path, manifest: KitManifest, *, runner: str, rebuild: bool) -> KitRun:

        return selfcheck.kit_run(kit, manifest, runner=runner, rebuild=rebuild)


TARGET = TensorRTTarget()
