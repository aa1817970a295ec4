"""Manifests: what every later stage and every device app needs to know about a model.

A manifest is plain JSON (no torch needed to read it). The model manifest is written by ``train``
(or by loading weights); every later artifact (ONNX metadata, Q/DQ models, engine bundles) carries
a copy of its model-level keys.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict, cast

from dense_edge._version import __version__
from dense_edge.catalog import libraries
from dense_edge.errors import UserError
from dense_edge.fileio import read_json
from dense_edge.records import MANIFEST_FILE

FORMAT = "dense-edge/manifest"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("arch", "num_classes", "classes", "input_shape", "preprocess")
MODEL_KEYS = (
    "arch",
    "architecture",
    "num_classes",
    "classes",
    "input_shape",
    "input_name",
    "output_name",
    "preprocess",
    "metrics",
    "seed",
    "source",
)


class _ModelManifestKeys(TypedDict):
    """The keys :func:`validate_manifest` guarantees."""

    format: str
    format_version: int
    arch: str
    num_classes: int
    classes: list[str]
    input_shape: list[int]  # [C, H, W]
    preprocess: dict[str, Any]  # :meth:`dense_edge.preprocess.Preprocess.to_dict`


class WeightsFile(TypedDict):
    file: str  # relative to the model folder
    sha256: str


class ModelManifest(_ModelManifestKeys, total=False):
    """``RUN/model/manifest.json``: the model, its classes and its preprocessing. Every later
    artifact (ONNX metadata, Q/DQ models, engine manifests) carries its ``MODEL_KEYS``."""

    kind: str  # "model" here; "onnx", "int8", "engine" in the artifacts that copy these keys
    architecture: dict[str, Any]
    input_name: str
    output_name: str
    metrics: dict[str, Any]
    seed: int | None
    source: dict[str, Any]
    weights: WeightsFile
    versions: dict[str, str | None]
    created: str


class StageStamp(TypedDict):
    """An engine's stage record, kept in its manifest
    (:meth:`dense_edge.stages.Stage.manifest_record`)."""

    fingerprint: str  # sha256 of the inputs
    inputs: Mapping[str, object]  # what the fingerprint covers


class EngineFile(TypedDict):
    sha256: str
    bytes: int


class RuntimeName(TypedDict):
    name: str  # onnxruntime, openvino, tensorrt
    version: str


class EngineRuntime(TypedDict, total=False):
    """What a runner reads of an engine's manifest: how it was built and what it runs on. A
    TensorRT kit's engine, which has no bundle, is described by these keys alone."""

    precision: str  # what was asked: fp32, fp16, int8
    precision_run: str  # what really runs (e.g. "bf16" for OpenVINO fp32 on this CPU)
    runtime: RuntimeName  # what built it
    device: str  # where it runs (OpenVINO's device, ONNX Runtime's provider, cuda:0 or DLA:n)
    gpu: dict[str, str]  # TensorRT: the GPU it was built on (name, compute_capability)
    config: dict[str, Any]  # the target's compile settings


class EngineManifest(ModelManifest, EngineRuntime, total=False):
    """``RUN/engines/<target>-<precision>/manifest.json``: the model's keys plus the engine's.
    :func:`dense_edge.bundle.read_manifest` guarantees ``kind`` ("engine") and a
    non-empty ``files``; ``target`` and ``precision`` are written by every compile."""

    target: str
    files: dict[str, EngineFile]
    stage: StageStamp  # the stage record
    manifest_sha256: str  # the seal over the manifest's own content


_LIBRARIES = ("torch", "onnx", "nncf", "numpy")  # and each declared target's library


def library_versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata (nothing is imported)."""
    out: dict[str, str | None] = {
        "dense_edge": __version__,
        "python": platform.python_version(),
    }
    for name in (*_LIBRARIES[:2], *libraries(), *_LIBRARIES[2:]):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def new_manifest(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        **fields,
        "versions": library_versions(),
        "created": now(),
    }


def model_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """The model-level keys that every derived artifact copies."""
    return {k: manifest[k] for k in MODEL_KEYS if k in manifest}


def validate_manifest(data: Any, where: str | Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UserError("manifest is not a JSON object", path=where)
    if data.get("format") != FORMAT:
        raise UserError(f"not a dense-edge manifest (format={data.get('format')!r})", path=where)
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(
            f"manifest format_version {version!r} is newer than this dense-edge understands "
            f"({FORMAT_VERSION})",
            path=where,
            fix="upgrade dense-edge",
        )
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise UserError(f"manifest lacks {', '.join(missing)}", path=where)
    classes = data["classes"]
    if not isinstance(classes, list) or len(classes) != data["num_classes"]:
        raise UserError("manifest: classes must list num_classes names", path=where)
    if not isinstance(data["preprocess"], dict):
        raise UserError(
            f"manifest: preprocess must be a mapping, got {type(data['preprocess']).__name__}",
            path=where,
        )
    if not all(isinstance(c, str) for c in classes):
        raise UserError("manifest: classes must be names (strings)", path=where)
    shape = data["input_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) for s in shape)):
        raise UserError("manifest: input_shape must be [C, H, W]", path=where)
    return data


def load_manifest(path: str | Path) -> ModelManifest:
    """The model manifest at ``path`` (a model folder or its manifest.json), validated."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_FILE
    return cast(ModelManifest, validate_manifest(read_json(p), p))


def as_dict(manifest: ModelManifest) -> dict[str, Any]:
    """The same manifest as a plain mapping, for code that adds keys (derived artifacts)."""
    return cast(dict[str, Any], manifest)


def python_info() -> str:
    return f"{platform.python_implementation()} {sys.version.split()[0]}"
