"""dense-edge: DenseNet from PyTorch to edge engines, with proof that each engine is the same model.

Importing this package is cheap: torch, onnxruntime, openvino and tensorrt are imported by the
stages that need them, never here. The Python API (:mod:`dense_edge.api`):
:func:`quantize`, :func:`collect_statistics`, :func:`check`, :func:`compile`,
:func:`load_runner` and :func:`preprocess`.
"""

from dense_edge.api import check, collect_statistics, compile, load_runner, preprocess, quantize

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "check",
    "collect_statistics",
    "compile",
    "load_runner",
    "preprocess",
    "quantize",
]
