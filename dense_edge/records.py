"""The names and records every stage agrees on, defined once.

A stage writes a record into the run folder and later stages read it back; both sides use the
names here, so a file name or a schema version cannot drift between writer and reader. The
records themselves and their loaders (each validates on read) live with their owners:

- model manifest, ``RUN/model/manifest.json``: :class:`dense_edge.manifest.ModelManifest`,
  read by :func:`dense_edge.manifest.load_manifest`;
- engine manifest, ``RUN/engines/<name>/manifest.json``: the model manifest's keys plus the
  engine's, read (files and seal checked) by :func:`dense_edge.bundle.read_manifest`;
- stage record, ``<stage folder>/.dense-edge-stage.json``: :class:`dense_edge.stages.StageRecord`,
  read by :func:`dense_edge.stages.read_record`;
- calibration record, ``RUN/int8/<profile>/calibration.json``: :class:`CalibrationRecord`, read by
  :func:`load_calibration_record`;
- report, ``RUN/report/report.json``: :class:`Report`, read by
  :func:`dense_edge.report.schema.load`.

Only the standard library, :mod:`dense_edge.errors` and :mod:`dense_edge.fileio` are imported
here: every stage (and the device runtime) may import this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict, cast

from dense_edge.errors import UserError
from dense_edge.fileio import read_json

# The model's one input and one output, in every ONNX model, Q/DQ model and engine.
INPUT_NAME = "images"
OUTPUT_NAME = "logits"

# File names inside the run folder.
MANIFEST_FILE = "manifest.json"  # a model folder's and an engine bundle's manifest
CALIBRATION_FILE = "calibration.json"  # next to each int8 profile's model
REPORT_FILE = "report.json"  # the report's machine-readable form (report.md/html are renders)

# The report format: ``report compare`` refuses another schema or version.
REPORT_SCHEMA = "dense-edge/report"
REPORT_SCHEMA_VERSION = 2


class CalibrationAccuracy(TypedDict):
    """How an int8 model did against its float model on the validation split (calibration.json's
    ``validation``): the record :func:`dense_edge.accuracy.compare_top1` returns, plus where."""

    split: str
    samples: int
    runtime: str
    float_top1: float
    int8_top1: float
    top1_drop_points: float
    agreement: float


class CalibrationRecord(TypedDict, total=False):
    """``RUN/int8/<profile>/calibration.json``: what the calibrate stage did for one profile."""

    profile: str  # required
    method: str  # required
    percentile: float | None
    calibration: dict[str, Any]  # the calibration set: source, samples, identity
    float_model: str
    statistics: dict[str, Any]
    plan: dict[str, Any]
    accuracy_aware: dict[str, Any]
    validation: CalibrationAccuracy
    seconds: float


def load_calibration_record(path: str | Path) -> CalibrationRecord:
    """``calibration.json`` (or the folder holding it), checked to be a calibration record."""
    p = Path(path)
    if p.is_dir():
        p = p / CALIBRATION_FILE
    data = read_json(p)
    if not isinstance(data, dict):
        raise UserError("calibration record is not a JSON object", path=p)
    for key in ("profile", "method"):
        if not isinstance(data.get(key), str):
            raise UserError(
                f"calibration record has no {key!r}",
                path=p,
                fix="recalibrate with dense-edge calibrate --force",
            )
    return cast(CalibrationRecord, data)  # its required keys were checked just above


class Report(TypedDict):
    """``RUN/report/report.json``, written by the report layer from what validate returns.

    Every field is described in ``dense_edge/report/report.schema.json``; nested parts stay
    mappings here (the JSON Schema is their one definition).
    """

    schema: str
    schema_version: int
    created: str
    recipe: str
    run_dir: str
    model: dict[str, Any]
    evaluation: dict[str, Any]
    benchmark: dict[str, Any]
    environment: dict[str, Any]
    reference: str
    reference_check: dict[str, Any]
    engines: list[dict[str, Any]]
    budgets: dict[str, Any]
    violations: list[dict[str, Any]]
    recommendations: list[dict[str, Any]]
    missing_engines: list[str]
    verdict: str
    verdict_reasons: list[str]
    passed: bool
