"""INT8 calibration: statistics once, ranges by method, Q/DQ models per target profile."""
