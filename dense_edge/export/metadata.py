"""Writing the manifest into the ONNX file (``metadata_props``), so an ``.onnx`` alone is enough
for a device app: classes, preprocessing, input shape, architecture, source checkpoint hash.

The export and calibrate stages write it here; everyone reads it back with
:func:`dense_edge.onnxfile.read_manifest`, below the stages (the targets and the device runtime
read it too).
"""

from __future__ import annotations

import json
from typing import Any

import onnx

from dense_edge.onnxfile import MANIFEST_KEY

# Flat copies of the keys device apps read most, so they need no JSON parsing of the whole.
FLAT_KEYS = ("arch", "classes", "input_shape", "preprocess")


def embed(model: onnx.ModelProto, manifest: dict[str, Any]) -> None:
    props = {p.key: p.value for p in model.metadata_props}
    props[MANIFEST_KEY] = json.dumps(manifest, sort_keys=True)
    for key in FLAT_KEYS:
        if key in manifest:
            props[f"dense_edge.{key}"] = json.dumps(manifest[key])
    del model.metadata_props[:]
    for key, value in sorted(props.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "dense-edge"
    model.doc_string = f"{manifest.get('arch', 'DenseNet')} exported by dense-edge"
