"""Preprocessed batches of an image set, decoded by worker processes, in order, a few at a time.

Decoding and resizing a JPEG costs more than a DenseNet's first layers on a small CPU, so a set of
files is decoded by ``workers`` processes while the consumer uses the batches already done. At
most ``ahead`` batches are in flight or waiting (a bounded queue): memory holds a few batches,
never the set. Images already in memory (an array set) are preprocessed in this process: sending
them to workers would copy more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from dense_edge.data.imageset import FileImageSet, ImageSet
from dense_edge.preprocess import Preprocess

_WORKER_SET: tuple[ImageSet, Preprocess] | None = None  # the set a decoding worker serves


def default_workers() -> int:
    """Decoding processes: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _serve(images: ImageSet, preprocess: Preprocess) -> None:
    global _WORKER_SET
    _WORKER_SET = (images, preprocess)


def _decode(start: int, stop: int) -> np.ndarray:
    assert _WORKER_SET is not None, "a decoding worker without its image set"
    images, preprocess = _WORKER_SET
    return images.preprocessed(preprocess, range(start, stop))


def batches(
    images: ImageSet,
    preprocess: Preprocess,
    batch_size: int,
    *,
    workers: int | None = None,
    ahead: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, float32 NCHW batch)`` for the whole set, in order.

    A :class:`dense_edge.errors.DataError` of a worker (an image that does not fit, an unreadable
    file) is raised here, naming the file, as the one-process path raises it.
    """
    n = len(images)
    starts = range(0, n, batch_size)
    workers = default_workers() if workers is None else workers
    if not isinstance(images, FileImageSet) or workers < 1 or n <= batch_size:
        for s in starts:
            yield s, images.preprocessed(preprocess, range(s, min(s + batch_size, n)))
        return
    depth = ahead or 2 * workers
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's threads
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_serve, initargs=(images, preprocess)
    ) as pool:
        pending: deque[tuple[int, Future[np.ndarray]]] = deque()
        todo = iter(starts)
        try:
            for s in todo:
                pending.append((s, pool.submit(_decode, s, min(s + batch_size, n))))
                if len(pending) >= depth:
                    first, fut = pending.popleft()
                    yield first, fut.result()
            while pending:
                first, fut = pending.popleft()
                yield first, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()
