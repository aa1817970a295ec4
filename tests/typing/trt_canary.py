"""Not a test: scripts/check runs mypy on this file and expects exactly this error, which proves
mypy really reads the TensorRT stubs (a missing stub would silently make everything Any)."""

import tensorrt as trt

builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
builder.create_networkk(0)  # deliberate typo: mypy must report it
