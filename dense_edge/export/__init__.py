"""Export: PyTorch -> ONNX, cleaned, self-describing and proven equal to the PyTorch model."""

from dense_edge.export.stage import ExportResult, export_stage, onnx_path

__all__ = ["ExportResult", "export_stage", "onnx_path"]
