"""The device-app API: load an engine bundle, predict on images.

    from dense_edge import runtime
    model = runtime.load("runs/digits/engines/openvino-int8")   # or model.bundle, or model.onnx
    for p in model.predict("digit.png", top_k=3):
        print(p.label, p.score)

Import-light: on the OpenVINO and ONNX Runtime paths nothing imports torch. Preprocessing is the
manifest's, the same the model was trained and validated with.
"""

from dense_edge.runtime.archive import pack, unpack
from dense_edge.runtime.model import Model, Prediction, load

__all__ = ["Model", "Prediction", "load", "pack", "unpack"]
