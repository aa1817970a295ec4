"""Validation against the float model: accuracy (comparator), latency (one harness), budgets."""
