"""The stage contract: every stage's output is reused, refused or rebuilt the same way.

A stage declares its *inputs*: the settings that change its output and the fingerprints of
what it reads (upstream stages' fingerprints, sha256 of files, listings with sizes), never
timestamps. It is current when its record holds the same fingerprint and its outputs still
match the sha256 recorded for them. A finished stage made from other inputs is refused, with the
inputs that changed, unless ``--force``.

Building happens in a temporary folder beside the output (``.NAME.dense-edge-tmp-*``). The
record is written inside it, then output and record land together with one rename. With
``--force`` the old output is renamed aside (``.NAME.dense-edge-trash-*``), the new one renamed
into place, and only then is the old one deleted; the next run restores the old output if a
crash happened between the two renames, and removes leftovers that carry our marker. Only
folders that carry our marker (a stage record, a temp marker, or a dense-edge manifest) are
ever deleted or replaced.

Engine folders are shipped to devices, so their record lives in their ``manifest.json``
(``stage``), which is itself hashed (``manifest_sha256``): the folder holds nothing unhashed.

Fault injection for tests: ``DENSE_EDGE_FAULT=<stage>:<point>`` raises :class:`InjectedFault`
(a ``BaseException``, like a kill) at that point; ``DENSE_EDGE_FAULT=<stage>:<point>:ENOSPC``
raises that ``OSError`` instead, and ``...:KILL`` sends the process SIGKILL.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TypedDict, cast

from dense_edge import bundle
from dense_edge.errors import StageError, UserError
from dense_edge.fileio import UMASK, ensure_dir, sha256_file, sha256_json, write_json
from dense_edge.manifest import StageStamp, now
from dense_edge.records import MANIFEST_FILE

RECORD = ".dense-edge-stage.json"
TMP_MARK = ".dense-edge-tmp"
OWNED_MARK = ".dense-edge-owned"  # folders with neither a record nor our manifest (report/)
LEGACY_RECORDS = ("stage.json",)
RECORD_FORMAT = "dense-edge/stage"
POINTS = ("started", "built", "recorded", "swapped", "committed")


class _StageRecordKeys(TypedDict):
    fingerprint: str  # sha256 of the inputs: what downstream stages are keyed on


class StageRecord(_StageRecordKeys, total=False):
    """A finished stage's record: ``<folder>/.dense-edge-stage.json``, or the ``stage`` key of an
    engine's ``manifest.json``. Read only through :func:`read_record`."""

    format: str  # RECORD_FORMAT
    stage: str  # the stage's name, e.g. "int8/openvino"
    inputs: Mapping[str, object]  # what the fingerprint covers, shown when a stage is out of date
    # for an input that is a digest (the calibration images): the recipe keys that chose it,
    # outside the fingerprint, so a refusal names the keys that changed rather than two hashes
    explain: Mapping[str, Mapping[str, object]]
    outputs: dict[str, str]  # file -> sha256 (not for engines: their manifest lists the files)
    completed: str


# (folder, fingerprint) of the stages built by the command now running: `--force` rebuilds a
# stage once per command, not once per caller (run --force reaches export from several stages).
_BUILT: set[tuple[str, str]] | None = None


@contextlib.contextmanager
def command_scope() -> Iterator[None]:
    global _BUILT
    outer, _BUILT = _BUILT, set()
    try:
        yield
    finally:
        _BUILT = outer


class InjectedFault(BaseException):
    """Raised by :func:`fault` where ``DENSE_EDGE_FAULT`` asks: behaves like a kill."""


def fault(stage: str, point: str) -> None:
    """A named write point; tests make it fail with ``DENSE_EDGE_FAULT=stage:point[:ERRNO]``."""
    spec = os.environ.get("DENSE_EDGE_FAULT")
    if not spec:
        return
    parts = spec.split(":")
    if len(parts) < 2 or parts[0] != stage or parts[1] != point:
        return
    if len(parts) > 2 and parts[2] == "KILL":  # a real kill: no finally, no cleanup
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    if len(parts) > 2:
        code = getattr(errno, parts[2])
        raise OSError(code, os.strerror(code), f"<{stage}:{point}>")
    raise InjectedFault(f"{stage}:{point}")


# -- environment faults ----------------------------------------------------------------------

