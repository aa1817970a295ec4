"""The ``calibrate`` stage: float ONNX + calibration images -> ``RUN/int8/<profile>/``.

Statistics are collected once and cached (``RUN/int8/stats/``); each profile then derives its
ranges, writes its quantised model and ``calibration.json`` (method, samples, ranges, float
layers, validation accuracy against the float model, checker result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.calibrate.dataset import CalibrationSet, load_calibration_set
from dense_edge.calibrate.methods import MethodOptions
from dense_edge.calibrate.profiles import PROFILES
from dense_edge.data.preprocess import Preprocess
from dense_edge.errors import DataError, UserError
from dense_edge.fileio import read_json, sha256_file, sha256_json, write_json
from dense_edge.manifest import new_manifest
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.rundir import RunDir
from dense_edge.stages import Stage, upstream

RULES_VERSION = 2  # bump when Q/DQ placement changes, so old int8 models are redone


@dataclass
class ProfileResult:
    profile: str
    path: Path
    reused: bool
    record: dict[str, Any]


@dataclass
class _Context:
    recipe: Recipe
    run: RunDir
    onnx_path: Path
    manifest: dict[str, Any]
    preprocess: Preprocess
    calibration: CalibrationSet
    opts: MethodOptions
    val: tuple[np.ndarray, np.ndarray] | None
    stats: Any = None


PLAN_FILE = "plan.json"  # the tensorrt traffic and precision plan, next to its model
TRAFFIC_SUMMARY = ("total_bytes_per_image", "fp16_engine", "ratio_to_fp16_engine", "by_precision")


def model_file(run: RunDir, profile: str) -> Path:
    return run.int8_profile(profile) / ("model.xml" if profile == "openvino" else "model.onnx")


def calibrate_stage(
    recipe: Recipe,
    run: RunDir,
    *,
    profiles: list[str] | None = None,
    force: bool = False,
    debug: bool = False,
) -> list[ProfileResult]:
    from dense_edge.export import export_stage
    from dense_edge.export import metadata as onnx_metadata

    wanted = profiles or list(recipe.calibration.profiles)
    for p in wanted:
        if p not in PROFILES:
            raise UserError(f"unknown profile {p!r}", fix=f"choose from {', '.join(PROFILES)}")
    onnx_path = export_stage(recipe, run).path
    images = calibration_identity(recipe)  # decodes nothing: reuse is decided without images
    stages = {p: Stage(f"int8/{p}", run.int8_profile(p), _inputs(recipe, run, p, images))
              for p in wanted}  # fmt: skip
    results: dict[str, ProfileResult] = {}
    for p, stage in stages.items():
        if stage.reusable(force=force or debug) is not None:
            target = model_file(run, p)
            info(f"calibrate: reusing {target} (same model, images and method; --force to redo)")
            record = read_json(stage.folder / "calibration.json")
            results[p] = ProfileResult(p, target, True, record)
    todo = [p for p in wanted if p not in results]
    if todo:
        manifest = onnx_metadata.read(onnx_path)
        pre = Preprocess.from_dict(manifest["preprocess"])
        cal = load_calibration_set(recipe, pre)
        cal.identity = images
        if cal.skipped:
            info(
                f"calibrate: skipped {len(cal.skipped)} unreadable images "
                f"(first: {cal.skipped[0][0]})"
            )
        ctx = _Context(
            recipe,
            run,
            onnx_path,
            manifest,
            pre,
            cal,
            MethodOptions(recipe.calibration.method, recipe.calibration.percentile),
            _validation_split(recipe, pre),
        )
        for p in todo:
            results[p] = _one_profile(ctx, p, stages[p], debug=debug)
    return [results[p] for p in wanted]


def calibration_identity(recipe: Recipe) -> str:
    """Which images calibrate, without decoding one: the sha256 of every candidate file (a
    folder or a .json listing), or, for ``source: data``, the data's listing and the draw."""
    from dense_edge.data.imagefolder import IMAGE_SUFFIXES
    from dense_edge.train.stage import data_identity

    c = recipe.calibration
    draw = {"samples": c.samples, "seed": c.seed, "skip_unreadable": c.skip_unreadable}
    if c.source == "data":
        return sha256_json({"data": data_identity(recipe), **draw})
    path = Path(c.source)
    files: list[Path]
    if path.is_dir():
        files = sorted(
            f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        )
        names = [f.relative_to(path).as_posix() for f in files]
    elif path.suffix == ".json":
        from dense_edge.calibrate.dataset import _read_listing

        files, _ = _read_listing(path)
        names = [str(f) for f in files]
    else:
        raise DataError(
            "calibration.source must be 'data', an image folder or a .json manifest", path=path
        )
    if not files:
        raise DataError(
            "calibration folder holds no images",
            path=path,
            fix=f"add images ({', '.join(sorted(IMAGE_SUFFIXES))}) or use source: data",
        )
    digests = [sha256_file(f) if f.is_file() else None for f in files]
    return sha256_json({"files": list(zip(names, digests, strict=True)), **draw})


