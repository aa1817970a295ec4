"""Layer-wise debugging: float and quantised intermediate tensors side by side.

Both models run on a few samples with every weighted layer's output exposed; per layer the
signal-to-quantisation-noise ratio (dB) and cosine similarity say where INT8 hurts most.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import onnx

from dense_edge.calibrate.graph import Graph, node_name


@dataclass(frozen=True)
class LayerError:
    layer: str
    tensor: str
    snr_db: float
    cosine: float

    def to_dict(self) -> dict[str, object]:
        return {"layer": self.layer, "tensor": self.tensor, "snr_db": round(self.snr_db, 2),
                "cosine": round(self.cosine, 6)}  # fmt: skip


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    model = copy.deepcopy(model)
    have = {o.name for o in model.graph.output}
    inferred = onnx.shape_inference.infer_shapes(model).graph.value_info
    types = {v.name: v.type.tensor_type.elem_type for v in inferred}  # fp16 in fp16 models
    for n in names:
        if n not in have:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(n, types.get(n, onnx.TensorProto.FLOAT), None)
            )
    return model


def _run(model: onnx.ModelProto, images: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Every tensor in ``names`` on ``images``. A session of its own, as statistics collection
    has (:mod:`dense_edge.calibrate.collect`): it reads the intermediate tensors made outputs
    here, where a runner returns the logits only."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(
        _with_outputs(model, names).SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    outs = sess.run(names, {sess.get_inputs()[0].name: images})
    return dict(zip(names, outs, strict=True))


def compare_layers(
    float_model: onnx.ModelProto, quant_model: onnx.ModelProto, images: np.ndarray
) -> list[LayerError]:
    """Per weighted layer, worst first."""
    layers = [(node_name(n), n.output[0]) for n in Graph(float_model).weighted_nodes()]
    qnames = {o for n in quant_model.graph.node for o in n.output}
    layers = [(name, t) for name, t in layers if t in qnames]
    names = [t for _, t in layers]
    ref = _run(float_model, images, names)
    got = _run(quant_model, images, names)
    out = []
    for layer, t in layers:
        a = ref[t].astype(np.float64).ravel()
        b = got[t].astype(np.float64).ravel()
        noise = np.sum((a - b) ** 2)
        snr = 10 * np.log10(np.sum(a * a) / noise) if noise > 0 else float("inf")
        denom = np.linalg.norm(a) * np.linalg.norm(b)
        cos = float(a @ b / denom) if denom > 0 else 1.0
        out.append(LayerError(layer, t, float(snr), cos))
    return sorted(out, key=lambda e: e.snr_db)
