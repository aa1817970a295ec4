"""Atomic writes and checksums: a crashed run never leaves a file that looks finished."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dense_edge.errors import RecipeError, UserError


def ensure_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents); turn permission problems into a user error."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create directory ({exc.strerror})", path=p, fix="choose a writable --out"
        ) from None
    if not os.access(p, os.W_OK):
        raise UserError("directory is not writable", path=p, fix="choose a writable --out")
    return p


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which would race with threads
# creating files if done at every write.
UMASK = _read_umask()


def _umask() -> int:
    return UMASK


@contextlib.contextmanager
def scratch_path(beside: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """A temporary file path next to ``beside`` (same file system), removed on exit if left."""
    beside = Path(beside)
    ensure_dir(beside.parent)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{beside.name}.", suffix=suffix or beside.suffix or ".tmp", dir=beside.parent
    )
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    tmp_path = Path(tmp)
    try:
        yield tmp_path
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(final: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only if the block succeeds."""
    with scratch_path(final, suffix) as tmp:
        yield tmp
        with open(tmp, "rb+") as fh:  # on disk before the name says it is finished
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # writers that recreate the file make it 0600
        os.replace(tmp, final)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(
        path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"
    )


def read_json(path: str | Path) -> Any:
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("file not found", path=p) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"not valid JSON ({exc})", path=p) from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(data: Any) -> str:
    """A stable hash of JSON-able data (keys sorted)."""
    text = json.dumps(data, sort_keys=True, default=_json_default, separators=(",", ":"))
    return sha256_bytes(text.encode())


# A name from a recipe is a name, not a path: it names a folder (runs/<name>/) and nothing more.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_name(name: str, where: str = "recipe") -> str:
    """A recipe ``name`` names a folder under ``runs/``; it is never a path."""
    if not _NAME.fullmatch(name) or ".." in name:  # match() lets "name\n" through
        raise RecipeError(
            f"{where}: name {name!r} is not a plain name (letters, digits, '.', '_', '-'; "
            "no '/', '\\', '..' or absolute paths)",
            fix="rename it, and use --out DIR to choose where the run folder goes",
        )
    return name
