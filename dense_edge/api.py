"""dense-edge from Python: quantise an ONNX model for a profile, check a model against one,
compile an engine and load its runner.

    int8 = dense_edge.quantize("model.onnx", images, profile="tensorrt")

``images`` is any iterable of arrays: uint8 images (HxW or HxWxC) are preprocessed with the
model's own preprocessing (the manifest dense-edge embeds at export), float32 arrays (CxHxW, or
NxCxHxW batches) are used as they are, and ``transform`` maps each item first (NNCF's
``transform_fn``). Statistics collection and range computation are separate steps:
:func:`collect_statistics` runs the float model once, and ``quantize(..., statistics=stats)``
tries another method without running it again.

Importing this module is cheap (the package root imports it): onnx, onnxruntime, openvino and
nncf, and the stage modules that bring numpy and pydantic with them, are imported inside the
functions that need them. ``import dense_edge`` loads five modules of ours and no numpy.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from dense_edge.catalog import (
    PROFILE_TENSORRT,
    FloatParts,
    MethodName,
    NncfProfileName,
    Precision,
    ProfileName,
    QdqProfileName,
)
from dense_edge.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from dense_edge.calibrate.checker import CheckReport
    from dense_edge.calibrate.collect import Statistics
    from dense_edge.calibrate.profiles import NncfProfile, QdqProfile
    from dense_edge.targets.base import Runner

Preset = Literal["performance", "mixed"]
TargetName = str  # a registered target's name (dense_edge.targets.registry.names())

__all__ = ["build_engine", "check", "collect_statistics", "load_runner", "prepare", "quantize"]


def prepare(model: onnx.ModelProto | str | Path, images: Iterable[np.ndarray]) -> np.ndarray:
    """uint8 images (HxW or HxWxC) -> the float32 NCHW batch the model takes, with the
    preprocessing in its dense-edge manifest."""
    out: np.ndarray = _preprocessing(model).batch(list(images))
    return out


def collect_statistics(
    model: onnx.ModelProto | str | Path,
    images: Iterable[np.ndarray],
    *,
    bins: int = 2048,
    transform: Callable[[Any], np.ndarray] | None = None,
) -> Statistics:
    """Run the float model once over ``images`` and keep every activation's histogram."""
    from dense_edge.calibrate.collect import batch_size_for, collect, histogram_bins
    from dense_edge.fileio import sha256_bytes

    batch = _batch(model, images, transform)
    with _model_file(model) as path:
        return collect(
            path,
            batch,
            bins=histogram_bins(bins),
            key=sha256_bytes(batch.tobytes())[:16],
            cache_dir=None,
            batch_size=batch_size_for(batch),
        )


@overload
def quantize(
    model: onnx.ModelProto | str | Path,
    images: Iterable[np.ndarray] | None = ...,
    *,
    profile: QdqProfileName = ...,
    method: MethodName = ...,
    percentile: float = ...,
    float_parts: FloatParts = ...,
    bins: int = ...,
    exclude: Iterable[str] = ...,
    statistics: Statistics | None = ...,
    transform: Callable[[Any], np.ndarray] | None = ...,
) -> onnx.ModelProto: ...


@overload
def quantize(
    model: onnx.ModelProto | str | Path,
    images: Iterable[np.ndarray] | None = ...,
    *,
    profile: NncfProfileName,
    output: str | Path,
    preset: Preset = ...,
    exclude: Iterable[str] = ...,
    transform: Callable[[Any], np.ndarray] | None = ...,
) -> Path: ...


def quantize(
    model: onnx.ModelProto | str | Path,
    images: Iterable[np.ndarray] | None = None,
    *,
    profile: ProfileName = PROFILE_TENSORRT,
    method: MethodName = "percentile",
    percentile: float = 99.99,
    float_parts: FloatParts = "fp16",
    bins: int = 2048,
    exclude: Iterable[str] = (),
    statistics: Statistics | None = None,
    transform: Callable[[Any], np.ndarray] | None = None,
    output: str | Path | None = None,
    preset: Preset = "performance",
) -> onnx.ModelProto | Path:
    """An INT8 copy of ``model`` for ``profile``, calibrated on ``images``.

    ``tensorrt`` and ``onnxruntime`` return a Q/DQ ``onnx.ModelProto`` that passed the
    profile's checker; ``exclude`` names weighted layers kept in float. ``openvino`` quantises
    with NNCF and writes OpenVINO IR to ``output`` (an ``.xml`` path), which it returns.
    A dense-edge manifest in the float model is carried over, so :func:`build_engine` can build
    engines from the result.
    """
    from dense_edge.calibrate import profiles
    from dense_edge.calibrate.profiles import NncfProfile, QdqProfile

    prof = profiles.get(profile)
    if isinstance(prof, NncfProfile):
        if output is None:
            raise UserError(
                "the openvino profile writes OpenVINO IR", fix="pass output='model.xml'"
            )
        if images is None:
            raise UserError("the openvino profile needs calibration images (NNCF collects)")
        return _quantize_nncf(model, images, transform, prof, Path(output), preset, list(exclude))
    assert isinstance(prof, QdqProfile)
    return _quantize_qdq(
        model, images, prof, method, percentile, float_parts, bins, exclude, statistics, transform
    )


def check(model: onnx.ModelProto | str | Path, profile: ProfileName) -> CheckReport:
    """Does ``model`` (a file, or an ``onnx.ModelProto``) obey ``profile``'s rules?

    The report lists every violation with the node it is on; ``report.ok`` is the verdict."""
    from dense_edge.calibrate import checker

    if isinstance(model, (str, Path)):
        return checker.check(model, profile)
    return checker.check_onnx(model, profile)


