"""Finding a usable TensorRT, or saying exactly why there is none."""

from __future__ import annotations

from types import ModuleType

from dense_edge.errors import MissingDependencyError

INSTALL_HINT = (
    "install TensorRT's Python bindings: on a Jetson, JetPack's python3-libnvinfer "
    "(sudo apt install nvidia-tensorrt); elsewhere pip install tensorrt on a machine with an "
    "NVIDIA GPU"
)


def load() -> ModuleType:
    """The ``tensorrt`` module, or a MissingDependencyError that says what to install."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise MissingDependencyError(
            f"TensorRT is not installed ({exc.msg})", fix=INSTALL_HINT
        ) from None
    except OSError as exc:  # the Python bindings exist, libnvinfer does not load
        raise MissingDependencyError(
            f"TensorRT's libraries do not load ({exc})", fix=INSTALL_HINT
        ) from None
    # tensorrt-stubs alone make `import tensorrt` succeed as an empty namespace package.
    if getattr(trt, "__file__", None) is None or not hasattr(trt, "Builder"):
        raise MissingDependencyError(
            "TensorRT is not installed (only its type stubs are)", fix=INSTALL_HINT
        )
    return trt


def available() -> bool:
    try:
        load()
    except MissingDependencyError:
        return False
    return True


def major_version(version: str) -> int:
    return int(version.split(".")[0])


def version_tuple(version: str) -> tuple[int, int, int]:
    """``(major, minor, patch)`` of a TensorRT version string such as ``10.13.0.35``."""
    parts = [*version.split("."), "0", "0"][:3]
    try:
        return int(parts[0]), int(parts[1]), int(parts[2].split("+")[0].split("post")[0] or 0)
    except ValueError:
        raise MissingDependencyError(f"unrecognised TensorRT version {version!r}") from None
