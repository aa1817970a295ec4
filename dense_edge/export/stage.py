"""The ``export`` stage: RUN/model -> RUN/onnx/model.onnx, checked and proven equal to PyTorch.

Steps: load the model; export (see :mod:`dense_edge.export.torch_to_onnx`); clean with onnxslim;
embed the manifest; ``check_model(full_check=True)`` and strict shape inference; run the ONNX
model with ONNX Runtime and the PyTorch model on the same real samples and compare logits. A model
that fails parity is kept as ``model.rejected.onnx`` for inspection, never as ``model.onnx``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge import onnxfile
from dense_edge.compare import Agreement, Tolerance, agreement
from dense_edge.data import Preprocess, load_splits
from dense_edge.errors import CheckFailed, StageError, UserError
from dense_edge.export.torch_to_onnx import INPUT_NAME, OUTPUT_NAME, export
from dense_edge.fileio import ensure_dir, read_json, sha256_file, write_json
from dense_edge.manifest import model_fields, new_manifest
from dense_edge.models import load
from dense_edge.models.registry import check_input_size, get_config
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.rundir import RunDir
from dense_edge.stages import Stage, upstream
from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner
from dense_edge.targets.pytorch.runner import PyTorchRunner

# The newest opset every target reads: TensorRT 10.0's ONNX parser reads opsets 9..20 (later
# 10.x releases read more), ONNX Runtime 1.18+ and OpenVINO 2024+ read 20 and newer, and the
# TorchScript exporter writes up to 20.
MAX_OPSET_ALL_RUNTIMES = 20
MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear (axis) needs 13


@dataclass
class ExportResult:
    path: Path
    precision: str
    parity: dict[str, Any]
    reused: bool
    seconds: float = 0.0
    nodes: int = 0


def onnx_folder(run: RunDir, precision: str) -> Path:
    return run.onnx if precision == "fp32" else run.root / f"onnx-{precision}"


def onnx_path(run: RunDir, precision: str) -> Path:
    return onnx_folder(run, precision) / "model.onnx"


def rejected_folder(run: RunDir, precision: str) -> Path:
    """Where a model that failed parity is kept for inspection (never the stage's folder)."""
    return run.root / "rejected" / onnx_folder(run, precision).name


def export_stage(
    recipe: Recipe,
    run: RunDir,
    *,
    precision: str | None = None,
    force: bool = False,
) -> ExportResult:
    """Produce ``RUN/onnx/model.onnx`` (or ``model.fp16.onnx``), reusing a current one."""
    from dense_edge.train.stage import train_stage

    precision = precision or recipe.export.precision
    if precision not in ("fp32", "fp16"):
        raise UserError(
            f"export precision {precision!r}: ONNX export writes fp32 or fp16",
            fix="int8 comes from `dense-edge calibrate`",
        )
    cfg = recipe.export
    if not MIN_OPSET <= cfg.opset <= MAX_OPSET_ALL_RUNTIMES:
        raise UserError(
            f"export.opset {cfg.opset} is not accepted by every target runtime",
            fix=f"choose {MIN_OPSET}..{MAX_OPSET_ALL_RUNTIMES} (TensorRT 10's parser reads up to "
            f"{MAX_OPSET_ALL_RUNTIMES}; per-channel Q/DQ needs {MIN_OPSET})",
        )
    model_stage = train_stage(recipe, run)
    manifest = model_stage.manifest
    weights_sha = manifest.get("weights", {}).get("sha256") or sha256_file(
        run.model / "weights.safetensors"
    )
    folder = onnx_folder(run, precision)
    stage = Stage(
        "onnx" if precision == "fp32" else f"onnx-{precision}",
        folder,
        {
            "model": upstream(run.model, "model"),
            "export": cfg.model_dump(mode="json"),
            "precision": precision,
        },
    )
    out = folder / "model.onnx"
    if stage.reusable(force=force) is not None:
        parity = read_json(folder / "parity.json") if (folder / "parity.json").exists() else {}
        info(f"onnx: reusing {out} (same model and export options; --force to redo)", once=True)
        return ExportResult(out, precision, parity, reused=True)

    t0 = time.perf_counter()
    fp32 = export_stage(recipe, run, precision="fp32", force=force) if precision != "fp32" else None
    with stage.build() as tmp_dir:
        tmp = tmp_dir / "model.onnx"
        if fp32 is None:
            _export_fp32(run, tmp, recipe, weights_sha)
        else:
            _convert_fp16(fp32.path, tmp)
        checked = _check(tmp)
        reference, candidate, source = _parity_outputs(recipe, run, tmp)
        result = agreement(reference, candidate)
        tol = _tolerance(recipe, precision)
        problems = _not_finite(result, candidate) + tol.violations(result)
        parity = _parity_record(result, tol, source, precision, problems)
        write_json(tmp_dir / "parity.json", parity)
        _print_parity(out.name, result, source)
        if problems:
            rejected = rejected_folder(run, precision)
            ensure_dir(rejected)
            os.replace(tmp, rejected / "model.onnx")
            os.replace(tmp_dir / "parity.json", rejected / "parity.json")
            raise CheckFailed(
                f"ONNX parity failed for {out.name}: {'; '.join(problems)} "
                f"(model kept as {rejected / 'model.onnx'} for inspection)"
            )
    seconds = time.perf_counter() - t0
    nodes = len(checked.graph.node)
    info(f"onnx: {out} ({nodes} nodes, opset {cfg.opset}) in {seconds:.1f} s")
    return ExportResult(out, precision, parity, reused=False, seconds=seconds, nodes=nodes)


def _export_fp32(run: RunDir, tmp: Path, recipe: Recipe, weights_sha: str) -> None:
    import onnx

    from dense_edge.export import clean, metadata

    cfg = recipe.export
    model, manifest = load(run.model)
    check_input_size(get_config(manifest["arch"]), tuple(manifest["input_shape"][1:]))
    model.set_concat_layout(cfg.concat_layout)
    raw = tmp.with_name(tmp.name + ".raw")
    try:
        export(
            model,
            raw,
            input_shape=manifest["input_shape"],
            opset=cfg.opset,
            dynamic_batch=cfg.dynamic_batch,
            dynamic_hw=cfg.dynamic_hw,
            exporter=cfg.exporter,
        )
        graph = onnx.load(str(raw))
    finally:
        raw.unlink(missing_ok=True)
    if cfg.simplify:
        graph = clean.slim(graph)
    onnx_manifest = new_manifest(
        "onnx",
        **{
            **model_fields(manifest),
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "precision": "fp32",
            "opset": cfg.opset,
            "exporter": cfg.exporter,
            "concat_layout": cfg.concat_layout,
            "dynamic": {"batch": cfg.dynamic_batch, "hw": cfg.dynamic_hw},
            "checkpoint_sha256": weights_sha,
        },
    )
    metadata.embed(graph, onnx_manifest)
    onnx.save(graph, str(tmp))


def _convert_fp16(fp32_path: Path, tmp: Path) -> None:
    import onnx

    from dense_edge.export import metadata
    from dense_edge.export.fp16 import whole_model_to_fp16

    model = onnx.load(str(fp32_path))
    manifest = onnxfile.read_manifest(model)
    half = whole_model_to_fp16(model)
    metadata.embed(half, {**manifest, "precision": "fp16", "io_dtype": "float32"})
    onnx.save(half, str(tmp))


def _check(path: Path) -> Any:
    from dense_edge.export import clean

    return clean.check(path)


def _parity_outputs(recipe: Recipe, run: RunDir, onnx_file: Path) -> tuple[Any, Any, str]:
    """PyTorch and ONNX Runtime logits on the same inputs (real test images when there are),
    each through its runner."""

    pytorch = PyTorchRunner(run.model)
    with pytorch:
        images, source = parity_inputs(recipe, pytorch.manifest)
        reference = pytorch.infer(images)
    return reference, _onnx_logits(onnx_file, images), source


def _onnx_logits(onnx_file: Path, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """ONNX Runtime's logits on ``images`` (CPU, every graph optimisation), in batches: the
    ONNX Runtime target's runner, as every stage after this one runs the model."""

    with OnnxRuntimeRunner(onnx_file) as runner:
        return runner.infer_all(images, batch)


def parity_inputs(recipe: Recipe, manifest: dict[str, Any]) -> tuple[np.ndarray, str]:

    n = recipe.export.parity.samples
    pre = Preprocess.from_dict(manifest["preprocess"])
    try:
        splits = load_splits(recipe, pre)
    except UserError as exc:
        info(f"onnx: parity on random inputs, the recipe's data is not available ({exc})")
        rng = np.random.default_rng(recipe.seed)
        return rng.standard_normal((n, *manifest["input_shape"])).astype(np.float32), "random"
    test = splits.test if len(splits.test) else splits.train
    order = np.random.default_rng(recipe.seed).permutation(len(test))[:n]
    images = test.subset(np.sort(order)).to_array(pre)
    return images, f"{splits.source} test split"


def _tolerance(recipe: Recipe, precision: str) -> Tolerance:
    p = recipe.export.parity if precision == "fp32" else recipe.export.parity_fp16
    return Tolerance(p.max_abs_error, p.min_cosine, p.min_top1_agreement)


def _parity_record(
    a: Agreement, tol: Tolerance, source: str, precision: str, problems: list[str]
) -> dict[str, Any]:
    return {
        "precision": precision,
        "reference": "PyTorch float32 (eager, CPU)",
        "candidate": "ONNX Runtime CPU",
        "inputs": source,
        # parity.json is JSON: a NaN or Inf is written as null (and has failed, above)
        **{
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in a.to_dict().items()
        },
        "tolerance": {
            "max_abs_error": tol.max_abs_error,
            "min_cosine": tol.min_cosine,
            "min_top1_agreement": tol.min_top1_agreement,
        },
        "passed": not problems,
        "problems": problems,
    }


def _not_finite(a: Agreement, candidate: Any) -> list[str]:
    """NaN or infinite outputs or errors: no tolerance can pass what is not a number (NaN
    compares False with every limit, so the tolerances alone let it through)."""
    bad = [k for k, v in a.to_dict().items() if isinstance(v, float) and not math.isfinite(v)]
    if not np.isfinite(np.asarray(candidate, dtype=np.float64)).all():
        bad.insert(0, "outputs")
    return (
        [f"not a finite number: {', '.join(bad)} (NaN or Inf in the weights or the model)"]
        if bad
        else []
    )


def _print_parity(name: str, a: Agreement, source: str) -> None:
    info(
        f"onnx parity ({name} vs PyTorch, {a.samples} samples from {source}): "
        f"max abs {a.max_abs_error:.2e}, mean abs {a.mean_abs_error:.2e}, "
        f"cosine {a.min_cosine:.7f}, top-1 agreement {a.top1_agreement:.4f}"
    )


def require_onnx(run: RunDir) -> Path:
    if not run.onnx_model.exists():
        raise StageError(
            f"no ONNX model in {run.onnx}", fix="run `dense-edge export --target onnx` first"
        )
    return run.onnx_model
