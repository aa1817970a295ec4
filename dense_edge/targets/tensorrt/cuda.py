"""The CUDA runtime, through ``ctypes`` on ``libcudart`` (no torch, no cuda-python).

The calls live in :mod:`dense_edge.targets.tensorrt.device` (the kit's standalone validator,
which must import nothing from dense-edge); this module turns its errors into dense-edge's.
"""

from __future__ import annotations

from dense_edge.errors import MissingDependencyError
from dense_edge.targets.tensorrt.device import Cuda, DeviceError

_CUDA: Cuda | None = None


def load() -> Cuda:
    """The process's CUDA runtime (loaded once); MissingDependencyError if it does not load."""
    global _CUDA
    if _CUDA is None:
        try:
            _CUDA = Cuda()
        except DeviceError as exc:
            raise MissingDependencyError(str(exc)) from None
    return _CUDA


def gpu(index: int = 0) -> dict[str, str]:
    """Name and compute capability of GPU ``index``; MissingDependencyError if there is none."""
    cuda = load()
    if cuda.device_count() <= index:
        raise MissingDependencyError(
            "TensorRT needs a CUDA GPU; none is visible",
            fix="build and run on the target device (the kit's trtexec.sh and validate.sh)",
        )
    return cuda.properties(index)