def _validation_split(recipe: Recipe, pre: Preprocess) -> tuple[np.ndarray, np.ndarray] | None:
    """Labelled images for accuracy checks: the validation split, never test or calibration."""
    from dense_edge.data import load_splits

    try:
        splits = load_splits(recipe, pre)
    except UserError:
        return None
    val = splits.val if len(splits.val) else None
    if val is None:
        return None
    n = recipe.calibration.accuracy_aware.samples
    if len(val) > n:
        val = val.subset(np.sort(np.random.default_rng(0).permutation(len(val))[:n]))
    return val.to_array(pre), val.labels.copy()


def _inputs(recipe: Recipe, run: RunDir, profile: str, images: str) -> dict[str, Any]:
    from dense_edge.train.stage import data_identity

    c = recipe.calibration
    aa = c.accuracy_aware.model_dump(mode="json")
    return {
        "profile": profile,
        "rules": RULES_VERSION,
        "model": upstream(run.onnx, "ONNX model"),
        "images": images,
        "method": c.method,
        "percentile": c.percentile if c.method == "percentile" else None,
        "bins": c.bins,
        "float_parts": c.float_parts if profile == "tensorrt" else None,
        "preset": c.nncf_preset if profile == "openvino" else None,
        "accuracy_aware": aa,
        # the validation split picks float layers when accuracy-aware
        "validation_data": data_identity(recipe) if c.accuracy_aware.enabled else None,
    }


def _one_profile(ctx: _Context, profile: str, stage: Stage, *, debug: bool) -> ProfileResult:
    target = model_file(ctx.run, profile)
    t0 = time.perf_counter()
    with stage.build() as tmp:
        if profile == "openvino":
            record = _openvino(ctx, tmp / target.name)
        else:
            record = _onnx_profile(ctx, profile, tmp / target.name, debug=debug)
        record["seconds"] = round(time.perf_counter() - t0, 2)
        write_json(tmp / "calibration.json", record)
    return ProfileResult(profile, target, False, record)


def _base_record(ctx: _Context, profile: str) -> dict[str, Any]:
    c = ctx.recipe.calibration
    return {
        "profile": profile,
        "method": c.method if profile != "openvino" else f"nncf ({c.nncf_preset})",
        "percentile": c.percentile if c.method == "percentile" and profile != "openvino" else None,
        "calibration": ctx.calibration.describe(),
        "float_model": str(ctx.onnx_path),
    }


def _stats(ctx: _Context) -> Any:
    if ctx.stats is None:
        from dense_edge.calibrate.collect import collect, stats_key

        bins = ctx.recipe.calibration.bins
        bins = 1 << (bins - 1).bit_length()  # histograms need a power of two
        key = stats_key(ctx.onnx_path, ctx.calibration.identity, bins)
        pixels = int(np.prod(ctx.preprocess.input_shape))
        batch = 64 if pixels <= 3 * 64 * 64 else 8
        ctx.stats = collect(
            ctx.onnx_path,
            ctx.calibration.images,
            bins=bins,
            key=key,
            cache_dir=ctx.run.stats,
            batch_size=batch,
        )
    return ctx.stats


