"""The evaluation split on disk, once, and the float model's logits on it, once.

``RUN/eval-cache/<key>/`` holds what validation computes from an evaluation listing (``key``: the
first 16 hex digits of :meth:`EvaluationSet.identity`, the listing and its preprocessing):

- ``images.npy``: every image preprocessed, float32 NCHW, decoded by worker processes in batches
  and appended (never the whole split in memory); each model's worker reads it back in batches
  with plain reads (:func:`read_rows`, :func:`read_batches`), so its resident memory is a batch,
  not the split;
- ``labels.npy``;
- ``logits-<weights>-<subject>.npy``: a float model's logits on those images (``weights``: the
  first 16 hex digits of the weights' sha256), so a second ``validate``, or a new engine, does not
  run the float model over the split again.

Files are written under a name carrying the writer's process id and renamed into place, so a
killed command leaves no file that looks finished; :func:`tidy` removes what a dead process left
(partial files, its work folder), and every ``validate`` calls it first. At most ``KEEP`` listings
are kept, the most recently used.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dense_edge.data import stream
from dense_edge.data.evaluation import EvaluationSet
from dense_edge.progress import bar
from dense_edge.rundir import RunDir

CACHE = "eval-cache"
IMAGES, LABELS = "images.npy", "labels.npy"
PARTIAL = ".partial-"  # <name>.partial-<pid>: being written by that process
WORK = "work-"  # work-<pid>: that process's worker specs and results
KEEP = 2
DECODE_BATCH = 64


@dataclass(frozen=True)
class SplitCache:
    folder: Path

    @property
    def images(self) -> Path:
        return self.folder / IMAGES

    def labels(self) -> np.ndarray:
        out: np.ndarray = np.load(self.folder / LABELS)
        return out

    def _logits(self, weights_sha256: str, subject: str) -> Path:
        return self.folder / f"logits-{weights_sha256[:16]}-{subject}.npy"

    def logits(self, weights_sha256: str | None, subject: str) -> np.ndarray | None:
        """The cached logits of ``subject`` (a float model) with these weights, if any."""
        if not weights_sha256 or not self._logits(weights_sha256, subject).exists():
            return None
        out: np.ndarray = np.load(self._logits(weights_sha256, subject))
        return out

    def save_logits(self, weights_sha256: str | None, subject: str, logits: np.ndarray) -> None:
        if weights_sha256:
            _save(self._logits(weights_sha256, subject), logits)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writer_pid(name: str) -> int | None:
    tail = name.rsplit(PARTIAL, 1)[1] if PARTIAL in name else name.removeprefix(WORK)
    return int(tail) if tail.isdigit() else None


def tidy(run: RunDir) -> None:
    """Remove what a killed command left in ``RUN/eval-cache/`` (files being written, work
    folders) when the process that wrote it is gone."""
    root = run.root / CACHE
    if not root.is_dir():
        return
    for path in [*root.glob(f"*/*{PARTIAL}*"), *root.glob(f"*{PARTIAL}*"), *root.glob(f"{WORK}*")]:
        pid = _writer_pid(path.name)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


@contextmanager
def workspace(run: RunDir) -> Iterator[Path]:
    """A folder for this process's worker specs and results, in the run, removed on exit (and by
    the next :func:`tidy` if this process is killed)."""
    path = run.root / CACHE / f"{WORK}{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _partial(path: Path) -> Path:
    return path.with_name(f"{path.name}{PARTIAL}{os.getpid()}")


def _save(path: Path, array: np.ndarray) -> None:
    tmp = _partial(path)
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def prepare(run: RunDir, ev: EvaluationSet) -> SplitCache:
    """The cache of ``ev``: reused when its listing is current, else written now."""
    tidy(run)
    root = run.root / CACHE
    cache = SplitCache(root / ev.identity()[:16])
    if cache.images.exists() and (cache.folder / LABELS).exists():
        os.utime(cache.folder)  # most recently used
        return cache
    cache.folder.mkdir(parents=True, exist_ok=True)
    _write_images(cache.images, ev)
    _save(cache.folder / LABELS, np.asarray(ev.labels, dtype=np.int64))
    _forget_old(root, cache.folder)
    return cache


def _write_images(path: Path, ev: EvaluationSet) -> None:
    n, shape = len(ev.labels), tuple(ev.preprocess.input_shape)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
              "shape": (n, *shape)}  # fmt: skip
    tmp = _partial(path)
    with open(tmp, "wb") as fh, bar("validate: decode", n) as progress:
        np.lib.format.write_array_header_2_0(fh, header)
        for _, batch in stream.batches(ev.part, ev.preprocess, DECODE_BATCH):
            fh.write(np.ascontiguousarray(batch, dtype="<f4").tobytes())
            progress.advance(len(batch))
    os.replace(tmp, path)


def _forget_old(root: Path, current: Path) -> None:
    entries = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(WORK)]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in entries if p != current][KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
    os.utime(current, (time.time(), time.time()))


# -- reading, in the workers ---------------------------------------------------------------------


def _layout(path: Path) -> tuple[tuple[int, ...], int]:
    """(shape, byte offset of the data) of a C-ordered float32 ``.npy``."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)  # fmt: skip
        shape, fortran, dtype = read(fh)
        if fortran or dtype != np.dtype("<f4"):
            raise ValueError(f"{path}: expected a C-ordered float32 array")
        return tuple(shape), fh.tell()


def count(path: Path) -> int:
    return _layout(path)[0][0]


def read_rows(path: Path, start: int, stop: int) -> np.ndarray:
    """Images ``start:stop`` of a cached split, read from the file (not mapped, so the pages do
    not stay in this process's resident memory)."""
    shape, offset = _layout(path)
    stop = min(stop, shape[0])
    per = int(np.prod(shape[1:]))
    with open(path, "rb") as fh:
        fh.seek(offset + 4 * per * start)
        data = np.fromfile(fh, dtype="<f4", count=per * max(0, stop - start))
    return data.reshape(-1, *shape[1:])


def read_batches(path: Path, batch_size: int) -> Iterator[np.ndarray]:
    """The cached split in batches of at most ``batch_size`` images, in order."""
    n = count(path)
    for start in range(0, n, batch_size):
        yield read_rows(path, start, start + batch_size)
