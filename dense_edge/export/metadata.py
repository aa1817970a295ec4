"""The manifest inside the ONNX file (``metadata_props``), so an ``.onnx`` alone is enough for a
device app: classes, preprocessing, input shape, architecture, source checkpoint hash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx

from dense_edge.errors import UserError
from dense_edge.manifest import validate_manifest

MANIFEST_KEY = "dense_edge.manifest"
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


def read(path_or_model: str | Path | onnx.ModelProto) -> dict[str, Any]:
    """The manifest embedded in an ONNX model."""
    if isinstance(path_or_model, onnx.ModelProto):
        model, where = path_or_model, "ONNX model"
    else:
        where = str(path_or_model)
        try:
            model = onnx.load(str(path_or_model), load_external_data=False)
        except Exception as exc:
            raise UserError(f"not a readable ONNX file ({exc})", path=where) from None
    props = {p.key: p.value for p in model.metadata_props}
    if MANIFEST_KEY not in props:
        raise UserError(
            "ONNX file has no dense-edge manifest", path=where, fix="export it with dense-edge"
        )
    try:
        manifest = json.loads(props[MANIFEST_KEY])
    except ValueError:
        raise UserError(
            f"the dense-edge manifest embedded in this ONNX file (metadata {MANIFEST_KEY!r}) is "
            "not JSON",
            path=where,
            fix="export the model again with dense-edge export",
        ) from None
    return validate_manifest(manifest, where)
