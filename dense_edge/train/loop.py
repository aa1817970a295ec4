"""The training loop: SGD with Nesterov momentum, cosine or step schedule, seeded and resumable.

Determinism: each epoch's order, augmentation and dropout are seeded from ``(seed, epoch)``, so a
run resumed from its epoch checkpoint continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dense_edge import accuracy
from dense_edge.data.imageset import Splits
from dense_edge.errors import StageError
from dense_edge.fileio import atomic_path, ensure_dir, sha256_json
from dense_edge.preprocess import Preprocess
from dense_edge.progress import bar, info, no_bar
from dense_edge.recipe.schema import TrainSection
from dense_edge.records import BatchInputs
from dense_edge.stages import describe_changes, fault, writing
from dense_edge.train import distributed
from dense_edge.train.evaluate import evaluate
from dense_edge.train.inputs import TrainInputs


@dataclass
class History:
    epochs: list[dict[str, float]] = field(default_factory=list)
    inputs: BatchInputs | None = None  # how the batches were read (set by fit)

    def last(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}


def learning_rate(cfg: TrainSection, progress: float) -> float:
    """Learning rate at ``progress`` epochs (fractional) into training."""
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress / cfg.epochs))
    passed = sum(1 for m in cfg.milestones if progress >= m * cfg.epochs)
    return cfg.lr * cfg.gamma**passed


def _augment(x: torch.Tensor, cfg: TrainSection, gen: torch.Generator) -> torch.Tensor:
    pad = cfg.augment.pad_crop
    n, _, h, w = x.shape
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if cfg.augment.hflip and not cfg.augment.random_resized_crop:  # else flipped per image
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


def fit(
    model: torch.nn.Module,
    splits: Splits,
    preprocess: Preprocess,
    cfg: TrainSection,
    *,
    arch: str,
    seed: int,
    checkpoint: Path,
    inputs: dict[str, Any],
    resume: bool,
    device: torch.device,
    world: distributed.World,
    workers: int = 0,
) -> History:
    """Train ``model`` in place, writing ``checkpoint`` after every epoch.

    The checkpoint is one file (weights, optimiser and scaler state, epoch, history and the
    inputs it was made from) replaced atomically, so a kill at any point leaves the previous
    epoch's checkpoint or this one, never a mix."""
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov and cfg.momentum > 0,
        weight_decay=cfg.weight_decay,
    )
    use_amp = cfg.amp == "auto" and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history = History()
    start_epoch = 0
    if resume:
        start_epoch, history = _restore(model, optimizer, scaler, checkpoint, inputs, arch)
        info(f"resuming at epoch {start_epoch + 1}/{cfg.epochs}")
    net: torch.nn.Module = model
    if world.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    data = TrainInputs(
        splits.train,
        preprocess,
        workers=workers,
        random_crop=cfg.augment.random_resized_crop,
        hflip=cfg.augment.hflip,
        seed=seed,
        pin_memory=device.type == "cuda",
    )
    history.inputs = data.describe()
    n = len(splits.train)
    if n == 0:
        raise StageError("the training split is empty", fix="check data.* in the recipe")
    per_rank = max(1, cfg.batch_size // world.size)
    steps = math.ceil((n // world.size) / per_rank)

    total_steps = (cfg.epochs - start_epoch) * steps
    with bar("train", total_steps, status=True) if world.main else no_bar() as progress:
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            torch.manual_seed(seed * 100_003 + epoch)
            gen = torch.Generator().manual_seed(seed * 7919 + epoch * 31 + world.rank)
            order = np.random.default_rng([seed, epoch]).permutation(n)
            order = order[: (n // world.size) * world.size][world.rank :: world.size]
            label = f"epoch {epoch + 1}/{cfg.epochs}"
            net.train()
            total_loss, correct, seen = 0.0, 0, 0
            batches = [order[s * per_rank : (s + 1) * per_rank] for s in range(steps)]
            for step, (x, y) in enumerate(data.epoch(epoch, [b for b in batches if len(b)])):
                lr = learning_rate(cfg, epoch + step / steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                labels = y.numpy()
                x = _augment(x, cfg, gen).to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                with torch.autocast(device.type, enabled=use_amp):
                    logits = net(x)
                    loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward untyped
                scaler.step(optimizer)
                scaler.update()
                total_loss += float(loss.detach()) * len(y)
                # the classes leave the device, not the logits
                correct += accuracy.correct(logits.detach().argmax(1).cpu().numpy(), labels)
                seen += len(y)
                progress.advance(
                    1, status=f"{label} loss {total_loss / seen:.3f} acc {correct / seen:.3f}"
                )
            record = {
                "epoch": epoch + 1,
                "train_loss": round(
                    distributed.all_reduce_mean(total_loss / max(seen, 1), world), 5
                ),
                "train_top1": round(distributed.all_reduce_mean(correct / max(seen, 1), world), 5),
                "seconds": round(time.perf_counter() - t0, 2),
            }
            if world.main:
                if len(splits.val):
                    record["val_top1"] = round(
                        evaluate(model, splits.val, preprocess, device=device), 5
                    )
                history.epochs.append(record)
                _save(checkpoint, model, optimizer, scaler, epoch, history, inputs)
                val = f", val top-1 {record['val_top1']:.4f}" if "val_top1" in record else ""
                info(
                    f"  {label}: loss {record['train_loss']:.4f}, "
                    f"train top-1 {record['train_top1']:.4f}{val}"
                )
            else:
                history.epochs.append(record)
            distributed.barrier(world)
    return history


def _save(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    epoch: int,
    history: History,
    inputs: dict[str, Any],
) -> None:

    ensure_dir(path.parent)
    state = {
        "fingerprint": sha256_json(inputs),
        "inputs": inputs,
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "history": history.epochs,
    }
    with writing(path), atomic_path(path) as tmp:
        torch.save(state, tmp)
        fault("model", f"checkpoint-{epoch + 1}")  # written, not yet renamed
    fault("model", f"epoch-{epoch + 1}")


def _restore(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    checkpoint: Path,
    inputs: dict[str, Any],
    arch: str,
) -> tuple[int, History]:
    from dense_edge.models.weights import fit_state_dict

    if not checkpoint.is_file():
        raise StageError(
            "nothing to resume: no epoch checkpoint", path=checkpoint, fix="run without --resume"
        )
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise StageError(
            f"unreadable checkpoint ({exc.__class__.__name__})",
            path=checkpoint,
            fix="use --force to start over",
        ) from None
    if state.get("fingerprint") != sha256_json(inputs):
        raise StageError(
            "the checkpoint was made with a different recipe: "
            + describe_changes(state.get("inputs") or {}, inputs),
            path=checkpoint,
            fix="use --force to start over",
        )
    fit_state_dict(model, state["model"], arch=arch, source=checkpoint)
    optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return int(state["epoch"]) + 1, History(list(state.get("history", [])))
