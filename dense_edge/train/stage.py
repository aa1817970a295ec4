"""The ``train`` stage: train (or import weights) and write ``RUN/model/``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from dense_edge.data import load_splits, preprocess_for
from dense_edge.data.identity import data_identity
from dense_edge.data.imageset import FileImageSet, short_list
from dense_edge.errors import DataError, StageError, WeightsError
from dense_edge.fileio import sha256_file, sha256_json, write_json
from dense_edge.manifest import ModelManifest, load_manifest, new_manifest
from dense_edge.models import create, load
from dense_edge.models.loading import WEIGHTS_FILE
from dense_edge.models.registry import get_config
from dense_edge.preprocess import check_image
from dense_edge.progress import info
from dense_edge.recipe import Recipe
from dense_edge.records import INPUT_NAME, MANIFEST_FILE, OUTPUT_NAME, TrainingRecord
from dense_edge.rundir import RunDir
from dense_edge.stages import Stage, StageRecord
from dense_edge.train import threads


class TrainedManifest(ModelManifest, total=False):
    """``RUN/model/manifest.json`` as this stage writes it: the model manifest, how it was
    trained (a trained model; imported weights have no ``training``) and its parameter count."""

    training: TrainingRecord
    parameters: int


@dataclass
class StageResult:
    manifest: ModelManifest
    path: Path
    reused: bool


def weights_file(path: str | Path) -> Path:
    """The weights a ``model.weights`` path names: a file, or a dense-edge model folder."""
    p = Path(path)
    if p.is_dir():
        if not (p / WEIGHTS_FILE).is_file():
            raise WeightsError(
                f"is a folder without {WEIGHTS_FILE}",
                path=p,
                fix="pass the weights file (.pth, .safetensors) or a dense-edge model folder",
            )
        return p / WEIGHTS_FILE
    if not p.is_file():
        raise WeightsError("weights file not found", path=p, fix="check the --weights path")
    return p


def model_inputs(recipe: Recipe) -> dict[str, Any]:
    model = recipe.model.model_dump(mode="json")
    inputs: dict[str, Any] = {
        "model": {k: v for k, v in model.items() if k != "weights"},
        "data": data_identity(recipe),
        "preprocess": preprocess_for(recipe).to_dict(),
        "seed": recipe.seed,
    }
    if recipe.model.weights:
        inputs["weights_sha256"] = sha256_file(weights_file(recipe.model.weights))
    else:
        inputs["train"] = training_settings(recipe)
    return inputs


# How the training runs, not what it makes: left out of the model's fingerprint (and a new key
# left at its default leaves the fingerprints of models made before it existed unchanged).
_RUNTIME_KEYS = ("threads", "workers")


def training_settings(recipe: Recipe) -> dict[str, Any]:
    """``train.*`` as the model's fingerprint sees it."""
    settings = recipe.train.model_dump(mode="json")
    for key in _RUNTIME_KEYS:
        settings.pop(key, None)
    if not settings["augment"].get("random_resized_crop"):
        settings["augment"].pop("random_resized_crop", None)
    return settings


def model_stage(recipe: Recipe, run: RunDir) -> Stage:
    return Stage("model", run.model, model_inputs(recipe))


def _imported_inputs(recipe: Recipe, rec: StageRecord | None) -> dict[str, Any] | None:
    """The inputs of a finished model imported with ``--weights`` when this command gives none.

    ``train --weights W`` (or ``model.weights`` in a ``--set``) imports once; the later commands of
    the run (export, calibrate, compile, validate, run) do not repeat ``--weights``. They keep the
    imported model as long as everything but the training settings still matches (architecture,
    data, preprocessing, seed); anything else is a change that needs ``--force``, as always.
    """
    if recipe.model.weights or rec is None:
        return None
    old = rec.get("inputs")
    if not isinstance(old, dict) or "weights_sha256" not in old:
        return None
    mine = {k: v for k, v in model_inputs(recipe).items() if k != "train"}
    theirs = {k: v for k, v in old.items() if k != "weights_sha256"}
    return old if mine == theirs else None


def model_fingerprint(recipe: Recipe) -> str:
    return sha256_json(model_inputs(recipe))


