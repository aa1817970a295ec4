"""PyTorch -> ONNX.

The TorchScript-based exporter is the default for DenseNet, measured on densenet121 (torch 2.13):

- after onnxslim both exporters give the same graph, 368 nodes (Conv 120, Relu 121, BN 62,
  Concat 58, AveragePool 3, MaxPool, pooling head, Gemm); the TorchScript one keeps the canonical
  ``GlobalAveragePool + Flatten`` head where the torch.export one emits ``ReduceMean + Reshape``;
- it writes the opset asked for (7..20); the torch.export-based exporter starts at opset 18 and,
  asked for 17, fails to convert down and silently leaves the model at 18;
- it takes 0.7 s against 11.5 s, with no onnxscript dependency.

DenseNet has no data-dependent control flow, the case the torch.export-based exporter exists
for. That exporter stays selectable (``export.exporter: dynamo``) for when the TorchScript one is
removed from PyTorch.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from dense_edge.errors import MissingDependencyError, UserError
from dense_edge.records import INPUT_NAME, OUTPUT_NAME

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "export"]

TORCHSCRIPT_MAX_OPSET = 20


def export(
    model: object,
    path: Path,
    *,
    input_shape: list[int],
    opset: int,
    dynamic_batch: bool,
    dynamic_hw: bool,
    exporter: str = "torchscript",
) -> None:
    import torch

    assert isinstance(model, torch.nn.Module)
    model = model.eval()
    # A dynamic batch is traced at 2 (so nothing specialises on 1); a static one is exported at
    # batch 1, the shape every runtime and trtexec take for a static model.
    example = torch.randn(2 if dynamic_batch else 1, *input_shape)
    if exporter == "torchscript":
        if opset > TORCHSCRIPT_MAX_OPSET:
            raise UserError(
                f"export.opset {opset}: the TorchScript exporter writes opsets up to "
                f"{TORCHSCRIPT_MAX_OPSET}",
                fix=f"use opset <= {TORCHSCRIPT_MAX_OPSET} or export.exporter: dynamo",
            )
        axes: dict[int, str] = {}
        if dynamic_batch:
            axes[0] = "batch"
        if dynamic_hw:
            axes.update({2: "height", 3: "width"})
        with _quiet():
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: {0: "batch"}} if axes else None,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        return
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "export.exporter 'dynamo' needs onnxscript", fix="pip install onnxscript"
        ) from None
    if opset < 18:
        raise UserError(
            f"export.opset {opset}: the torch.export-based exporter writes opset 18 or newer",
            fix="use export.exporter: torchscript for older opsets",
        )
    dims: dict[int, object] = {}
    if dynamic_batch:
        dims[0] = torch.export.Dim("batch", min=1, max=65536)
    if dynamic_hw:
        dims[2] = torch.export.Dim.DYNAMIC
        dims[3] = torch.export.Dim.DYNAMIC
    with _quiet():
        program = torch.onnx.export(
            model,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": dims} if dims else None,
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
        assert program is not None
        program.save(str(path))


@contextlib.contextmanager
def _quiet():  # type: ignore[no-untyped-def]
    """The exporters print progress and deprecation notices; we print our own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            yield
