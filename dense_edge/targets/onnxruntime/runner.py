"""Running an ONNX model (a file, one in memory, or an ONNX Runtime engine bundle) with ONNX
Runtime: the engine bundles' runner, and the one way every stage runs an ONNX model (export's
parity check, calibration's accuracy and its accuracy-aware search)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dense_edge.errors import UserError
from dense_edge.targets.base import Runner, RunnerDescription, TimedCall
from dense_edge.targets.onnxruntime import util

if TYPE_CHECKING:
    from dense_edge.manifest import EngineManifest


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"
    thread_safe = True  # InferenceSession.run may be called from several threads at once

    def __init__(
        self,
        model: str | Path | bytes,
        *,
        providers: list[str] | None = None,
        threads: int | None = None,
        optimization: str = "all",
    ) -> None:
        """``model``: an ONNX file, or a serialised model (``ModelProto.SerializeToString()``)."""
        super().__init__()
        self.model: Path | bytes = model if isinstance(model, bytes) else Path(model)
        self.providers = providers or ["CPUExecutionProvider"]
        self.threads = threads
        self.optimization = optimization
        self.session: Any = None

    @classmethod
    def from_bundle(cls, folder: Path, manifest: EngineManifest) -> OnnxRuntimeRunner:
        config = manifest.get("config", {})
        return cls(
            folder / "model.onnx",
            providers=config.get("providers"),
            threads=config.get("intra_op_num_threads"),
            optimization=config.get("graph_optimization_runtime", "all"),
        )

    def activate_impl(self) -> None:
        import onnxruntime as ort

        available = set(ort.get_available_providers())
        providers = [p for p in self.providers if p in available] or ["CPUExecutionProvider"]
        source = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            self.session = ort.InferenceSession(
                source, util.session_options(self.optimization, self.threads), providers=providers
            )
        except Exception as exc:
            raise UserError(
                f"ONNX Runtime cannot load the model ({str(exc).splitlines()[0][:200]})",
                path=self.model if isinstance(self.model, Path) else None,
            ) from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def infer_impl(self, images: np.ndarray) -> np.ndarray:
        # InferenceSession.run is safe to call from several threads at once.
        out: np.ndarray = self.session.run([self.output_name], {self.input_name: images})[0]
        return out

    def timed_call(self, images: np.ndarray) -> TimedCall:
        """An IOBinding over ``images`` and a preallocated output: no per-call copies.

        ONNX Runtime does not time its own runs (short of profiling), so the wall clock measures.
        The binding holds raw addresses, not the arrays: ``run`` closes over both, so they live as
        long as it can be called (an output freed on return was ONNX Runtime writing into freed
        memory: heap corruption on a 1000-class model).
        """
        x = np.ascontiguousarray(images, dtype=np.float32)
        out = np.empty_like(self.infer_impl(x))
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, x)
        binding.bind_output(
            self.output_name, "cpu", 0, np.float32, list(out.shape), out.ctypes.data
        )
        session = self.session

        # ``_bound``: the closure itself holds the bound memory, at no cost per call
        def run(_bound: tuple[np.ndarray, np.ndarray] = (x, out)) -> None:
            session.run_with_iobinding(binding)

        return TimedCall(run=run, output=lambda: out, buffers=(x, out))

    def deactivate_impl(self) -> None:
        self.session = None

    def describe(self) -> RunnerDescription:
        import onnxruntime as ort

        return {
            "runner": self.name,
            "runtime": f"onnxruntime {ort.__version__}",
            "providers": self.session.get_providers() if self.session else self.providers,
            "threads": self.threads or "default (physical cores)",
            "graph_optimization": self.optimization,
        }
