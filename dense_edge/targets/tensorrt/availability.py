"""Finding a usable TensorRT, or saying exactly why there is none."""

from __future__ import annotations

from types import ModuleType

from dense_edge.errors import MissingDependencyError

INSTALL_HINT = (
    "pip install 'dense-edge[tensorrt]' on a machine with an NVIDIA GPU "
    "(or use the JetPack TensorRT)"
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


def version_tuple(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a TensorRT version string such as ``10.13.0.35``."""
    parts = [*version.split("."), "0"][:2]
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise MissingDependencyError(f"unrecognised TensorRT version {version!r}") from None
