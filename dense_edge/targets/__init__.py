"""Targets: one sub-package per runtime (onnxruntime, openvino, tensorrt), each with a runner
(how to run an engine) and a compiler (how to build one). Importing this package imports no
runtime; each target imports its runtime when used."""
