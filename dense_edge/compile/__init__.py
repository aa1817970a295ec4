"""Compile: an ONNX or quantised model -> an engine bundle for one target and precision."""
