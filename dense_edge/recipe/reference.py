"""The reference of recipe keys, generated from the schema: ``dense-edge recipe``.

Types, defaults and bounds are read from :mod:`dense_edge.recipe.schema` itself, so they cannot
drift; the one-line descriptions live here, and a test keeps them and the README's copy of this
reference equal to the schema.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from dense_edge.recipe.schema import Recipe, profile_names, target_names

HELP: dict[str, str] = {
    "name": "run folder name under runs/ (letters, digits, '.', '_', '-')",
    "seed": "seed for weights, shuffling and augmentation",
    "model.arch": "architecture, e.g. densenet-digits, densenet121, densenet-bc-100-12",
    "model.num_classes": "classes of the classifier (default: the data's class folders)",
    "model.weights": "import weights instead of training: our checkpoint, a .pth, .safetensors",
    "model.memory_efficient": "checkpointed dense layers: less memory, slower training",
    "model.drop_rate": "dropout after each dense layer while training",
    "data.source": "where images come from",
    "data.root": "image folder (root/<class>/*.png) or CIFAR-10 batch folder",
    "data.val_fraction": "share of each class held out for validation (one-folder layout)",
    "data.test_fraction": "share of each class held out for the test (one-folder layout)",
    "data.split_seed": "seed of the stratified split",
    "data.skip_corrupt": "skip (and count) unusable images instead of failing",
    "data.limit": "at most this many images per split",
    "data.synthetic_samples": "images per split of the synthetic source",
    "preprocess.input_size": "[height, width] of the tensor the model takes",
    "preprocess.resize": "shorter side, or [height, width], before the centre crop",
    "preprocess.crop": "centre-crop to input_size after resizing",
    "preprocess.color": "colour mode the model takes (L = grey)",
    "preprocess.channel_order": "order of the 3 channels in the tensor",
    "preprocess.interpolation": "resampling filter of the resize",
    "preprocess.mean": "per-channel mean subtracted after scaling to 0..1",
    "preprocess.std": "per-channel standard deviation divided by",
    "train.epochs": "passes over the training split",
    "train.batch_size": "images per training step",
    "train.lr": "initial learning rate of SGD",
    "train.momentum": "SGD momentum",
    "train.nesterov": "Nesterov momentum",
    "train.weight_decay": "L2 weight decay",
    "train.schedule": "learning-rate schedule",
    "train.milestones": "step schedule: fractions of the epochs where the rate drops",
    "train.gamma": "step schedule: factor of each drop",
    "train.augment.pad_crop": "random crop after zero-padding by this many pixels",
    "train.augment.hflip": "random horizontal flips",
    "train.augment.random_resized_crop": "ImageNet-style random 8-100% area crop, then resize",
    "train.amp": "mixed precision on CUDA",
    "train.threads": "torch CPU threads; null: usable CPUs times the machine's idle share",
    "train.workers": "input worker processes for file sources; null: CPUs - 1, at most 4",
    "export.opset": "ONNX opset",
    "export.concat_layout": "chained: each dense block one growing tensor; torchvision: re-concat",
    "export.exporter": "PyTorch's ONNX exporter",
    "export.dynamic_batch": "batch dimension left dynamic",
    "export.dynamic_hw": "height and width left dynamic",
    "export.precision": "precision of the exported float model",
    "export.simplify": "fold constants and simplify the graph",
    "export.parity.samples": "images the ONNX model is compared with PyTorch on",
    "export.parity.max_abs_error": "largest absolute logit difference (null: off)",
    "export.parity.min_cosine": "smallest cosine similarity of the logits (null: off)",
    "export.parity.min_top1_agreement": "smallest share of equal top-1 answers (null: off)",
    "export.parity_fp16.samples": "as export.parity.samples, for the fp16 model",
    "export.parity_fp16.max_abs_error": "as export.parity.max_abs_error, for fp16",
    "export.parity_fp16.min_cosine": "as export.parity.min_cosine, for fp16",
    "export.parity_fp16.min_top1_agreement": "as export.parity.min_top1_agreement, for fp16",
    "calibration.source": "'data' (the training split), an image folder or a manifest file",
    "calibration.samples": "images calibration draws",
    "calibration.seed": "seed of the draw",
    "calibration.method": "how activation ranges are chosen",
    "calibration.percentile": "percentile method: share of values the range keeps",
    "calibration.bins": "histogram bins (a power of two)",
    "calibration.skip_unreadable": "skip unreadable calibration images instead of failing",
    "calibration.profiles": "runtime profiles an INT8 model is made for",
    "calibration.float_parts": "TensorRT: type of the layers kept out of INT8",
    "calibration.nncf_preset": "OpenVINO (NNCF) quantisation preset",
    "calibration.accuracy_aware.enabled": "keep the most sensitive layers in float",
    "calibration.accuracy_aware.max_top1_drop": "top-1 drop (points) to stay within",
    "calibration.accuracy_aware.min_agreement": "agreement with the float model to reach",
    "calibration.accuracy_aware.samples": "images the search judges on",
    "targets[].name": "engine target",
    "targets[].precisions": "precisions to compile",
    "targets[].device": "OpenVINO: CPU/GPU/NPU/AUTO; ONNX Runtime: provider name",
    "targets[].hint": "performance hint",
    "targets[].threads": "threads of the runtime (null: its default)",
    "targets[].streams": "OpenVINO streams (null: its default)",
    "targets[].min_batch": "TensorRT: smallest batch of the profile",
    "targets[].opt_batch": "TensorRT: batch the profile is tuned for (null: min_batch)",
    "targets[].max_batch": "TensorRT: largest batch of the profile",
    "targets[].workspace_mb": "TensorRT: builder workspace",
    "targets[].optimization_level": "TensorRT: builder optimisation level",
    "targets[].dla_core": "TensorRT: DLA core (null: GPU)",
    "validate.split": "split the engines are judged on",
    "validate.limit": "at most this many images",
    "validate.batch_sizes": "batch sizes whose latency is measured",
    "validate.decision_batch": "batch size the recommendation is made at",
    "validate.warmup": "untimed calls before timing",
    "validate.iterations": "timed calls (p99 is reported from 1000 up)",
    "validate.time_budget_s": "seconds of timing per engine and batch size (null: no limit)",
    "validate.rounds": "interleaved rounds the timing is split into",
    "validate.min_reference_top1": "float model's top-1 (fraction) needed to judge engines",
    "validate.budgets.max_top1_drop": "largest top-1 drop (points) against the float model",
    "validate.budgets.min_agreement": "smallest share of answers equal to the float model's",
    "validate.budgets.max_p99_ms": "largest p99 latency in milliseconds",
    "validate.budgets.min_speedup": "smallest speed-up over the float model",
}


def rows() -> list[tuple[str, str, str, str, str]]:
    """``(key, type, default, bounds, description)`` for every key, in schema order."""
    out: list[tuple[str, str, str, str, str]] = []
    _walk(Recipe, "", out)
    return out


def _walk(model: type[BaseModel], prefix: str, out: list[tuple[str, str, str, str, str]]) -> None:
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        sub = _section(field.annotation)
        if sub is not None:
            _walk(sub, key + ("[]." if _is_list(field.annotation) else "."), out)
            continue
        default = "required" if field.is_required() else _default(field)
        typ = _type(field.annotation)
        if key == "targets[].name":  # names the registries declare, checked by a validator
            typ = " | ".join(repr(n) for n in target_names())
        elif key == "calibration.profiles":
            typ = f"list[{' | '.join(repr(n) for n in profile_names())}]"
        out.append((key, typ, default, _bounds(field.metadata), HELP.get(key, "")))


def _section(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if _is_list(annotation):
        return _section(typing.get_args(annotation)[0])
    return None


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list


def _default(field: Any) -> str:
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "-"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "-"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0]) + _item_bounds(args[1:])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type(a) for a in args)
    if origin is list:
        return f"list[{_type(args[0])}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _item_bounds(metadata: Any) -> str:
    text = _bounds(list(metadata))
    return f" ({text})" if text else ""


def _bounds(metadata: list[Any]) -> str:
    parts = []
    for m in metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(m, attr, None)
            if value is not None:
                parts.append(f"{sym} {value:g}" if isinstance(value, float) else f"{sym} {value}")
        for sub in getattr(m, "metadata", ()) or ():  # FieldInfo inside Annotated
            parts.append(_bounds([sub]))
        if getattr(m, "min_length", None):
            parts.append(f"at least {m.min_length} item")
    return ", ".join(p for p in parts if p)


def markdown() -> str:
    """The reference as a Markdown table (the README's copy)."""
    lines = ["| key | type | default | bounds | what it sets |", "|---|---|---|---|---|"]
    for key, typ, default, bounds, text in rows():
        cells = [f"`{key}`", typ.replace("|", "\\|"), f"`{default}`", bounds, text]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def text() -> str:
    """The reference as plain text, one key a line (``dense-edge recipe``)."""
    table = rows()
    width = max(len(r[0]) for r in table)
    out = []
    for key, typ, default, bounds, help_ in table:
        limits = f" [{bounds}]" if bounds else ""
        out.append(f"{key:<{width}}  {typ} = {default}{limits}\n{'':<{width}}  {help_}")
    return "\n".join(out) + "\n"