def train_stage(
    recipe: Recipe, run: RunDir, *, resume: bool = False, force: bool = False
) -> StageResult:
    """Produce ``RUN/model/``: reuse it if current, else train or import ``model.weights``.

    A finished model made from other settings is refused unless ``force``; with ``force`` the
    new model is trained beside the old one, which is replaced only when the new one is done.
    """
    from dense_edge.train import distributed

    world = distributed.from_env()
    stage = model_stage(recipe, run)
    imported = _imported_inputs(recipe, stage.record())
    if imported is not None and not force:
        stage = Stage("model", run.model, imported)  # the weights this run was given stay its model
    out = run.model
    if world.main:
        rec = stage.reusable(force=force)
    else:  # the other ranks only read: rank 0 owns the folder
        rec = stage.record()
        rec = rec if rec and rec["fingerprint"] == stage.fingerprint and not force else None
    if rec is not None and not resume:
        why = "imported weights" if imported is not None else "same recipe"
        info(f"model: reusing {out} ({why}; --force to redo)", once=True)
        return StageResult(load_manifest(out), out, reused=True)
    ckpt = run.checkpoint
    if force and not resume and world.main and ckpt.exists():
        ckpt.unlink()
    if not resume and not recipe.model.weights and ckpt.exists():
        raise StageError(
            f"{ckpt} holds an interrupted training run",
            fix="pass --resume to continue it or --force to start over",
        )
    if recipe.model.weights:
        return _import_weights(recipe, run, stage)
    return _train(recipe, run, stage, resume=resume, world=world)


