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
  :func:`dense_edge.report.schema.load`; its parts are typed here too: one row per engine
  (:class:`EngineRow`, read from JSON by :func:`dense_edge.report.schema.engine_row`), its
  accuracy, latency per batch size and budget checks, the reference check and the
  recommendations. ``report.schema.json`` documents every field; these types are what the code
  that writes and reads them agrees on.

Only the standard library is imported here: every stage (and the device runtime) may import
this module.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

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


CheckStatus = Literal["pass", "fail", "unverified"]


class BudgetCheck(TypedDict):
    """One budget of one engine, checked: ``value`` against ``limit`` (``value`` None: it could
    not be measured, and ``note`` says why)."""

    budget: str  # max_top1_drop, min_agreement, max_p99_ms, min_speedup
    batch: int | None  # the batch size of a latency budget
    value: float | None
    limit: float
    unit: str  # points, fraction, ms, x
    status: CheckStatus
    note: str | None


class Violation(BudgetCheck):
    """A budget check that did not pass, with the engine it is of (the report's
    ``violations``)."""

    engine: str


class BudgetLimits(TypedDict):
    """The budgets a report was judged by (``budgets``); None: not set."""

    max_top1_drop: float | None
    min_agreement: float | None
    max_p99_ms: float | None
    min_speedup: float | None


# One class an engine got fewer images right of than the float model (``class`` is a keyword).
WorstClass = TypedDict(
    "WorstClass",
    {
        "class": str,
        "images": int,
        "correct": int,
        "float_correct": int,
        "top1_fraction": float,
        "top1_drop_points": float,
    },
)


class EngineAccuracy(TypedDict, total=False):
    """An engine's accuracy on the evaluation split, and against the float model's logits."""

    agreement_fraction: float
    cosine: float
    min_cosine: float
    max_abs_error: float
    mean_abs_error: float
    top1_fraction: float  # without labels, absent from here on
    top5_fraction: float
    top1_drop_points: float
    worst_classes: list[WorstClass]


class Latency(TypedDict, total=False):
    """One batch size's latency (a row's ``latency`` maps the batch size, as text, to this)."""

    batch: int
    iterations: int
    p50_ms: float
    p50_ci_low_ms: float | None
    p50_ci_high_ms: float | None
    p90_ms: float
    p99_ms: float | None  # None: too few samples
    mean_ms: float
    min_ms: float
    max_ms: float
    throughput_ips: float
    clock: str
    wall_p50_ms: float | None
    samples_ms: list[float]
    wall_samples_ms: list[float]  # a worker's, pooled over the rounds, never in a report


# Where a device row was measured (``report merge``): where, host, report, GPU, CUDA, JetPack
# and the version of each kit target's runtime (one key per such target: names are data).
MeasuredOn = dict[str, str | None]


class DeviceEvaluation(TypedDict, total=False):
    """What a device row's accuracy was measured on (a subset of the split, maybe)."""

    split: str | None
    samples: int
    of: int | None
    source: str | None
    float_top1: float | None


class _EngineRowKeys(TypedDict):
    name: str
    target: str
    precision: str


class EngineRow(_EngineRowKeys, total=False):
    """One row of the report's ``engines``: the float reference, an engine measured here, a
    kit written here (``status: kit``, nothing measured) or a device row (``measured_on``)."""

    status: str  # measured (also when absent) or kit
    kit_path: str
    precision_run: str
    path: str
    size_bytes: int
    engine_sha256: str | None
    engine_content_sha256: str | None
    runtime: str | None
    device: str | list[str] | None
    device_kind: str
    threads: int | str | None
    accuracy: EngineAccuracy
    latency: dict[str, Latency]
    cold_start_s: float
    peak_rss_mib: float
    speedup: dict[str, float]
    speedup_reference: str
    is_reference: bool
    budget_checks: list[BudgetCheck]
    budget_status: str  # pass, fail, unverified, reference, not built
    measured_on: MeasuredOn
    evaluation: DeviceEvaluation
    note: str | None
    stand_in: bool  # a device row measured by a stand-in runner: shown, never recommended


class ReferenceCheck(TypedDict):
    """Whether the float model is good enough to judge engines against."""

    top1_fraction: float | None
    chance_top1_fraction: float
    chance_margin_points: float
    min_top1_fraction: float | None
    split: str | None
    samples: int | None
    classes_never_right: list[str]
    status: Literal["sound", "unsound", "unverified"]
    message: str


class Recommendation(TypedDict):
    """Per target, the engine to ship (None: none) and why."""

    target: str
    batch: int
    engine: str | None
    p50_ms: float | None
    reason: str


class ModelSummary(TypedDict):
    arch: str
    num_classes: int
    input_shape: list[int]
    weights_sha256: str | None
    weights_tensor_sha256: str | None
    training_test_top1_fraction: float | None


class EvaluationSummary(TypedDict, total=False):
    """The images every engine was judged on (``EvaluationSet.describe``)."""

    split: str | None
    split_origin: str | None
    held_out_test: bool
    warning: str | None
    samples: int
    source: str
    skipped_images: int


class BenchmarkSettings(TypedDict, total=False):
    batch_sizes: list[int]
    decision_batch: int
    warmup: int
    iterations: int
    time_budget_s: float | None
    rounds: int
    p50_ci_level: float
    p99_min_samples: int


class LoadAverage(TypedDict):
    start: list[float] | None
    end: list[float] | None
    cores: int | None


class CpuSummary(TypedDict, total=False):
    model: str
    machine: str
    logical_cores: int | None
    flags: list[str]  # the AVX-512/VNNI/BF16/AMX flags present


class GpuSummary(TypedDict, total=False):
    name: str
    compute_capability: str


