"""The ``train`` stage: train (or import weights) and write ``RUN/model/``."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dense_edge.data import load_splits, preprocess_for
from dense_edge.errors import StageError, WeightsError
from dense_edge.fileio import ensure_dir, sha256_file, write_json
from dense_edge.manifest import load_manifest, new_manifest
from dense_edge.models.loading import MANIFEST_FILE, WEIGHTS_FILE
from dense_edge.models.registry import get_config
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.rundir import RunDir, fingerprint, is_current, mark_done
from dense_edge.train.loop import CHECKPOINT_DIR, CHECKPOINT_STATE, CHECKPOINT_WEIGHTS


@dataclass
class StageResult:
    manifest: dict[str, Any]
    path: Path
    reused: bool


def model_fingerprint(recipe: Recipe) -> str:
    inputs: dict[str, Any] = {
        "model": recipe.model.model_dump(mode="json"),
        "data": recipe.data.model_dump(mode="json"),
        "preprocess": preprocess_for(recipe).to_dict(),
        "seed": recipe.seed,
    }
    if recipe.model.weights:
        inputs["weights_sha256"] = sha256_file(recipe.model.weights)
    else:
        inputs["train"] = recipe.train.model_dump(mode="json")
    return fingerprint(stage="model", **inputs)


def train_stage(
    recipe: Recipe, run: RunDir, *, resume: bool = False, force: bool = False
) -> StageResult:
    """Produce ``RUN/model/``: reuse it if current, else train or import ``model.weights``."""
    from dense_edge.train import distributed

    world = distributed.from_env()
    fp = model_fingerprint(recipe)
    out = run.model
    if not force and not resume and is_current(out, fp):
        info(f"model: reusing {out} (same recipe; --force to redo)")
        return StageResult(load_manifest(out), out, reused=True)
    ckpt = out / CHECKPOINT_DIR
    if force and world.main and out.exists():
        shutil.rmtree(out)
    if not resume and not recipe.model.weights and (ckpt / CHECKPOINT_STATE).exists():
        raise StageError(
            f"{ckpt} holds an interrupted training run",
            fix="pass --resume to continue it or --force to start over",
        )
    if recipe.model.weights:
        return _import_weights(recipe, run, fp)
    return _train(recipe, run, fp, resume=resume, world=world)


def _train(recipe: Recipe, run: RunDir, fp: str, *, resume: bool, world: Any) -> StageResult:
    import torch

    from dense_edge.models import create
    from dense_edge.models.weights import save_safetensors
    from dense_edge.train import distributed
    from dense_edge.train.evaluate import evaluate
    from dense_edge.train.loop import fit

    preprocess = preprocess_for(recipe)
    splits = load_splits(recipe, preprocess)
    if splits.skipped:
        info(
            f"data: skipped {len(splits.skipped)} unreadable images (first: {splits.skipped[0][0]})"
        )
    num_classes = recipe.model.num_classes or len(splits.classes)
    if num_classes != len(splits.classes):
        raise StageError(
            f"model.num_classes is {num_classes} but the data has {len(splits.classes)} classes",
            fix="remove model.num_classes or fix the data",
        )
    device = torch.device(f"cuda:{world.local_rank}" if torch.cuda.is_available() else "cpu")
    distributed.init(world, device)
    torch.manual_seed(recipe.seed)
    model = create(
        recipe.model.arch,
        num_classes=num_classes,
        in_channels=preprocess.channels,
        memory_efficient=recipe.model.memory_efficient,
        drop_rate=recipe.model.drop_rate,
    ).to(device)

    out = run.model
    ckpt = ensure_dir(out / CHECKPOINT_DIR)
    base = _base_manifest(recipe, splits.classes, preprocess)
    if world.main:
        summary = splits.summary()
        info(
            f"train: {recipe.model.arch} on {summary['source']} "
            f"({summary['train']} train / {summary['val']} val / {summary['test']} test), "
            f"{recipe.train.epochs} epochs on {device}"
            + (f", {world.size} processes" if world.enabled else "")
        )

    def save_checkpoint(m: torch.nn.Module, epoch: int, history: Any) -> None:
        manifest = {**base, "training": {"epoch": epoch + 1, "history": history.epochs}}
        save_safetensors(m, ckpt / CHECKPOINT_WEIGHTS, manifest)
        write_json(ckpt / MANIFEST_FILE, manifest)

    t0 = time.perf_counter()
    history = fit(
        model,
        splits,
        preprocess,
        recipe.train,
        arch=recipe.model.arch,
        seed=recipe.seed,
        checkpoint_dir=ckpt,
        fingerprint=fp,
        resume=resume,
        save_checkpoint=save_checkpoint,
        device=device,
        world=world,
    )
    wall = time.perf_counter() - t0
    manifest: dict[str, Any] = {}
    if world.main:
        model.eval()
        last = history.last()
        metrics = {
            "test_top1": round(evaluate(model, splits.test, preprocess, device=device), 5),
            "val_top1": last.get("val_top1"),
            "train_top1": last.get("train_top1"),
            "train_loss": last.get("train_loss"),
        }
        manifest = {
            **base,
            "metrics": metrics,
            "training": {
                "epochs": recipe.train.epochs,
                "wall_seconds": round(wall, 2),
                "device": str(device),
                "world_size": world.size,
                "amp": recipe.train.amp == "auto" and device.type == "cuda",
                "history": history.epochs,
                "config": recipe.train.model_dump(mode="json"),
            },
        }
        manifest = _write_model(model.cpu(), manifest, out, fp)
        shutil.rmtree(ckpt, ignore_errors=True)
        info(f"train: test top-1 {metrics['test_top1']:.4f} in {wall:.1f} s -> {out}")
    distributed.barrier(world)
    distributed.shutdown(world)
    if not world.main:
        manifest = load_manifest(out)
    return StageResult(manifest, out, reused=False)


def _import_weights(recipe: Recipe, run: RunDir, fp: str) -> StageResult:
    from dense_edge.models import load
    from dense_edge.train.evaluate import evaluate

    assert recipe.model.weights is not None
    weights = Path(recipe.model.weights)
    splits = None
    classes = None
    preprocess = preprocess_for(recipe)
    if recipe.data.source != "imagefolder" or recipe.data.root:
        splits = load_splits(recipe, preprocess)
        classes = splits.classes
    model, loaded = load(
        weights,
        arch=recipe.model.arch,
        num_classes=recipe.model.num_classes,
        classes=None,
    )
    n = model.classifier.out_features
    if classes is not None and len(classes) != n:
        raise WeightsError(
            f"weights have {n} classes, the data has {len(classes)}",
            path=weights,
            fix="use weights trained on these classes or point data.root elsewhere",
        )
    base = _base_manifest(recipe, classes or loaded["classes"], preprocess)
    metrics = dict(loaded.get("metrics") or {})
    if splits is not None and len(splits.test):
        info(f"evaluating imported weights on {len(splits.test)} test images")
        metrics["test_top1"] = round(evaluate(model, splits.test, preprocess), 5)
    manifest = {
        **base,
        "metrics": metrics,
        "source": {
            **base["source"],
            "weights": str(weights),
            "weights_sha256": sha256_file(weights),
        },
    }
    manifest = _write_model(model, manifest, run.model, fp)
    info(f"model: imported {weights.name} as {recipe.model.arch} -> {run.model}")
    return StageResult(manifest, run.model, reused=False)


def _base_manifest(recipe: Recipe, classes: list[str], preprocess: Any) -> dict[str, Any]:
    config = get_config(recipe.model.arch)
    return new_manifest(
        "model",
        arch=recipe.model.arch,
        architecture={**config.arch_dict(), "memory_efficient": recipe.model.memory_efficient},
        num_classes=len(classes),
        classes=list(classes),
        input_shape=preprocess.input_shape,
        input_name="images",
        output_name="logits",
        preprocess=preprocess.to_dict(),
        metrics={},
        seed=recipe.seed,
        source={"recipe": recipe.name, "data": recipe.data.source, "weights": None},
    )


def _write_model(model: Any, manifest: dict[str, Any], out: Path, fp: str) -> dict[str, Any]:
    from dense_edge.models.weights import save_safetensors

    ensure_dir(out)
    weights = out / WEIGHTS_FILE
    save_safetensors(model, weights, manifest)
    manifest = {
        **manifest,
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(weights)},
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    write_json(out / MANIFEST_FILE, manifest)
    mark_done(out, "model", fp)
    return manifest
