"""dense-edge: DenseNet from PyTorch to edge engines, with proof that each engine is the same model.

Importing this package is cheap: torch, onnxruntime, openvino and tensorrt are imported by the
stages that need them, never here. The Python API (:mod:`dense_edge.api`):
:func:`quantize`, :func:`collect_statistics`, :func:`check`, :func:`build_engine`,
:func:`load_runner` and :func:`prepare` (the model's own preprocessing; not called
``preprocess``: :mod:`dense_edge.preprocess` is the preprocessing module).
"""

from dense_edge._version import __version__
from dense_edge.api import (
    build_engine,
    check,
    collect_statistics,
    load_runner,
    prepare,
    quantize,
)

__all__ = [
    "__version__",
    "build_engine",
    "check",
    "collect_statistics",
    "load_runner",
    "prepare",
    "quantize",
]