def _onnx_profile(ctx: _Context, profile: str, target: Path, *, debug: bool) -> dict[str, Any]:
    import onnx

    from dense_edge.calibrate.profiles import rules_for
    from dense_edge.calibrate.qdq import _activation_params
    from dense_edge.export import metadata as onnx_metadata
    from dense_edge.fileio import atomic_path

    c = ctx.recipe.calibration
    rules = rules_for(profile, float_dtype=c.float_parts)
    stats = _stats(ctx)
    model = onnx.load(str(ctx.onnx_path))
    record = _base_record(ctx, profile)
    record["statistics"] = {
        "key": stats.key,
        "tensors": len(stats.tensors),
        "samples": stats.samples,
        "seconds": round(stats.seconds, 2),
        "peak_rss_mib": stats.peak_rss_mib,
    }
    exclude: set[str] = set()
    if c.accuracy_aware.enabled:
        exclude, record["accuracy_aware"] = _search(ctx, model, stats, rules)
    qmodel, plan = rules.write(model, stats, ctx.opts, exclude)
    report = rules.check(qmodel, str(target))
    if not report.ok:  # our own output broke our own rules: a bug, not a user error
        raise RuntimeError(f"{profile} Q/DQ model failed its checker: {report.violations[:3]}")
    onnx_metadata.embed(
        qmodel,
        _int8_manifest(ctx, profile, c.method, plan.kept_float),
    )
    with atomic_path(target) as tmp:
        onnx.save(qmodel, str(tmp))
    record["plan"] = plan.summary()
    record["rules"] = {
        "activation": rules.activation,
        "weights": "int8 symmetric per output channel",
        "bias": rules.bias,
        "concat": rules.concat if profile == "tensorrt" else "quantised (QLinearConcat)",
        **({"float": rules.float_dtype, "pools": "int8 (DQ in, Q out)",
            "global_pool_input": "int8", "gemm_float_below_outputs": rules.min_gemm_outputs}
           if profile == "tensorrt" else {}),
    }  # fmt: skip
    if profile == "tensorrt":
        from dense_edge.calibrate.traffic import plan_record

        traffic = plan_record(qmodel, model)
        write_json(target.parent / PLAN_FILE, traffic)
        record["traffic"] = {k: traffic[k] for k in TRAFFIC_SUMMARY}
    record["ranges"] = {
        t: {
            "lo": round(r.lo, 6),
            "hi": round(r.hi, 6),
            "scale": _activation_params(r, rules)[0],
            "zero_point": int(_activation_params(r, rules)[1]),
        }
        for t, r in plan.activations.items()
    }
    record["check"] = report.to_dict()
    if ctx.val is not None:
        record["validation"] = _accuracy_onnx(model, qmodel, ctx.val)
    if debug:
        from dense_edge.calibrate.debug import compare_layers

        worst = compare_layers(model, qmodel, ctx.calibration.images[:8])
        record["layers"] = [e.to_dict() for e in worst]
    return record


def _int8_manifest(
    ctx: _Context, profile: str, method: str, float_layers: list[str]
) -> dict[str, Any]:
    """The float model's manifest, re-stamped for its int8 derivative."""
    fields = {k: v for k, v in ctx.manifest.items() if k not in _STAMP_KEYS}
    return new_manifest(
        "int8",
        **{**fields, "precision": "int8", "profile": profile, "method": method,
           "float_layers": float_layers},
    )  # fmt: skip


_STAMP_KEYS = ("format", "format_version", "kind", "versions", "created")


def _search(ctx: _Context, model: Any, stats: Any, rules: Any) -> tuple[set[str], dict[str, Any]]:
    from dense_edge.calibrate.sensitivity import Budget, search

    if ctx.val is None:
        raise UserError(
            "accuracy-aware calibration needs a labelled validation split",
            fix="point data.* at labelled data or disable calibration.accuracy_aware",
        )
    aa = ctx.recipe.calibration.accuracy_aware
    budget = Budget(aa.max_top1_drop, aa.min_agreement)
    result = search(model, stats, rules, ctx.opts, ctx.val[0], ctx.val[1], budget)
    if not result.met:
        info("calibrate: the accuracy budget is not met even with every layer in float")
    return set(result.exclude), result.to_dict()


