"""``dense-edge train``: train a DenseNet (or import weights) into RUN/model/."""

from __future__ import annotations

import os
from pathlib import Path

import click

from dense_edge.cli.options import force_option, load, recipe_options, run_dir


@click.command()
@recipe_options
@force_option
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last epoch.")
@click.option("--arch", help="Architecture (model.arch), e.g. densenet121, densenet-bc-100-12.")
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    help="Load weights instead of training: our checkpoint, a torchvision .pth, .safetensors.",
)
@click.option(
    "--data",
    "data_source",
    type=click.Choice(["digits", "imagefolder", "cifar10", "synthetic"]),
    help="Data source (data.source): scikit-learn digits, an image folder, CIFAR-10 batches.",
)
@click.option("--epochs", type=int, help="Training epochs (train.epochs).")
@click.option("--batch-size", type=int, help="Images per training step (train.batch_size).")
@click.option("--lr", type=float, help="Initial learning rate of SGD (train.lr).")
@click.option("--seed", type=int, help="Seed for weights, shuffling and augmentation (seed).")
@click.option(
    "--memory-efficient/--no-memory-efficient", default=None, help="Checkpointed dense layers."
)
def train(
    recipe_path: Path | None,
    out: Path | None,
    sets: tuple[str, ...],
    force: bool,
    resume: bool,
    arch: str | None,
    weights: Path | None,
    data_source: str | None,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    seed: int | None,
    memory_efficient: bool | None,
) -> None:
    """Train a DenseNet, or load weights, and write RUN/model/ (weights + manifest)."""
    from dense_edge.train.stage import train_stage  # it imports torch

    recipe = load(
        recipe_path,
        sets,
        **{
            "model.arch": arch,
            "model.weights": str(weights) if weights else None,
            "model.memory_efficient": memory_efficient,
            "data.source": data_source,
            "train.epochs": epochs,
            "train.batch_size": batch_size,
            "train.lr": lr,
            "seed": seed,
        },
    )
    result = train_stage(recipe, run_dir(recipe, out), resume=resume, force=force)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 speaks for all
    metrics = result.manifest.get("metrics", {})
    top1 = metrics.get("test_top1")
    click.echo(
        f"model: {result.path}"
        + (f"  test top-1 {top1:.4f}" if isinstance(top1, float) else "")
        + ("  (reused)" if result.reused else "")
    )
