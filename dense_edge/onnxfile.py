"""An ONNX file a user hands us: loaded with its tensors' claimed sizes checked, and the
dense-edge manifest embedded in it (``metadata_props``) read back, so an ``.onnx`` alone is enough
for a device app: classes, preprocessing, input shape, architecture, source checkpoint hash.

Every ONNX file a user hands us is read here first (:func:`load` or :func:`read_manifest`),
before ONNX Runtime, OpenVINO or numpy see it: a tensor whose dims claim more elements than its
data holds (a few hundred bytes that say 2**40 floats) is refused by its name, never allocated.
The export stage writes the manifest (:mod:`dense_edge.export.metadata`); the targets, the device
runtime and the stages read it here. onnx is imported inside the functions: device apps that
never load a plain ``.onnx`` never load it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dense_edge.errors import UserError
from dense_edge.manifest import validate_manifest

if TYPE_CHECKING:
    import onnx

MANIFEST_KEY = "dense_edge.manifest"  # the metadata_props key the whole manifest is under


def load(path: Path) -> onnx.ModelProto:
    """A user's ONNX file, its tensors' claimed sizes checked before anything reads them."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise UserError(
            f"not a readable ONNX model ({exc.__class__.__name__})", path=path
        ) from None
    check_sizes(model, path)
    return model


# Bits per element of the ONNX types numpy cannot name (4-bit types pack two to a byte).
_PACKED_BITS = {21: 4, 22: 4, 23: 4}  # UINT4, INT4, FLOAT4E2M1
_TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data",
                 "uint64_data")  # fmt: skip
_COMPLEX = (14, 15)  # COMPLEX64, COMPLEX128: two values per element in the typed fields


def check_sizes(model: onnx.ModelProto, where: str | Path) -> None:
    """Refuse a tensor (an initializer, or a Constant's value, in any subgraph) whose dims claim
    more elements than the data it carries. Tensors in external files are left to the runtime,
    which measures those files itself."""
    for kind, tensor in _tensors(model.graph):
        problem = _claim_problem(tensor)
        if problem is not None:
            name = tensor.name[:60] + ("..." if len(tensor.name) > 60 else "")
            raise UserError(
                f"{kind} {name!r} {problem}: the file is damaged or was edited",
                path=where,
                fix="export the model again, or fix that tensor's dims",
            )


def _tensors(graph: onnx.GraphProto) -> Iterator[tuple[str, onnx.TensorProto]]:
    for t in graph.initializer:
        yield "initializer", t
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield f"constant of node {node.name[:60]!r}", a.t
            for t in a.tensors:
                yield f"constant of node {node.name[:60]!r}", t
            if a.HasField("g"):
                yield from _tensors(a.g)
            for g in a.graphs:
                yield from _tensors(g)


def _claim_problem(t: onnx.TensorProto) -> str | None:
    import onnx

    if t.data_location == onnx.TensorProto.EXTERNAL:
        return None
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        return f"has a negative dimension {dims[:8]}"
    n = math.prod(dims)
    if n == 0:
        return None
    shape = "x".join(str(d) for d in dims[:8]) + ("x..." if len(dims) > 8 else "")
    if t.raw_data:
        bits = _PACKED_BITS.get(t.data_type)
        if bits is None:
            try:
                bits = 8 * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
            except (KeyError, TypeError, ValueError):
                return None  # a type we cannot size: the runtime judges it
        need, held = (n * bits + 7) // 8, len(t.raw_data)
        unit = "bytes"
    else:
        held = sum(len(getattr(t, f)) for f in _TYPED_FIELDS)
        need = 2 * n if t.data_type in _COMPLEX else n
        if t.data_type in _PACKED_BITS:
            need = (n + 1) // 2
        unit = "values"
    if need <= held:
        return None
    return f"claims {n:,} elements ({shape}) but holds {held:,} {unit} of data"


def read_manifest(path_or_model: str | Path | onnx.ModelProto) -> dict[str, Any]:
    """The manifest embedded in an ONNX model (a file, or one in memory)."""
    import onnx

    if isinstance(path_or_model, onnx.ModelProto):
        model, where = path_or_model, "ONNX model"
    else:
        where = str(path_or_model)
        try:
            model = onnx.load(str(path_or_model), load_external_data=False)
        except Exception as exc:
            raise UserError(f"not a readable ONNX file ({exc})", path=where) from None
    check_sizes(model, where)
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