def _accuracy_onnx(model: Any, qmodel: Any, val: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    from dense_edge.calibrate.sensitivity import evaluate_onnx

    images, labels = val
    ref = evaluate_onnx(model, images).argmax(1)
    got = evaluate_onnx(qmodel, images).argmax(1)
    return _accuracy_record(ref, got, labels, "onnxruntime")


def _accuracy_record(
    ref: np.ndarray, got: np.ndarray, labels: np.ndarray, runtime: str
) -> dict[str, Any]:
    f_top1, q_top1 = float((ref == labels).mean()), float((got == labels).mean())
    return {
        "split": "val",
        "samples": len(labels),
        "runtime": runtime,
        "float_top1": round(f_top1, 5),
        "int8_top1": round(q_top1, 5),
        "top1_drop_points": round((f_top1 - q_top1) * 100, 3),
        "agreement": round(float((ref == got).mean()), 5),
    }


def _openvino(ctx: _Context, target: Path) -> dict[str, Any]:
    from dense_edge.calibrate import nncf_openvino

    c = ctx.recipe.calibration
    record = _base_record(ctx, "openvino")
    images = ctx.calibration.images
    info(f"calibrate: NNCF quantisation on {len(images)} images")
    if c.accuracy_aware.enabled:
        if ctx.val is None or c.accuracy_aware.max_top1_drop is None:
            raise UserError(
                "accuracy-aware NNCF needs a validation split and accuracy_aware.max_top1_drop",
                fix="set calibration.accuracy_aware.max_top1_drop",
            )
        qmodel = nncf_openvino.quantize_with_accuracy_control(
            ctx.onnx_path,
            images,
            ctx.val[0],
            ctx.val[1],
            max_drop_points=c.accuracy_aware.max_top1_drop,
            preset=c.nncf_preset,
        )
    else:
        qmodel = nncf_openvino.quantize(ctx.onnx_path, images, preset=c.nncf_preset)
    quantized, floating = nncf_openvino.quantized_layers(qmodel)
    manifest = _int8_manifest(ctx, "openvino", record["method"], floating)
    nncf_openvino.save(qmodel, target, manifest)
    record["plan"] = {"quantized_layers": len(quantized), "float_layers": floating}
    if c.accuracy_aware.enabled:
        record["accuracy_aware"] = {"float_layers": floating, "engine": "nncf accuracy control"}
    if ctx.val is not None:
        record["validation"] = _accuracy_openvino(ctx.onnx_path, target, ctx.val)
    return record


def _accuracy_openvino(
    float_onnx: Path, xml: Path, val: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    import openvino as ov

    core = ov.Core()
    images, labels = val
    outs = []
    for path in (float_onnx, xml):
        compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        logits = np.concatenate(
            [compiled(images[i : i + 64])[0] for i in range(0, len(images), 64)]
        )
        outs.append(logits.argmax(1))
    return _accuracy_record(outs[0], outs[1], labels, "openvino CPU (f32 for non-int8 ops)")


def _short(path: Path) -> str:
    """``int8/<profile>/model.onnx``: the part of the path inside the run directory."""
    return "/".join(path.parts[-3:])


SUMMARY_COLUMNS = [
    "profile",
    "method",
    "float layers",
    "val top-1",
    "int8 top-1",
    "agreement",
    "model",
]


def summary_rows(results: list[ProfileResult]) -> list[list[Any]]:
    rows = []
    for r in results:
        v = r.record.get("validation", {})
        plan = r.record.get("plan", {})
        rows.append([
            r.profile,
            r.record.get("method"),
            len(plan.get("float_layers", [])),
            v.get("float_top1"),
            v.get("int8_top1"),
            v.get("agreement"),
            _short(r.path) + (" (reused)" if r.reused else ""),
        ])  # fmt: skip
    return rows