_FIXES = {
    errno.ENOSPC: "free disk space, or choose an --out on another disk",
    errno.EDQUOT: "free space within your quota, or choose another --out",
    errno.EACCES: "make it writable, or choose another --out",
    errno.EPERM: "make it writable, or choose another --out",
    errno.EROFS: "the file system is read-only: choose another --out",
    errno.EISDIR: "remove the folder, or choose another path",
    errno.ENOTDIR: "a file is where a folder belongs: remove or rename it",
    errno.EFBIG: "free space or raise the file-size limit (ulimit -f), or choose another --out",
}


def environment_error(exc: OSError, path: str | Path) -> UserError:
    """An ``OSError`` met while writing ``path``, as a one-line error with the fix."""
    return UserError(
        f"cannot write {path} ({exc.strerror or exc.__class__.__name__})",
        fix=_FIXES.get(exc.errno or 0, "check the disk and permissions, or choose another --out"),
    )


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn environment faults (full disk, permissions, read-only) into one-line errors."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _FIXES:
            raise environment_error(exc, path) from None
        raise


def room_for(folder: Path, nbytes: int, shown: str | Path | None = None) -> None:
    """After a library failed while writing into ``folder`` and said so in words of its own
    (ONNX Runtime: "Protobuf serialization failed", OpenVINO: "iostream error"): write ``nbytes``
    there ourselves. A full disk, a quota, a file-size limit or a read-only folder fails this
    write too and is raised as the one-line error naming ``shown`` (the folder a user knows);
    if the write succeeds, the library's failure was something else and the caller says so."""
    probe = folder / f".dense-edge-probe-{os.getpid()}"
    block = bytes(1 << 20)
    try:
        with open(probe, "wb") as f:
            left = max(nbytes, 1)
            while left > 0:
                left -= f.write(block[: min(left, len(block))])
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if exc.errno in _FIXES:
            raise environment_error(exc, shown or folder) from None
        raise
    finally:
        probe.unlink(missing_ok=True)


# -- ownership -------------------------------------------------------------------------------


