"""FP16 ONNX with float32 inputs and outputs, via ONNX Runtime's maintained float16 converter.

Inputs and outputs stay float32 (a Cast at each end), so a device app feeds the same tensors to
the FP16 model as to the FP32 one. This is the model TensorRT 11 (always strongly typed) builds
into an FP16 engine.
"""

from __future__ import annotations

import onnx


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from dense_edge.export.clean import slim

    converted = convert_float_to_float16(
        model, keep_io_types=True, disable_shape_infer=False, min_positive_val=1e-7
    )
    assert isinstance(converted, onnx.ModelProto)
    # The converter appends the I/O casts at the end of the node list; onnxslim re-sorts the
    # graph topologically (check_model requires it) and folds what the casts made constant.
    return slim(converted)
