"""Running a TensorRT engine: dense-edge's Runner around the kit's engine core.

No torch: :class:`dense_edge.targets.tensorrt.device.EngineRunner` holds device buffers, a
stream and CUDA events from ``libcudart`` through ``ctypes``, so a stock JetPack (TensorRT's
Python bindings, numpy) runs it, and the kit's ``validate_kit.py`` runs the very same code.
Batches larger than the profile's max are split, smaller than its min (static engines: every
DLA engine, ``min_batch > 1``) padded and the padding's logits dropped; one synchronise per
call; ``last_device_ms`` is the GPU compute of the last call (CUDA events around each enqueue,
as trtexec's "GPU Compute Time").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dense_edge.errors import UserError
from dense_edge.targets.base import Runner, RunnerDescription, TimedCall
from dense_edge.targets.tensorrt import availability, compat
from dense_edge.targets.tensorrt import cuda as cudart
from dense_edge.targets.tensorrt.device import ALIGNMENT, DeviceError, EngineRunner, chunks

if TYPE_CHECKING:
    from dense_edge.manifest import EngineManifest, EngineRuntime

__all__ = ["ALIGNMENT", "TensorRTRunner", "chunks", "is_aligned"]


REBUILD = "rebuild it here: bash trtexec.sh, or dense-edge compile --target tensorrt --force"


def is_aligned(address: int) -> bool:
    return address % ALIGNMENT == 0


class TensorRTRunner(Runner):
    name = "tensorrt"
    thread_safe = False  # an execution context runs one inference at a time

    def __init__(
        self, engine: str | Path, manifest: EngineRuntime | None = None, *, device: int = 0
    ) -> None:
        super().__init__()
        self.engine_path = Path(engine)
        self.manifest: EngineRuntime = manifest or {}
        self.device_index = device
        self.core: EngineRunner | None = None

    @classmethod
    def from_bundle(cls, folder: Path, manifest: EngineManifest) -> TensorRTRunner:
        return cls(folder / "model.engine", manifest)

    @property
    def last_device_ms(self) -> float | None:
        return self.core.last_device_ms if self.core is not None else None

    @property
    def min_batch(self) -> int | None:
        return self.core.min_batch if self.core is not None else None

    @property
    def max_batch(self) -> int | None:
        """The engine's profile's largest batch (known once active)."""
        return self.core.max_batch if self.core is not None else None

    # -- lifecycle ----------------------------------------------------------------------------
    def activate_impl(self) -> None:
        availability.load()  # a clear error if TensorRT is missing or only its stubs are
        import tensorrt as trt

        gpu = cudart.gpu(self.device_index)
        if self.manifest:
            compat.check(self.manifest, trt_version=str(trt.__version__), gpu_name=gpu["name"],
                         compute_capability=gpu["compute_capability"])  # fmt: skip
        dla_core = self.manifest.get("config", {}).get("dla_core")
        try:
            self.core = EngineRunner(trt, cudart.load(), self.engine_path.read_bytes(),
                                     dla_core=dla_core, device=self.device_index)  # fmt: skip
        except DeviceError as exc:
            raise UserError(str(exc), path=self.engine_path, fix=REBUILD) from None

    def deactivate_impl(self) -> None:
        if self.core is not None:
            self.core.close()
        self.core = None

    # -- inference ----------------------------------------------------------------------------
    def infer_impl(self, images: np.ndarray) -> np.ndarray:
        assert self.core is not None
        try:
            return self.core.infer(images)
        except DeviceError as exc:
            raise UserError(str(exc), path=self.engine_path) from None

    def timed_call(self, images: np.ndarray) -> TimedCall:
        """A host batch in, logits back on the host, as a device app does; the engine's own time
        is the GPU compute between the CUDA events around the enqueue (trtexec's "GPU Compute")."""
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate() the runner before timed_call()")
        x = np.ascontiguousarray(images, dtype=np.float32)
        return TimedCall(run=lambda: self.infer_impl(x), clock="TensorRT GPU compute (CUDA events)",
                         engine_seconds=lambda: (self.last_device_ms or 0.0) / 1000.0)  # fmt: skip

    def describe(self) -> RunnerDescription:
        import tensorrt as trt

        return {
            "runner": self.name,
            "runtime": f"tensorrt {trt.__version__}",
            "device": f"cuda:{self.device_index}",
            "precision_run": self.manifest.get("precision_run", "?"),
            "dla_core": self.manifest.get("config", {}).get("dla_core"),
            "min_batch": self.min_batch,
            "max_batch": self.max_batch,
        }
