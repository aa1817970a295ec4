"""The ONNX Runtime target: an optimised ONNX model run by an execution provider (CPU here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dense_edge import catalog
from dense_edge.targets.base import Compiled, Runner, Target, TargetStatus
from dense_edge.targets.onnxruntime.compiler import compile_engine
from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner

if TYPE_CHECKING:
    from dense_edge.manifest import EngineManifest
    from dense_edge.recipe.schema import TargetSection


class OnnxRuntimeTarget(Target, declared=catalog.ONNXRUNTIME):
    int8_source = "onnx"
    fp16_source = "fp16-onnx"

    def status(self) -> TargetStatus:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return TargetStatus(False, None, f"not installed ({exc.msg})")
        return TargetStatus(
            True, ort.__version__, details={"providers": ort.get_available_providers()}
        )

    def doctor_rows(self, status: TargetStatus) -> list[tuple[str, str, str]]:
        return [(self.name, status.version or "not installed",
                 ", ".join(status.details.get("providers", [])) or "-")]  # fmt: skip

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
                                streams=settings.streams)  # fmt: skip
        return Compiled(fields.pop("files"), fields)

    def load_runner(self, folder: Path, manifest: EngineManifest) -> Runner:

        return OnnxRuntimeRunner.from_bundle(folder, manifest)


TARGET = OnnxRuntimeTarget()
