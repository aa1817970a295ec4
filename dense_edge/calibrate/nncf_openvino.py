"""The ``openvino`` profile: NNCF, OpenVINO's own quantiser, on the same calibration images.

NNCF quantises the OpenVINO model read from our float ONNX, with the FakeQuantize placement
OpenVINO's CPU plugin turns into int8 kernels. In accuracy-aware mode NNCF's own accuracy control
reverts the most harmful layers to float until the budget holds.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dense_edge import ovcore
from dense_edge.accuracy import correct
from dense_edge.calibrate.accuracy import openvino_accuracy
from dense_edge.calibrate.job import int8_manifest
from dense_edge.errors import MissingDependencyError, UserError
from dense_edge.fileio import scratch_path
from dense_edge.progress import Bar, bar, info
from dense_edge.records import FullCalibrationRecord

if TYPE_CHECKING:
    from dense_edge.calibrate.job import CalibrationJob

MANIFEST_RT_KEY = ("dense_edge", "manifest")
IR_SUFFIX = ".xml"  # an OpenVINO IR (NNCF's int8 model): built from and checked as one


def require_nncf() -> Any:
    try:
        import nncf
        import openvino  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "the openvino profile needs openvino and nncf",
            fix="pip install 'dense-edge[openvino]'",
        ) from None
    return nncf


@contextlib.contextmanager
def _quiet_nncf() -> Iterator[None]:
    """NNCF logs and draws its own progress bars; dense-edge shows its own."""
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def quantize(
    onnx_path: Path,
    images: np.ndarray,
    *,
    preset: str = "performance",
    ignored: list[str] | None = None,
) -> Any:
    nncf = require_nncf()
    model = ovcore.read_model(onnx_path)
    kwargs: dict[str, Any] = {
        "subset_size": len(images),
        "preset": _preset(nncf, preset),
        "target_device": nncf.TargetDevice.CPU,
    }
    if ignored:
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=list(ignored), validate=False)
    with _quiet_nncf(), bar("calibrate: NNCF quantisation (images run)", None) as progress:
        return nncf.quantize(model, nncf.Dataset(_Counted(images, progress)), **kwargs)


class _Counted:
    """The calibration images one at a time, each counted on the progress line as NNCF takes
    it (NNCF runs the model over them once per statistics pass, so the total is not known)."""

    def __init__(self, images: np.ndarray, progress: Bar) -> None:
        self.images, self.progress = images, progress

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self.images)):
            self.progress.advance()  # counted as taken: NNCF stops without asking for more
            yield self.images[i : i + 1]


def quantize_with_accuracy_control(
    onnx_path: Path,
    images: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    *,
    max_drop_points: float,
    preset: str = "performance",
) -> Any:
    nncf = require_nncf()
    model = ovcore.read_model(onnx_path)
    val = nncf.Dataset(
        [(val_images[i : i + 1], int(val_labels[i])) for i in range(len(val_labels))]
    )

    def validate(compiled: Any, data: Any) -> float:
        hits = total = 0
        out = compiled.output(0)
        for x, y in data:
            hits += correct(compiled(x)[out], np.array([y]))  # logits [1, classes]
            total += 1
            progress.advance()
        return hits / max(total, 1)

    title = "calibrate: NNCF accuracy-aware quantisation (images run)"
    with _quiet_nncf(), bar(title, None) as progress:
        return nncf.quantize_with_accuracy_control(
            model,
            calibration_dataset=nncf.Dataset(_Counted(images, progress)),
            validation_dataset=val,
            validation_fn=validate,
            max_drop=max_drop_points / 100.0,
            drop_type=nncf.DropType.ABSOLUTE,
            preset=_preset(nncf, preset),
            subset_size=len(images),
        )


def _preset(nncf: Any, name: str) -> Any:
    return {
        "performance": nncf.QuantizationPreset.PERFORMANCE,
        "mixed": nncf.QuantizationPreset.MIXED,
    }[name]


def save(model: Any, xml_path: Path, manifest: dict[str, Any]) -> None:
    """Write IR (.xml + .bin) atomically, the manifest inside the model's rt_info."""
    import openvino as ov

    model.set_rt_info(json.dumps(manifest, sort_keys=True), list(MANIFEST_RT_KEY))
    with scratch_path(xml_path, suffix=".xml") as tmp:
        bin_tmp = tmp.with_suffix(".bin")
        try:
            ov.save_model(model, str(tmp), compress_to_fp16=False)
            # The .xml names its weights file by stem: rename both, .bin first.
            bin_tmp.replace(xml_path.with_suffix(".bin"))
            tmp.replace(xml_path)
        finally:
            bin_tmp.unlink(missing_ok=True)


def read_manifest(xml_path: Path) -> dict[str, Any]:
    """The dense-edge manifest :func:`save` put in an IR's rt_info."""

    try:
        model = ovcore.core().read_model(str(xml_path))
        return dict(json.loads(model.get_rt_info(list(MANIFEST_RT_KEY)).astype(str)))
    except Exception:
        raise UserError("OpenVINO IR carries no dense-edge manifest", path=xml_path) from None


def quantized_layers(model: Any) -> tuple[list[str], list[str]]:
    """Convolutions/MatMuls whose data input is fake-quantised, and those left in float."""
    quantized: list[str] = []
    floating: list[str] = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in ("Convolution", "MatMul"):
            continue
        src = op.input_value(0).get_node()
        (quantized if src.get_type_name() == "FakeQuantize" else floating).append(
            op.get_friendly_name()
        )
    return quantized, floating


def write(
    qmodel: Any, xml_path: Path, float_manifest: dict[str, Any], profile: str, method: str
) -> tuple[list[str], list[str]]:
    """Save NNCF's ``qmodel`` as IR at ``xml_path``, the float model's manifest re-stamped for
    it inside; its quantised and float layers. The one way the stage and :func:`dense_edge.quantize`
    write it."""

    quantized, floating = quantized_layers(qmodel)
    save(qmodel, xml_path, int8_manifest(float_manifest, profile, method, floating))
    return quantized, floating


def build(
    job: CalibrationJob, target: Path, record: FullCalibrationRecord
) -> FullCalibrationRecord:
    """The calibrate stage's ``openvino`` profile: NNCF on the calibration images, IR at
    ``target``; its calibration record, ``record`` (the fields every profile writes) completed."""

    c = job.config
    images = job.calibration.images
    info(f"calibrate: NNCF quantisation on {len(images)} images")
    if c.accuracy_aware.enabled:
        if job.val is None or c.accuracy_aware.max_top1_drop is None:
            raise UserError(
                "accuracy-aware NNCF needs a validation split and accuracy_aware.max_top1_drop",
                fix="set calibration.accuracy_aware.max_top1_drop",
            )
        qmodel = quantize_with_accuracy_control(
            job.onnx_path,
            images,
            job.val[0],
            job.val[1],
            max_drop_points=c.accuracy_aware.max_top1_drop,
            preset=c.nncf_preset,
        )
    else:
        qmodel = quantize(job.onnx_path, images, preset=c.nncf_preset)
    quantized, floating = write(qmodel, target, job.manifest, record["profile"], record["method"])
    record["plan"] = {"quantized_layers": len(quantized), "float_layers": floating}
    if c.accuracy_aware.enabled:
        record["accuracy_aware"] = {"float_layers": floating, "engine": "nncf accuracy control"}
    if job.val is not None:
        record["validation"] = openvino_accuracy(job.onnx_path, target, job.val)
    return record
