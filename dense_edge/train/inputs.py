"""The training input pipeline: what the optimiser reads each step.

- Array sources (digits, CIFAR-10, synthetic) are preprocessed once and kept in memory as one
  tensor; a step indexes it.
- File sources (image folders) are decoded and preprocessed per step by a
  :class:`torch.utils.data.DataLoader`: ``train.workers`` worker processes (null: one fewer than
  this process's share of the CPUs, at most 4), two batches prefetched per worker, pinned memory
  when training on CUDA.
- ``train.augment.random_resized_crop`` (ImageNet-style: a random 8-100% of the area at an aspect
  ratio of 3/4-4/3, resized to the input, then ``hflip``) decodes every image per step on either
  kind of source: it needs the whole decoded picture.

Determinism: the batches of an epoch are the loop's seeded order, cut into steps (per rank under
``torchrun``), and each image's random crop and flip are drawn from ``(seed, epoch, index)``. So
the batches are the same whichever process decodes them, for any number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from dense_edge.data.imageset import ArrayImageSet, ImageSet
from dense_edge.errors import DataError
from dense_edge.preprocess import Preprocess
from dense_edge.records import BatchInputs

MAX_AUTO_WORKERS = 4
CROP_SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop defaults
CROP_RATIO = (3 / 4, 4 / 3)


def random_resized_crop(
    img: np.ndarray,
    rng: np.random.Generator,
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
) -> np.ndarray:
    """A random window of ``img`` (uint8 HWC): area a ``scale`` fraction of the image, aspect
    ``ratio`` (log-uniform); ten tries, then the largest centred window within ``ratio``."""
    h, w = img.shape[:2]
    area = h * w
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        cw = round(math.sqrt(target * aspect))
        ch = round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return img[top : top + ch, left : left + cw]
    aspect = w / h
    if aspect < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif aspect > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        cw, ch = w, h
    ch, cw = max(1, min(h, ch)), max(1, min(w, cw))
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top : top + ch, left : left + cw]


class TrainImages(torch.utils.data.Dataset[tuple[np.ndarray, int, str]]):
    """One preprocessed training image per index, augmented if asked; picklable for workers.

    An image that cannot be used comes back as its error's text (raised by the caller as a
    one-line :class:`DataError`), not as a worker's traceback."""

    def __init__(
        self,
        images: ImageSet,
        preprocess: Preprocess,
        *,
        random_crop: bool = False,
        hflip: bool = False,
        seed: int = 0,
    ):
        self.images = images
        self.preprocess = preprocess
        # after a random crop, the window is resized straight to the input (no centre crop)
        h, w = preprocess.input_size
        self.resized = replace(preprocess, resize=(h, w), crop=False)
        self.random_crop = random_crop
        self.hflip = hflip
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int, str]:
        label = int(self.images.labels[index])
        try:
            if not self.random_crop:
                return self.images.preprocessed(self.preprocess, [index])[0], label, ""
            rng = np.random.default_rng([self.seed, self.epoch, index])
            img = random_resized_crop(self.images.image(index), rng)
            if self.hflip and rng.random() < 0.5:
                img = img[:, ::-1]
            return self.resized.batch([np.ascontiguousarray(img)])[0], label, ""
        except DataError as exc:
            text = str(exc)
            where = self.images.describe(index)
            return np.zeros(0, np.float32), label, text if where in text else f"{where}: {text}"


def _collate(items: Sequence[tuple[np.ndarray, int, str]]) -> tuple[Any, Any, str]:
    for _, _, error in items:
        if error:
            return None, None, error
    x = torch.from_numpy(np.stack([item[0] for item in items]))
    y = torch.tensor([item[1] for item in items], dtype=torch.int64)
    return x, y, ""


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # a worker decodes; the training process owns the cores


def auto_workers(cpus: int) -> int:
    """Workers when ``train.workers`` is null: one fewer than the CPUs, at most 4."""
    return max(0, min(MAX_AUTO_WORKERS, cpus - 1))


class TrainInputs:
    """The batches of each epoch, from memory or from a DataLoader."""

    def __init__(
        self,
        images: ImageSet,
        preprocess: Preprocess,
        *,
        workers: int,
        random_crop: bool = False,
        hflip: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
    ):
        self.random_crop = random_crop
        self.in_memory = isinstance(images, ArrayImageSet) and not random_crop
        self.workers = 0 if self.in_memory else workers
        self.pin_memory = pin_memory and not self.in_memory
        self.labels = torch.from_numpy(images.labels.astype(np.int64))
        self.cache = torch.from_numpy(images.to_array(preprocess)) if self.in_memory else None
        self.dataset = TrainImages(
            images, preprocess, random_crop=random_crop, hflip=hflip, seed=seed
        )

    def describe(self) -> BatchInputs:
        """The training record's ``inputs`` block."""
        return {
            "path": "in memory" if self.in_memory else "DataLoader",
            "workers": self.workers,
            "prefetch_batches_per_worker": 2 if self.workers else 0,
            "pin_memory": self.pin_memory,
            "random_resized_crop": self.random_crop,
        }

    def epoch(
        self, epoch: int, batches: Sequence[np.ndarray]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(images, labels)`` for each index array in ``batches``, in order."""
        if self.cache is not None:
            for idx in batches:
                yield self.cache[idx], self.labels[idx]
            return
        self.dataset.epoch = epoch
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=[[int(i) for i in idx] for idx in batches],
            num_workers=self.workers,
            collate_fn=_collate,
            pin_memory=self.pin_memory,
            prefetch_factor=2 if self.workers else None,
            worker_init_fn=_worker_init if self.workers else None,
        )
        for x, y, error in loader:
            if error:
                raise DataError(error)
            yield x, y
