"""Runs inside the ModelOpt virtual environment (see modelopt_compare.py): quantise one float
ONNX with ModelOpt's ONNX PTQ, int8, its defaults except calibration on the CPU.

    python modelopt_worker.py FLOAT.onnx CALIB.npy OUT.onnx fp16|fp32
"""

import sys

import numpy as np
from modelopt.onnx.quantization import quantize

src, calib, out, high = sys.argv[1:5]
quantize(
    src,
    quantize_mode="int8",
    calibration_data=np.load(calib),
    calibration_eps=["cpu"],
    high_precision_dtype=high,
    output_path=out,
    log_level="WARNING",
)
