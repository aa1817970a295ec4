"""The contract every target fulfils.

A *runner* turns a batch of preprocessed images (float32 NCHW) into logits. It is a context
manager: ``activate`` allocates (creates a session, compiles, deserialises), ``infer`` runs,
``deactivate`` frees. It records the wall time of every ``infer`` call. Validation and benchmarks
only ever see runners, never how an engine was built.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np


class Runner(ABC):
    name: str = "runner"

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

    def timed_call(self, images: np.ndarray) -> Callable[[], object]:
        """A call that runs the engine on ``images`` again and again, for timing.

        Buffers are prepared once, so what a timer around the call sees is the engine, not copies
        of our glue. Targets override this with their runtime's zero-copy binding.
        """
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate() the runner before timed_call()")
        x = np.ascontiguousarray(images, dtype=np.float32)
        return lambda: self.infer_impl(x)

    def describe(self) -> dict[str, Any]:
        """What really runs: runtime, version, device, precision, threads."""
        return {"runner": self.name}

    # -- hooks --------------------------------------------------------------------------------
    @abstractmethod
    def activate_impl(self) -> None: ...

    @abstractmethod
    def infer_impl(self, images: np.ndarray) -> np.ndarray: ...

    def deactivate_impl(self) -> None:
        return None
