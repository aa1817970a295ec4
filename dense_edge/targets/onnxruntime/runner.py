"""Running an ONNX model with ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.targets.base import Runner


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(
        self,
        model: str | Path,
        *,
        providers: list[str] | None = None,
        threads: int | None = None,
        optimization: str = "all",
    ) -> None:
        super().__init__()
        self.model = Path(model)
        self.providers = providers or ["CPUExecutionProvider"]
        self.threads = threads
        self.optimization = optimization
        self.session: Any = None

    def activate_impl(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        if self.threads:
            opts.intra_op_num_threads = self.threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.model), opts, providers=self.providers)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def infer_impl(self, images: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: images})[0]

    def deactivate_impl(self) -> None:
        self.session = None

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "runner": self.name,
            "runtime": f"onnxruntime {ort.__version__}",
            "providers": self.session.get_providers() if self.session else self.providers,
            "threads": self.threads,
            "graph_optimization": self.optimization,
        }