def build_engine(
    model: str | Path,
    *,
    target: TargetName,
    precision: Precision,
    out_dir: str | Path,
) -> Path:
    """Build an engine bundle from a model file dense-edge wrote (an exported ONNX, a
    :func:`quantize` result, an NNCF IR) into ``out_dir``; returns ``out_dir``. (Not named
    ``compile``: ``dense_edge.compile`` is the compile stage's package.)"""
    return _compile_bundle(Path(model), target, precision, Path(out_dir))


def load_runner(folder: str | Path) -> Runner:
    """A runner for an engine bundle (a context manager: ``with load_runner(f) as r:``)."""
    from dense_edge.targets.registry import load_runner as registry_load_runner

    return registry_load_runner(folder)


def _compile_bundle(source: Path, target: TargetName, precision: str, out_dir: Path) -> Path:
    """The one place the API builds an engine: the compile stage's own ``build_bundle``, without
    a run folder; the target's default settings apply."""
    from dense_edge.compile.stage import build_bundle
    from dense_edge.recipe.schema import TargetSection
    from dense_edge.stages import atomic_dir
    from dense_edge.targets import registry

    registry.check_precision(target, precision)
    if not source.is_file():
        raise UserError("model not found", path=source)
    if out_dir.exists():
        raise UserError("already exists", path=out_dir, fix="choose a new out_dir or remove it")
    t = registry.get(target)
    with atomic_dir(out_dir) as tmp, tempfile.TemporaryDirectory() as cache:
        # as the compile stage builds, without a run folder; a timing cache (TensorRT's) lives
        # for this build only, never inside the sealed engine folder
        build_bundle(source, tmp, t, precision, TargetSection(name=target), float_onnx=source,
                     cache_dir=Path(cache), source_name=str(source))  # fmt: skip
    return out_dir


# -- helpers --------------------------------------------------------------------------------------


def _quantize_qdq(
    model: onnx.ModelProto | str | Path,
    images: Iterable[np.ndarray] | None,
    prof: QdqProfile,
    method: MethodName,
    percentile: float,
    float_parts: FloatParts,
    bins: int,
    exclude: Iterable[str],
    statistics: Statistics | None,
    transform: Callable[[Any], np.ndarray] | None,
) -> onnx.ModelProto:
    from dense_edge.calibrate.methods import MethodOptions
    from dense_edge.calibrate.quantize import quantize_qdq

    float_model = _load(model)
    if statistics is None:
        if images is None:
            raise UserError("quantize needs calibration images or statistics=")
        statistics = collect_statistics(float_model, images, bins=bins, transform=transform)
    opts = MethodOptions(method, percentile)
    rules = prof.rules(float_parts)
    quantized = quantize_qdq(
        float_model, statistics, rules, opts, set(exclude), manifest=_manifest(float_model)
    )
    out: onnx.ModelProto = quantized.model
    return out


def _quantize_nncf(
    model: onnx.ModelProto | str | Path,
    images: Iterable[np.ndarray],
    transform: Callable[[Any], np.ndarray] | None,
    prof: NncfProfile,
    output: Path,
    preset: Preset,
    exclude: list[str],
) -> Path:
    from dense_edge.calibrate import nncf_openvino

    batch = _batch(model, images, transform)
    with _model_file(model) as path:
        qmodel = nncf_openvino.quantize(path, batch, preset=preset, ignored=exclude or None)
    manifest = _manifest(_load(model)) or {}
    output.parent.mkdir(parents=True, exist_ok=True)
    nncf_openvino.write(qmodel, output, manifest, prof.name, prof.method_for(preset))
    return output


def _load(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    if not isinstance(model, (str, Path)):
        return model
    from dense_edge import onnxfile

    path = Path(model)
    if not path.is_file():
        raise UserError("model not found", path=path)
    return onnxfile.load(path)


def _manifest(model: onnx.ModelProto) -> dict[str, Any] | None:
    from dense_edge import onnxfile

    try:
        return onnxfile.read_manifest(model)
    except UserError:
        return None  # not exported by dense-edge: quantised all the same


def _preprocessing(model: onnx.ModelProto | str | Path) -> Any:
    from dense_edge.preprocess import Preprocess  # numpy: `import dense_edge` stays cheap

    manifest = _manifest(_load(model))
    if manifest is None:
        raise UserError(
            "uint8 images need the model's preprocessing, and the model has no dense-edge manifest",
            fix="pass float32 CxHxW arrays, or transform= to turn each image into one",
        )
    return Preprocess.from_dict(manifest["preprocess"])


def _batch(
    model: onnx.ModelProto | str | Path,
    images: Iterable[np.ndarray],
    transform: Callable[[Any], np.ndarray] | None,
) -> np.ndarray:
    """Every calibration item as one float32 NCHW array."""
    import numpy as np

    items = [transform(x) if transform is not None else np.asarray(x) for x in images]
    if not items:
        raise UserError("no calibration images", fix="pass at least one image")
    raw = [x for x in items if x.dtype == np.uint8]
    if raw and len(raw) != len(items):
        raise UserError("calibration images mix uint8 and float arrays", fix="pass one kind")
    if raw:
        return np.asarray(_preprocessing(model).batch(raw), np.float32)
    parts = [x[None] if x.ndim == 3 else x for x in items]
    if any(p.ndim != 4 for p in parts):
        raise UserError("float images must be CxHxW arrays or NxCxHxW batches")
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


@contextmanager
def _model_file(model: onnx.ModelProto | str | Path) -> Iterator[Path]:
    """A path to ``model``: its own, or a temporary copy of an in-memory model."""
    if isinstance(model, (str, Path)):
        _load(model)  # a missing or unreadable file is the user's one-line error
        yield Path(model)
        return
    import onnx

    with tempfile.TemporaryDirectory(prefix="dense-edge-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        yield path
