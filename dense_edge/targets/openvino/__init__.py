"""OpenVINO target: IR (.xml/.bin) compiled for CPU (or GPU/NPU/AUTO where present)."""
