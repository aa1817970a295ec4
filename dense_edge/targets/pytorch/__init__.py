"""The float reference: the PyTorch model, eager, as trained."""