class Environment(TypedDict, total=False):
    """The machine and library versions (``environment.snapshot``, plus the load average)."""

    hostname: str
    os: str
    cpu: CpuSummary
    gpu: GpuSummary | None
    versions: dict[str, str | None]
    load_average: LoadAverage


Verdict = Literal["PASSED", "FAILED", "INCOMPLETE"]


class Report(TypedDict):
    """``RUN/report/report.json``, written by the report layer from what validate returns.

    Every field is described in ``dense_edge/report/report.schema.json``.
    """

    schema: str
    schema_version: int
    created: str
    recipe: str
    run_dir: str
    model: ModelSummary
    evaluation: EvaluationSummary
    benchmark: BenchmarkSettings
    environment: Environment
    reference: str
    reference_check: ReferenceCheck
    engines: list[EngineRow]
    budgets: BudgetLimits
    violations: list[Violation]
    recommendations: list[Recommendation]
    missing_engines: list[str]
    verdict: Verdict
    verdict_reasons: list[str]
    passed: bool


# -- the training block of RUN/model/manifest.json (written by the train stage) ----------------


class ThreadPools(TypedDict):
    """``training.threads``: torch's CPU thread pools in one training process, and why."""

    intra_op: int
    inter_op: int
    chosen_by: str  # "train.threads", or "auto: ..." with how
    usable_cpus: int
    machine_cpus: int
    load_1min: float | None
    processes_per_node: int


class BatchInputs(TypedDict):
    """``training.inputs``: how the training batches were read."""

    path: str  # "in memory" or "DataLoader"
    workers: int
    prefetch_batches_per_worker: int
    pin_memory: bool
    random_resized_crop: bool


class TrainingRecord(TypedDict):
    """``training`` in a trained model's manifest (absent from imported weights')."""

    epochs: int
    wall_seconds: float
    device: str
    world_size: int
    amp: bool
    threads: ThreadPools
    inputs: BatchInputs | None  # None only if training never started
    history: list[dict[str, float]]  # one row per epoch: epoch, losses, top-1s, seconds
    config: dict[str, object]  # the recipe's train section as JSON


# -- what some profiles add to RUN/int8/<profile>/calibration.json, and plan.json -------------


class RulesRecord(TypedDict, total=False):
    """``rules``: the Q/DQ layout as the calibration record states it (the explicit keys only
    for explicit-quantisation profiles)."""

    activation: str  # required
    weights: str  # required
    bias: str  # required
    concat: str  # required
    float: str
    pools: str
    global_pool_input: str
    gemm_float_below_outputs: int


class ConcatCopies(TypedDict):
    bytes_per_image: int  # Concat inputs copied because they feed several Concats
    kernels: int  # the copy kernels


class EngineTraffic(TypedDict):
    """plan.json's ``fp16_engine``: the estimate for the FP16 engine of the float model."""

    total_bytes_per_image: int
    weight_bytes: int
    kernels: int
    concat_copies: ConcatCopies


class UncopiedTraffic(TypedDict):
    total_bytes_per_image: int
    kernels: int


class LayoutTraffic(TypedDict):
    """One concatenation layout's estimate in plan.json's ``layouts``."""

    exported: bool  # the model's own layout
    total_bytes_per_image: int
    kernels: int
    concat_copy_bytes: int
    concat_copy_kernels: int


class TensorTrafficRecord(TypedDict):
    """One tensor in plan.json's ``tensors`` (bytes per image)."""

    tensor: str
    precision: str  # how it is stored: int8, fp16, fp32
    elements: int
    written_bytes: int
    read_bytes: int
    readers: int
    concat_copies: int


class _TrafficPlanKeys(TypedDict):
    what: str
    estimate: bool
    assumptions: list[str]
    model_of_tensorrt: str
    total_bytes_per_image: int
    weight_bytes: int
    kernels: int
    by_precision: dict[str, dict[str, int]]  # precision -> {"tensors", "bytes"}
    fp16_engine: EngineTraffic
    ratio_to_fp16_engine: float | None
    tensors: list[TensorTrafficRecord]  # largest first


class TrafficPlan(_TrafficPlanKeys, total=False):
    """``RUN/int8/<profile>/plan.json`` (the profiles that write a plan): the estimated bytes
    the TensorRT engine moves per image. Plans written before the Concat-copy and layout
    estimates existed lack those keys."""

    concat_copies: ConcatCopies
    without_concat_copies: UncopiedTraffic
    layouts: dict[str, LayoutTraffic]  # {} when the model's layout is not recognised


class TrafficSummary(TypedDict):
    """``traffic``: plan.json's totals (the profiles that write a plan)."""

    total_bytes_per_image: int
    fp16_engine: EngineTraffic
    ratio_to_fp16_engine: float | None
    by_precision: dict[str, dict[str, int]]


class ActivationRange(TypedDict):
    """One quantised tensor's range in ``ranges``."""

    lo: float
    hi: float
    scale: float
    zero_point: int


class CheckViolation(TypedDict):
    rule: str
    node: str
    message: str


class CheckRecord(TypedDict):
    """``check``: the profile's checker on the written model."""

    profile: str
    model: str
    ok: bool
    violations: list[CheckViolation]
    quantized_layers: int
    float_layers: list[str]
    notes: list[str]


class FullCalibrationRecord(CalibrationRecord, total=False):
    """The calibration record with the keys only some profiles write: the Q/DQ profiles' layout
    (``rules``, ``ranges``, ``check``), plan.json's totals and, with ``--debug``, ``layers``."""

    rules: RulesRecord  # Q/DQ profiles
    traffic: TrafficSummary  # the profiles that write plan.json
    ranges: dict[str, ActivationRange]  # Q/DQ profiles
    check: CheckRecord  # Q/DQ profiles
    layers: list[dict[str, object]]  # with --debug: the layers whose int8 output differs most
