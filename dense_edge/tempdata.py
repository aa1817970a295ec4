"""Temporary folders that a killed command cannot leave behind for good.

Every temporary folder dense-edge makes outside a run folder (validate's float32 copy of the
evaluation set, a bundle being extracted into the runtime's cache) is named
``.dense-edge-tmp-<what>-<pid>-<random>``. A command killed with SIGKILL cannot remove its own;
the next command does (:func:`sweep`), and only folders that carry this exact name and whose
process is gone: never anything else in the folder, never the folder of a running command.
Only the standard library is used: device apps import it through the runtime.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_NAME = re.compile(r"^\.dense-edge-tmp-([a-z]+)-(\d+)-[A-Za-z0-9_]+$")


def make(what: str, parent: Path | None = None) -> Path:
    """A new, marked temporary folder in ``parent`` (default: the system's temporary folder)."""
    if not what.isalpha() or not what.islower():
        raise ValueError(f"temporary folder kind must be lower-case letters, got {what!r}")
    folder = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix=f".dense-edge-tmp-{what}-{os.getpid()}-", dir=folder))


@contextlib.contextmanager
def folder(what: str, parent: Path | None = None) -> Iterator[Path]:
    """:func:`make`, removed when the block ends (and by the next command if we are killed)."""
    path = make(what, parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def is_leftover(path: Path) -> bool:
    """One of ours, whose process no longer runs."""
    match = _NAME.match(path.name)
    if match is None or path.is_symlink() or not path.is_dir():
        return False
    return not _alive(int(match.group(2)))


def sweep(parent: Path | None = None) -> list[Path]:
    """Remove the leftovers of killed commands in ``parent``; return what was removed."""
    folder = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(".dense-edge-tmp-")]
    except OSError:
        return removed
    for p in entries:
        if is_leftover(p):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process (or unknowable): leave it alone
    return True
