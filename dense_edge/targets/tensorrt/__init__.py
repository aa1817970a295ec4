"""TensorRT target (NVIDIA GPUs and Jetsons), for TensorRT 10.x and 11.x.

INT8 means an explicitly quantised (Q/DQ) ONNX model from ``calibrate --profile tensorrt``:
TensorRT 10.1 deprecated implicit INT8 calibration and 11 removed it. Networks are built strongly
typed, so an engine's precision is what its ONNX says. Everything that needs no TensorRT (the
build plan, profiles, trtexec/Polygraphy commands, engine compatibility rules) lives in modules
that never import it; ``import dense_edge`` never imports tensorrt.
"""
