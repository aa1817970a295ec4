"""``dense_edge.models.load``: a model folder, a checkpoint or foreign weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dense_edge.errors import WeightsError
from dense_edge.fileio import sha256_file
from dense_edge.manifest import as_dict, load_manifest, new_manifest, validate_manifest
from dense_edge.models.factory import create
from dense_edge.models.registry import get_config
from dense_edge.models.weights import (
    describe_state_dict,
    fit_state_dict,
    infer_arch,
    normalize_keys,
    read_state_dict,
)
from dense_edge.preprocess import for_config
from dense_edge.records import INPUT_NAME, MANIFEST_FILE, OUTPUT_NAME

WEIGHTS_FILE = "weights.safetensors"


def load_model(
    path: Path,
    *,
    arch: str | None,
    num_classes: int | None,
    classes: list[str] | None,
    memory_efficient: bool,
) -> tuple[Any, dict[str, Any]]:
    manifest: dict[str, Any] | None = None
    if path.is_dir():
        weights, manifest_path = path / WEIGHTS_FILE, path / MANIFEST_FILE
        if not weights.exists():
            raise WeightsError(
                f"model folder has no {WEIGHTS_FILE}", path=path, fix="run dense-edge train first"
            )
        if manifest_path.exists():
            manifest = as_dict(load_manifest(manifest_path))
        path = weights
    state_dict, meta = read_state_dict(path)
    state_dict = normalize_keys(state_dict)
    if manifest is None and "dense_edge_manifest" in meta:
        manifest = validate_manifest(json.loads(meta["dense_edge_manifest"]), path)

    if manifest is not None:
        if arch is not None and arch != manifest["arch"]:
            raise WeightsError(
                f"checkpoint is {manifest['arch']}, not {arch}",
                path=path,
                fix=f"set model.arch to {manifest['arch']}",
            )
        arch = manifest["arch"]
    if arch is None:
        arch = infer_arch(state_dict)
        if arch is None:
            blocks = list(describe_state_dict(state_dict).block_config)
            raise WeightsError(
                f"cannot tell which DenseNet these weights are (blocks {blocks})",
                path=path,
                fix="name the architecture with --arch",
            )
    info = describe_state_dict(state_dict)
    n = num_classes or (manifest or {}).get("num_classes") or info.num_classes
    in_ch = info.in_channels
    model = create(arch, num_classes=n, in_channels=in_ch, memory_efficient=memory_efficient)
    fit_state_dict(model, state_dict, arch=arch, source=path)
    model.eval()

    if manifest is None:
        config = get_config(arch)
        n_out = model.classifier.out_features
        if classes is not None and len(classes) != n_out:
            raise WeightsError(
                f"{len(classes)} class names given, the weights have {n_out} classes", path=path
            )
        pre = for_config(config)
        if in_ch and in_ch != config.in_channels:
            pre = pre.__class__.from_dict(
                {
                    **pre.to_dict(),
                    "color": "L" if in_ch == 1 else "RGB",
                    "mean": [0.5] * in_ch,
                    "std": [0.25] * in_ch,
                }
            )
        manifest = new_manifest(
            "model",
            arch=arch,
            architecture=config.arch_dict(),
            num_classes=n_out,
            classes=classes or [str(i) for i in range(n_out)],
            input_shape=pre.input_shape,
            input_name=INPUT_NAME,
            output_name=OUTPUT_NAME,
            preprocess=pre.to_dict(),
            metrics={},
            seed=None,
            source={"weights": str(path), "weights_sha256": sha256_file(path)},
        )
    return model, manifest
