"""Running the float PyTorch model: the reference every engine is judged against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.catalog import PYTORCH
from dense_edge.models import load
from dense_edge.targets.base import Runner, RunnerDescription


class PyTorchRunner(Runner):
    name = PYTORCH

    def __init__(self, model_dir: str | Path, *, device: str = "cpu") -> None:
        super().__init__()
        self.model_dir = Path(model_dir)
        self.device = device
        self.model: Any = None
        self.manifest: dict[str, Any] = {}  # the model's manifest, once active

    def activate_impl(self) -> None:

        self.model, self.manifest = load(self.model_dir)
        self.model = self.model.to(self.device).eval()

    def infer_impl(self, images: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(torch.from_numpy(images).to(self.device))
            if self.device != "cpu":
                torch.cuda.synchronize()
            result: np.ndarray = out.float().cpu().numpy()
            return result

    def deactivate_impl(self) -> None:
        self.model = None

    def describe(self) -> RunnerDescription:
        import torch

        return {
            "runner": self.name,
            "runtime": f"torch {torch.__version__} (eager)",
            "device": self.device,
            "precision_run": "fp32",
            "threads": torch.get_num_threads(),
        }
