"""ONNX Runtime target."""
