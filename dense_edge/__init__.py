"""dense-edge: DenseNet from PyTorch to edge engines, with proof that each engine is the same model.

Importing this package is cheap: torch, onnxruntime, openvino and tensorrt are imported by the
stages that need them, never here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
