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
- calibration record, ``RUN/int8/<profile>/calibration.json``: :class:`CalibrationRecord`,
  written and read back by :mod:`dense_edge.calibrate.stage`;
- report, ``RUN/report/report.json``: :class:`Report`, read by
  :func:`dense_edge.report.schema.load`.

Only the standard library is imported here: every stage (and the device runtime) may import
this module.
"""

from __future__ import annotations

from typing import Any, TypedDict

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