def is_ours(folder: Path) -> bool:
    """True when ``folder`` carries our marker: a record, a temp marker, our manifest."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    if any((folder / m).is_file() for m in (RECORD, TMP_MARK, OWNED_MARK)):
        return True
    if any((folder / r).is_file() for r in LEGACY_RECORDS):
        return True
    try:
        m = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and m.get("format") == "dense-edge/manifest"


def check_slot(folder: Path) -> None:
    """The place for a stage folder holds nothing, or a folder of ours."""
    for parent in reversed(folder.parents):
        if parent.exists() and not parent.is_dir():
            raise UserError(
                f"{parent} is a file where dense-edge keeps a folder",
                fix="remove or rename that file, or choose another --out",
            )
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UserError(
            f"{folder} is a file where dense-edge writes a stage folder",
            fix="remove or rename that file, or choose another --out",
        )
    if folder.is_dir() and any(folder.iterdir()) and not is_ours(folder):
        raise UserError(
            f"{folder} was not made by dense-edge, so it is never replaced",
            fix="move it away, or choose another --out",
        )


def _tmp_prefix(final: Path) -> str:
    return f".{final.name}.dense-edge-tmp-"


def _trash_prefix(final: Path) -> str:
    return f".{final.name}.dense-edge-trash-"


def recover(final: Path) -> None:
    """After a killed run: put a swapped-out output back if the new one never landed, then
    remove leftover temp and trash folders that carry our marker."""
    parent = final.parent
    if not parent.is_dir():
        return
    trash = sorted(p for p in parent.glob(_trash_prefix(final) + "*") if is_ours(p))
    if trash and not final.exists():
        trash[-1].rename(final)  # the old, complete output: never lose finished work
        trash = trash[:-1]
    for p in [*trash, *(p for p in parent.glob(_tmp_prefix(final) + "*") if is_ours(p))]:
        shutil.rmtree(p, ignore_errors=True)


def make_tmp(final: Path) -> Path:
    ensure_dir(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(final), dir=final.parent))
    os.chmod(tmp, 0o777 & ~UMASK)
    (tmp / TMP_MARK).write_text("dense-edge temporary build folder\n", encoding="utf-8")
    return tmp


def commit(tmp: Path, final: Path, stage: str) -> None:
    """Put ``tmp`` at ``final``: one rename, or (replacing) old aside, new in, old deleted."""
    (tmp / TMP_MARK).unlink(missing_ok=True)  # the record (or manifest) marks it from here
    if not is_ours(tmp):
        (tmp / OWNED_MARK).write_text("made by dense-edge\n", encoding="utf-8")
    if final.exists():
        trash = final.with_name(f"{_trash_prefix(final)}{uuid.uuid4().hex[:8]}")
        final.rename(trash)
        fault(stage, "swapped")
        tmp.rename(final)
        fault(stage, "committed")
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(final)
        fault(stage, "committed")


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; swap it into place only on success.

    The old ``final`` is renamed aside first and deleted only after the new one is in place, so
    a crash leaves one complete folder (:func:`recover` restores and cleans up after a crash
    between the two renames)."""
    final = Path(final)
    with writing(final):
        recover(final)
        check_slot(final)
        tmp = make_tmp(final)
    try:
        with writing(final):
            yield tmp
            commit(tmp, final, final.name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# -- records ---------------------------------------------------------------------------------


def output_table(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` except our own bookkeeping."""
    out = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name not in (RECORD, TMP_MARK, OWNED_MARK):
            out[f.relative_to(folder).as_posix()] = sha256_file(f)
    return out


def flatten(data: object, prefix: str = "") -> dict[str, object]:
    """Nested mappings as one level of dotted keys (``a.b``); other values are leaves."""
    if isinstance(data, dict):
        out: dict[str, object] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def describe_changes(
    old: Mapping[str, object],
    new: Mapping[str, object],
    limit: int = 3,
    *,
    old_explain: Mapping[str, Mapping[str, object]] | None = None,
    new_explain: Mapping[str, Mapping[str, object]] | None = None,
) -> str:
    """``key old -> new`` for each input that changed. An input both records explain (a digest
    of images) is shown as the recipe keys that changed; when none did, its files changed and
    the digests are all there is to show."""
    changed: list[str] = []
    for key, was, now_ in _changes(flatten(old), flatten(new)):
        why = (old_explain or {}).get(key), (new_explain or {}).get(key)
        if isinstance(why[0], dict) and isinstance(why[1], dict):
            x, y = flatten(why[0]), flatten(why[1])
            both = set(x) & set(y)  # a key one side lacks did not choose its images
            keys = _changes({k: x[k] for k in both}, {k: y[k] for k in both})
            if keys:
                changed.extend(f"{k} {w} -> {n}" for k, w, n in keys)
                continue
            key = f"{key} (the same settings, other files)"
        changed.append(f"{key} {was} -> {now_}")
    if not changed:
        return "its inputs changed"
    more = f" and {len(changed) - limit} more" if len(changed) > limit else ""
    return "; ".join(changed[:limit]) + more


def _changes(a: Mapping[str, object], b: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """(key, old, new) of each flat key whose value differs, the values shortened."""
    unset = "<unset>"
    return [(k, _short(a.get(k, unset)), _short(b.get(k, unset)))
            for k in sorted(set(a) | set(b)) if a.get(k, unset) != b.get(k, unset)]  # fmt: skip


def _short(value: object) -> str:
    """A value for a one-line message: a sha256 by its first 12 digits, text with control
    characters escaped (a path with a newline stays on the line), at most 40 characters (a long
    one keeps its start and its end, where a path's name is)."""
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]  # a sha256
    if isinstance(value, str):
        text = value if value.isprintable() else json.dumps(value)
    else:
        text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:12]}...{text[-25:]}"


class Stage:
    """One stage's output folder, its declared inputs, and the reuse/commit rules."""

    def __init__(
        self,
        name: str,
        folder: Path,
        inputs: Mapping[str, object],
        *,
        record_in_manifest: bool = False,
        explain: Mapping[str, Mapping[str, object]] | None = None,
    ) -> None:
        self.name = name
        self.folder = folder
        self.inputs: dict[str, object] = dict(inputs)  # a copy: the record shows what was hashed
        self.explain = explain or {}  # recorded beside the inputs, not fingerprinted
        self.fingerprint = sha256_json(inputs)
        self.record_in_manifest = record_in_manifest

    # reading

    def record(self) -> StageRecord | None:
        return read_record(self.folder, manifest=self.record_in_manifest)

    def _verify(self, rec: StageRecord) -> str | None:
        """None when the outputs are what the record says, else what is wrong."""
        if self.record_in_manifest:
            try:
                bundle.read(self.folder)
            except UserError as exc:
                text = str(exc)
                return text[: -len(f" ({exc.fix})")] if exc.fix and text.endswith(")") else text
            return None
        for name, digest in (rec.get("outputs") or {}).items():
            f = self.folder / name
            if not f.is_file():
                return f"{f} is missing"
            if sha256_file(f) != digest:
                return f"{f} does not match the sha256 recorded when it was made (modified)"
        return None

    def reusable(self, *, force: bool) -> StageRecord | None:
        """The record of a current output to reuse, or None to build. Refuses (StageError) a
        finished output made from other inputs, or a modified one, unless ``force``."""
        recover(self.folder)
        check_slot(self.folder)
        if not self.folder.exists() or not any(self.folder.iterdir()):
            return None
        if force and _BUILT is not None and (str(self.folder), self.fingerprint) in _BUILT:
            force = False  # forced once already in this command
        rec = self.record()
        if rec is None:
            if force:
                return None
            raise StageError(
                f"{self.folder} is not a finished {self.name} stage (no record of its inputs; "
                "an older dense-edge or an interrupted run made it)",
                fix="pass --force to rebuild it",
            )
        problem = self._verify(rec)
        if problem is not None:
            if force:
                return None
            raise StageError(
                f"{self.name} stage: {problem}",
                fix="pass --force to rebuild it, or restore the original",
            )
        if rec.get("fingerprint") == self.fingerprint:
            return None if force else rec
        if force:
            return None
        changes = describe_changes(
            rec.get("inputs") or {}, self.inputs, old_explain=rec.get("explain"),
            new_explain=self.explain,
        )  # fmt: skip
        raise StageError(
            f"{self.folder} was made from other inputs: {changes}",
            fix="pass --force to replace it, or --out for a new run folder",
        )

    # writing

    def record_data(self, tmp: Path) -> StageRecord:
        rec: StageRecord = {
            "format": RECORD_FORMAT,
            "stage": self.name,
            "fingerprint": self.fingerprint,
            "inputs": self.inputs,
            "outputs": output_table(tmp),
            "completed": now(),
        }
        if self.explain:
            rec["explain"] = self.explain
        return rec

    @contextlib.contextmanager
    def build(self) -> Iterator[Path]:
        """Yield a temporary folder to fill; on success, record and commit it in one rename."""
        try:
            recover(self.folder)
            check_slot(self.folder)
            tmp = make_tmp(self.folder)
        except OSError as exc:
            raise environment_error(exc, self.folder) from None
        try:
            with writing(self.folder):
                fault(self.name, "started")
                yield tmp
                fault(self.name, "built")
                if not self.record_in_manifest:
                    write_json(tmp / RECORD, self.record_data(tmp))
                fault(self.name, "recorded")
                commit(tmp, self.folder, self.name)
                if _BUILT is not None:
                    _BUILT.add((str(self.folder), self.fingerprint))
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def manifest_record(self) -> StageStamp:
        """For engine manifests: the record that lives inside ``manifest.json``."""
        return {"fingerprint": self.fingerprint, "inputs": self.inputs}


def read_record(folder: Path, *, manifest: bool = False) -> StageRecord | None:
    """The folder's stage record, or None when there is none or it is not one (no fingerprint)."""
    try:
        if manifest:
            data = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
            rec = data.get("stage") if isinstance(data, dict) else None
        else:
            rec = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(rec, dict) and isinstance(rec.get("fingerprint"), str):
        return cast(StageRecord, rec)
    return None


def upstream(folder: Path, what: str, *, manifest: bool = False) -> str:
    """The fingerprint of a finished upstream stage: what downstream stages are keyed on."""
    rec = read_record(folder, manifest=manifest)
    if rec is None:
        raise StageError(f"{folder} holds no finished {what}", fix=f"build the {what} first")
    return str(rec["fingerprint"])