def _train(recipe: Recipe, run: RunDir, stage: Stage, *, resume: bool, world: Any) -> StageResult:
    import torch

    from dense_edge.train import distributed
    from dense_edge.train.evaluate import evaluate
    from dense_edge.train.inputs import auto_workers
    from dense_edge.train.loop import fit

    preprocess = preprocess_for(recipe)
    splits = load_splits(recipe, preprocess)
    if splits.skipped:
        info(
            f"data: skipped {len(splits.skipped)} images it cannot use "
            f"(first: {splits.skipped[0][0]})"
        )
    if world.main and not recipe.data.skip_corrupt:
        check_files(splits)  # a bad file is an error now, not after an epoch
    num_classes = recipe.model.num_classes or len(splits.classes)
    if num_classes != len(splits.classes):
        raise StageError(
            f"model.num_classes is {num_classes} but the data has {len(splits.classes)} classes",
            fix="remove model.num_classes or fix the data",
        )

    device = torch.device(f"cuda:{world.local_rank}" if torch.cuda.is_available() else "cpu")
    distributed.init(world, device)
    per_node = distributed.processes_per_node(world)
    pools = threads.apply(threads.choose(recipe.train.threads, processes_per_node=per_node))
    workers = recipe.train.workers
    if workers is None:
        workers = auto_workers(pools["usable_cpus"] // per_node)
    torch.manual_seed(recipe.seed)
    model = create(
        recipe.model.arch,
        num_classes=num_classes,
        in_channels=preprocess.channels,
        memory_efficient=recipe.model.memory_efficient,
        drop_rate=recipe.model.drop_rate,
    ).to(device)

    out = run.model
    base = _base_manifest(recipe, splits.classes, preprocess)
    if world.main:
        summary = splits.summary()
        info(
            f"train: {recipe.model.arch} on {summary['source']} "
            f"({summary['train']} train / {summary['val']} val / {summary['test']} test), "
            f"{recipe.train.epochs} epochs on {device}"
            + (f", {world.size} processes" if world.enabled else "")
            + f", {pools['intra_op']} CPU threads ({pools['chosen_by'].split(':')[0]})"
        )

    t0 = time.perf_counter()
    history = fit(
        model,
        splits,
        preprocess,
        recipe.train,
        arch=recipe.model.arch,
        seed=recipe.seed,
        checkpoint=run.checkpoint,
        inputs=stage.inputs,
        resume=resume,
        device=device,
        world=world,
        workers=workers,
    )
    wall = time.perf_counter() - t0
    manifest: ModelManifest
    if world.main:
        model.eval()
        last = history.last()
        metrics = {
            "test_top1": round(evaluate(model, splits.test, preprocess, device=device), 5),
            "val_top1": last.get("val_top1"),
            "train_top1": last.get("train_top1"),
            "train_loss": last.get("train_loss"),
        }
        trained: TrainedManifest = {
            **base,
            "metrics": metrics,
            "training": {
                "epochs": recipe.train.epochs,
                "wall_seconds": round(wall, 2),
                "device": str(device),
                "world_size": world.size,
                "amp": recipe.train.amp == "auto" and device.type == "cuda",
                "threads": pools,
                "inputs": history.inputs,
                "history": history.epochs,
                "config": recipe.train.model_dump(mode="json"),
            },
        }
        manifest = _commit_model(stage, model.cpu(), trained)
        run.checkpoint.unlink(missing_ok=True)
        info(f"train: test top-1 {metrics['test_top1']:.4f} in {wall:.1f} s -> {out}")
    distributed.barrier(world)
    distributed.shutdown(world)
    if not world.main:
        manifest = load_manifest(out)
    return StageResult(manifest, out, reused=False)


def _import_weights(recipe: Recipe, run: RunDir, stage: Stage) -> StageResult:
    from dense_edge.train.evaluate import evaluate

    assert recipe.model.weights is not None
    weights = weights_file(recipe.model.weights)
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
    _check_class_names(classes, loaded, weights)
    base = _base_manifest(recipe, classes or loaded["classes"], preprocess)
    metrics = dict(loaded.get("metrics") or {})
    if splits is not None and len(splits.test):
        info(f"evaluating imported weights on {len(splits.test)} test images")
        metrics["test_top1"] = round(evaluate(model, splits.test, preprocess), 5)
    imported: TrainedManifest = {
        **base,
        "metrics": metrics,
        "source": {
            **base["source"],
            "weights": str(weights),
            "weights_sha256": sha256_file(weights),
        },
    }
    manifest = _commit_model(stage, model, imported)
    info(f"model: imported {weights.name} as {recipe.model.arch} -> {run.model}")
    return StageResult(manifest, run.model, reused=False)


def _check_class_names(classes: list[str] | None, loaded: dict[str, Any], weights: Path) -> None:
    """Weights trained by dense-edge name their classes: the data's folders must be the same
    names in the same order ("0".."9" weights on "zero".."nine" folders answer wrongly)."""

    named = "recipe" in (loaded.get("source") or {})  # a torchvision .pth names no classes
    if classes is None or not named or list(loaded["classes"]) == list(classes):
        return
    raise WeightsError(
        f"the weights' classes {short_list(loaded['classes'])} are not the data's class "
        f"folders {short_list(classes)}",
        path=weights,
        fix="rename the class folders to the weights' class names, or use weights trained "
        "on these folders",
    )


def _base_manifest(recipe: Recipe, classes: list[str], preprocess: Any) -> TrainedManifest:
    config = get_config(recipe.model.arch)
    manifest = new_manifest(
        "model",
        arch=recipe.model.arch,
        architecture={**config.arch_dict(), "memory_efficient": recipe.model.memory_efficient},
        num_classes=len(classes),
        classes=list(classes),
        input_shape=preprocess.input_shape,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        preprocess=preprocess.to_dict(),
        metrics={},
        seed=recipe.seed,
        source={"recipe": recipe.name, "data": recipe.data.source, "weights": None},
    )
    return cast(TrainedManifest, manifest)  # new_manifest stamps the keys passed here


def _commit_model(stage: Stage, model: Any, manifest: TrainedManifest) -> TrainedManifest:
    from dense_edge.models.weights import save_safetensors

    with stage.build() as tmp:
        weights = tmp / WEIGHTS_FILE
        save_safetensors(model, weights, manifest)
        manifest = {
            **manifest,
            "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(weights)},
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        write_json(tmp / MANIFEST_FILE, manifest)
    return manifest


def check_files(splits: Any) -> None:
    """Open every image file's header once (no decoding): a file that is not an image, or one
    too large to decode safely, is named before training starts."""

    fix = "remove or replace the files, or set data.skip_corrupt: true"
    seen: set[Path] = set()
    bad: list[DataError] = []
    for part in (splits.train, splits.val, splits.test):
        if isinstance(part, FileImageSet):
            for p in part.paths:
                if p not in seen:
                    seen.add(p)
                    try:
                        check_image(p)
                    except DataError as exc:
                        bad.append(exc)
    if len(bad) == 1:
        raise DataError(str(bad[0]), fix=fix.replace("files", "file"))
    if bad:  # every bad file named at once (a bounded list), not one per attempt
        names = short_list([str(e.path) for e in bad], limit=5, width=80)
        raise DataError(f"{len(bad)} image files cannot be used: {names}; first: {bad[0]}", fix=fix)
