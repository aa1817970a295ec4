"""The run directory: each stage's output in a fixed place, owned and locked by dense-edge.

    RUN/model/                      weights.safetensors + manifest.json   (train)
    RUN/onnx/                       model.onnx + parity.json              (export, fp32)
    RUN/onnx-fp16/                  model.onnx + parity.json              (export, fp16)
    RUN/int8/<profile>/             model.onnx + calibration.json         (calibrate)
    RUN/int8/stats/                 cached activation statistics          (calibrate)
    RUN/engines/<target>-<precision>/  engine files + manifest.json       (compile)
    RUN/report/                     report.json, report.md, report.html   (validate, report)
    RUN/.dense-edge/                the run's marker, its lock, training checkpoints

A run folder is ours alone: its name comes from a recipe's ``name`` (a name, never a path), a
folder is only ever deleted or replaced when it carries our marker, and one command at a time
holds the run's lock (:func:`lock`). How stages are reused and committed is
:mod:`dense_edge.stages`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dense_edge.errors import StageError, UserError
from dense_edge.fileio import check_name, ensure_dir, write_json
from dense_edge.manifest import now
from dense_edge.stages import command_scope

BOOKKEEPING = ".dense-edge"  # RUN/.dense-edge/: marker, lock, checkpoints
RUN_MARKER = "run.json"
LOCK_FILE = "lock"
LOCK_INFO = "lock.json"
LOCK_TIMEOUT_S = 5.0  # DENSE_EDGE_LOCK_TIMEOUT overrides


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        return cls(Path(path).expanduser().resolve())

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def onnx(self) -> Path:
        return self.root / "onnx"

    @property
    def onnx_model(self) -> Path:
        return self.onnx / "model.onnx"

    @property
    def int8(self) -> Path:
        return self.root / "int8"

    def int8_profile(self, profile: str) -> Path:
        return self.int8 / profile

    @property
    def stats(self) -> Path:
        return self.int8 / "stats"

    def engine(self, target: str, precision: str) -> Path:
        return self.root / "engines" / f"{target}-{precision}"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def bookkeeping(self) -> Path:
        return self.root / BOOKKEEPING

    @property
    def checkpoint(self) -> Path:
        """Training's epoch checkpoint: one file (weights, optimiser, scaler, epoch)."""
        return self.bookkeeping / "checkpoint.pt"

    def create(self) -> RunDir:
        if self.root.exists() and not self.root.is_dir():
            raise UserError("the run folder is a file", path=self.root, fix="choose another --out")
        ensure_dir(self.root)
        ensure_dir(self.bookkeeping)
        marker = self.bookkeeping / RUN_MARKER
        if not marker.exists():
            write_json(marker, {"format": "dense-edge/run", "format_version": 1})
        return self


def default_run_dir(recipe_name: str) -> Path:
    return Path("runs") / check_name(recipe_name)


# -- the lock --------------------------------------------------------------------------------


def _timeout() -> float:
    try:
        return float(os.environ.get("DENSE_EDGE_LOCK_TIMEOUT", LOCK_TIMEOUT_S))
    except ValueError:
        return LOCK_TIMEOUT_S


def _command_line() -> str:
    args = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else ["python"]
    text = " ".join(args)
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def lock(run: RunDir, command: str | None = None) -> Iterator[None]:
    """Hold ``RUN/.dense-edge/lock`` while the block runs; say who holds it if another does.

    The lock is the operating system's (``filelock``: ``flock`` on POSIX), so a killed process
    releases it. Under torchrun only rank 0 locks: the other ranks are the same command.
    """
    if os.environ.get("RANK", "0") != "0" or run.root in _HELD:
        yield
        return
    from filelock import FileLock, Timeout

    run.create()
    info = run.bookkeeping / LOCK_INFO
    fl = FileLock(str(run.bookkeeping / LOCK_FILE))
    try:
        fl.acquire(timeout=_timeout())
    except Timeout:
        raise StageError(
            f"run folder {run.root} is in use by {_holder(info)}",
            fix="wait for that command to finish, or use another --out",
        ) from None
    _HELD.add(run.root)
    try:
        with contextlib.suppress(OSError):
            write_json(
                info,
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": command or _command_line(),
                    "since": now(),
                },
            )
        with command_scope():
            yield
    finally:
        _HELD.discard(run.root)
        with contextlib.suppress(OSError):
            info.unlink()
        fl.release()


_HELD: set[Path] = set()  # run folders this process holds (nested commands do not wait on it)


def _holder(info: Path) -> str:
    try:
        data: dict[str, Any] = json.loads(info.read_text(encoding="utf-8"))
        return (
            f"pid {data.get('pid')} on {data.get('host')} ({data.get('command')!s}), "
            f"since {data.get('since')}"
        )
    except (OSError, ValueError, AttributeError):
        return "another dense-edge command"
