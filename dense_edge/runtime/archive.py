"""Single-file bundles: ``dense-edge bundle ENGINE_DIR -o model.bundle``.

A bundle is a gzip'd tar of an engine folder plus ``bundle.json``, which lists every member with
its size and sha256. Unpacking refuses anything that is not exactly that: unknown or missing
members, links, devices, absolute or ``..`` paths (nothing is ever written outside the target
folder), wrong sizes or checksums (a modified or truncated bundle), and a manifest that fails its
schema. Only what the engine manifest lists (plus ``labels.txt``) is extracted: other members are
dropped. Sizes come from the manifest and are measured while reading; the decompressed stream is
cut off past a bound (:data:`MAX_EXPANSION` times the archive's size), so a small archive cannot
expand without limit, not even while its members are listed.

This proves integrity, not origin: the checksums travel inside the bundle, so whoever can rewrite
a bundle can rewrite them too. Sign the ``.bundle`` file with your own release tooling when you
need to know who made it. Only the standard library is used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, cast

from dense_edge import bundle as engine_bundle
from dense_edge import tempdata
from dense_edge.bundle import MANIFEST
from dense_edge.errors import UserError
from dense_edge.fileio import UMASK
from dense_edge.stages import environment_error, fault

if TYPE_CHECKING:
    from dense_edge.manifest import EngineFile  # a file's entry: {sha256, bytes}

INDEX = "bundle.json"
FORMAT = "dense-edge/bundle"
VERSION = 1
MAX_EXPANSION = 64  # a bundle may unpack to at most this many times its own size ...
MIN_BOUND = 64 << 20  # ... or this many bytes, whichever is more
MAX_MANIFEST = 8 << 20  # manifest.json, read whole before anything else
MAX_LABELS = 4 << 20  # labels.txt of bundles whose manifest does not list it


def pack(engine_dir: str | Path, out: str | Path) -> Path:
    """Write ``out`` (a .bundle) from an engine folder, after verifying the folder itself."""

    folder = Path(engine_dir)
    manifest = engine_bundle.read(folder)  # refuses a modified engine folder
    names = sorted({*manifest["files"], engine_bundle.MANIFEST})
    if "labels.txt" not in names:
        names.append("labels.txt")
    members: dict[str, bytes] = {}
    for name in names:
        if name == "labels.txt" and not (folder / name).exists():
            members[name] = engine_bundle.labels_text(manifest["classes"]).encode()
        else:
            members[name] = (folder / name).read_bytes()
    index = {
        "format": FORMAT,
        "format_version": VERSION,
        "target": manifest.get("target"),
        "precision": manifest.get("precision"),
        "files": {
            n: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
            for n, b in members.items()
        },
    }
    out = Path(out)
    if not out.parent.is_dir():
        raise UserError(
            "the output folder does not exist", path=out.parent, fix="create it, or fix -o"
        )
    if out.is_dir():
        raise UserError("is a folder", path=out, fix="give -o a file name, e.g. model.bundle")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as exc:
        raise _unwritable(out, exc) from None
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for name, data in [(INDEX, json.dumps(index, indent=2).encode()), *members.items()]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o666 & ~_umask())

        fault("bundle", "written")
        os.replace(tmp, out)
    except OSError as exc:
        raise _unwritable(out, exc) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _unwritable(out: Path, exc: OSError) -> UserError:

    return environment_error(exc, out)


def _umask() -> int:

    return UMASK


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name


def unpack(archive: str | Path, dest: str | Path, *, reuse_existing: bool = False) -> Path:
    """Verify ``archive`` and extract it into ``dest``, a folder that must not exist yet (or be
    empty). With ``reuse_existing``, a ``dest`` that already holds this same engine (its
    manifest equal to the archive's, its files matching it) is kept: the runtime's cache, where
    several processes may unpack the same bundle at once. Another engine in that place is
    replaced, never served."""

    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise UserError("bundle not found", path=archive)
    if reuse_existing and dest.parent.is_dir():
        tempdata.sweep(dest.parent)  # extractions killed before they could clean up
    with _open(archive) as tar:
        members, keep, manifest_bytes = _verified_index(tar, archive)
        replace = False
        if dest.exists() or dest.is_symlink():
            if reuse_existing and _holds(dest, manifest_bytes):
                return dest
            # The runtime's cache: an entry that fails its checksums (a bad disk, an edit, a
            # killed extraction) or holds another engine is extracted again from the bundle.
            replace = reuse_existing and dest.is_dir() and not dest.is_symlink()
            if not replace and (not dest.is_dir() or dest.is_symlink() or any(dest.iterdir())):
                raise UserError(
                    "destination exists and is not an empty folder",
                    path=dest,
                    fix="choose a new folder",
                )
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = tempdata.make("bundle", dest.parent)
        except OSError as exc:
            raise UserError(
                f"cannot write the bundle's folder ({exc.strerror})", path=dest
            ) from None
        try:
            for name, entry in keep.items():
                _extract(tar, members[name], entry, tmp, archive)

            engine_bundle.read(tmp)  # the manifest's schema and its own checksums
            try:
                if replace and dest.is_dir() and not _holds(dest, manifest_bytes):
                    trash = tempdata.make("old", dest.parent)
                    os.rename(dest, trash / "entry")
                    shutil.rmtree(trash, ignore_errors=True)
                if dest.is_dir() and not any(dest.iterdir()):
                    dest.rmdir()
                os.rename(tmp, dest)
            except OSError:
                if reuse_existing and _holds(dest, manifest_bytes):  # another process won
                    return dest
                raise
        except OSError as exc:
            raise UserError(f"cannot unpack into this folder ({exc.strerror})", path=dest) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return dest


def _holds(folder: Path, manifest_bytes: bytes) -> bool:
    """``folder`` is a valid engine whose manifest is exactly the archive's (so its files, each
    checked against that manifest's sha256, are the archive's too)."""

    try:
        if (folder / engine_bundle.MANIFEST).read_bytes() != manifest_bytes:
            return False
        engine_bundle.read(folder)
    except (UserError, OSError):
        return False
    return True


def _valid(folder: Path) -> bool:

    try:
        engine_bundle.read(folder)
    except UserError:
        return False
    return True


class _Bounded:
    """The archive's decompressed stream, cut off past ``limit`` bytes: listing or reading a
    small archive never decompresses more than that."""

    def __init__(self, raw: Any, limit: int, archive: Path) -> None:
        self.raw, self.limit, self.archive = raw, limit, archive

    def _refuse(self) -> UserError:
        return UserError(
            f"bundle expands to more than {self.limit >> 20} MiB, {MAX_EXPANSION} times its own "
            "size (a decompression bomb?)",
            path=self.archive,
            fix="rebuild it with dense-edge bundle from the engine folder",
        )

    def read(self, n: int = -1) -> bytes:
        room = self.limit + 1 - self.raw.tell()
        data: bytes = self.raw.read(room if n is None or n < 0 else min(n, room))
        if self.raw.tell() > self.limit:
            raise self._refuse()
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 0 and pos > self.limit:
            raise self._refuse()
        out: int = self.raw.seek(pos, whence)
        if out > self.limit:
            raise self._refuse()
        return out

    def tell(self) -> int:
        out: int = self.raw.tell()
        return out

    def close(self) -> None:
        self.raw.close()


class _open:
    """``tarfile.open`` over a bounded stream, whose failures are a one-line 'truncated or
    corrupt' error."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive

    def __enter__(self) -> tarfile.TarFile:
        import gzip

        try:
            size = self.archive.stat().st_size
            with open(self.archive, "rb") as fh:
                gzipped = fh.read(2) == b"\x1f\x8b"
            raw: Any = gzip.GzipFile(self.archive, "rb") if gzipped else open(self.archive, "rb")
            self.stream = _Bounded(raw, max(MIN_BOUND, MAX_EXPANSION * size), self.archive)
        except OSError as exc:
            raise _corrupt(self.archive, exc) from None
        try:
            self.tar = tarfile.TarFile(fileobj=cast("IO[bytes]", self.stream), mode="r")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            self.stream.close()
            raise _corrupt(self.archive, exc) from None
        except UserError:
            self.stream.close()
            raise
        return self.tar

    def __exit__(self, *exc: object) -> None:
        self.tar.close()
        self.stream.close()


def _corrupt(archive: Path, exc: BaseException) -> UserError:
    return UserError(
        f"not a readable bundle: truncated or corrupt ({exc.__class__.__name__})",
        path=archive,
        fix="copy the bundle again",
    )


def _verified_index(
    tar: tarfile.TarFile, archive: Path
) -> tuple[dict[str, tarfile.TarInfo], dict[str, EngineFile], bytes]:
    """The members, the ones to extract (what the engine manifest lists, with the manifest's
    sizes and checksums) and the manifest's bytes."""
    try:
        members = tar.getmembers()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise _corrupt(archive, exc) from None
    by_name = {m.name: m for m in members}
    if len(by_name) != len(members):
        raise UserError("bundle has duplicate members (tampered)", path=archive)
    for m in members:
        if not _safe_name(m.name):
            raise UserError(f"bundle member {m.name!r} points outside the bundle", path=archive)
        if not m.isreg():
            raise UserError(f"bundle member {m.name!r} is not a regular file", path=archive)
    if INDEX not in by_name:
        raise UserError("not a dense-edge bundle (no bundle.json)", path=archive)
    if by_name[INDEX].size > 1 << 20:
        raise UserError("bundle.json is implausibly large (tampered)", path=archive)
    try:
        index = json.loads(_read_all(tar, by_name[INDEX]))
    except (ValueError, UnicodeDecodeError):
        raise UserError(
            "bundle.json is not valid JSON (tampered or corrupt)", path=archive
        ) from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise UserError("not a dense-edge bundle (bundle.json has another format)", path=archive)
    if index.get("format_version") != VERSION:
        raise UserError(
            f"bundle format version {index.get('format_version')!r} is not {VERSION}",
            path=archive,
            fix="unpack it with the dense-edge version that made it",
        )
    listed = index.get("files")
    if not isinstance(listed, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("bytes"), int) and isinstance(e.get("sha256"), str)
        for e in listed.values()
    ):
        raise UserError("bundle.json lists its files in an unknown form (tampered)", path=archive)
    for name in listed:
        if not isinstance(name, str) or not _safe_name(name):
            raise UserError(f"bundle lists {name!r}, outside the bundle", path=archive)
    extra = set(by_name) - set(listed) - {INDEX}
    missing = set(listed) - set(by_name)
    if extra or missing:
        what = (
            f"unlisted member {sorted(extra)[0]!r}" if extra else f"missing {sorted(missing)[0]!r}"
        )
        raise UserError(f"bundle does not match its index: {what} (tampered)", path=archive)
    return by_name, *_engine_files(tar, by_name, listed, archive)


def _engine_files(
    tar: tarfile.TarFile,
    by_name: dict[str, tarfile.TarInfo],
    listed: dict[str, EngineFile],
    archive: Path,
) -> tuple[dict[str, EngineFile], bytes]:
    """What the engine manifest lists, each as the bundle index lists it too; the rest of the
    archive is never written. Their total size is bounded before anything is extracted."""

    tampered = "bundle does not match its engine manifest: {} (tampered)"
    entry = listed.get(MANIFEST)
    if entry is None or by_name[MANIFEST].size > MAX_MANIFEST:
        what = "no manifest.json" if entry is None else "manifest.json is implausibly large"
        raise UserError(tampered.format(what), path=archive)
    raw = _read_all(tar, by_name[MANIFEST])
    if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
        raise UserError(tampered.format("manifest.json does not match its sha256"), path=archive)
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise UserError(tampered.format("manifest.json is not JSON"), path=archive) from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("bytes"), int) and e["bytes"] >= 0
        and isinstance(e.get("sha256"), str) for e in files.values()
    ):  # fmt: skip
        raise UserError(
            tampered.format("its manifest lists files in an unknown form"), path=archive
        )
    keep: dict[str, EngineFile] = {MANIFEST: entry}
    for name, want in files.items():
        got = listed.get(name)
        if got is None or (got["bytes"], got["sha256"]) != (want["bytes"], want["sha256"]):
            raise UserError(tampered.format(f"{name!r} differs from its index"), path=archive)
        keep[name] = want
    labels = listed.get("labels.txt")  # bundles of engines whose manifest does not list it
    if labels is not None and "labels.txt" not in keep and labels["bytes"] <= MAX_LABELS:
        keep["labels.txt"] = labels
    total = sum(int(e["bytes"]) for e in keep.values())
    limit = max(MIN_BOUND, MAX_EXPANSION * archive.stat().st_size)
    if total > limit:
        raise UserError(
            f"bundle's engine manifest lists {total >> 20} MiB of files, more than "
            f"{MAX_EXPANSION} times the bundle's size (a decompression bomb?)",
            path=archive,
            fix="rebuild it with dense-edge bundle from the engine folder",
        )
    return keep, raw


def _extract(
    tar: tarfile.TarFile, member: tarfile.TarInfo, entry: EngineFile, root: Path, archive: Path
) -> None:
    """Copy one member into ``root`` in chunks, checking its size before and hash after."""
    name = member.name
    mismatch = UserError(
        f"bundle member {name!r} does not match its sha256 (tampered or corrupted)", path=archive
    )
    if member.size != entry["bytes"]:
        raise mismatch
    target = (root / name).resolve()
    if root.resolve() not in target.parents:
        raise UserError(f"bundle member {name!r} points outside the bundle", path=archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    h, written = hashlib.sha256(), 0
    try:
        src = tar.extractfile(member)
        if src is None:
            raise mismatch
        with src, open(target, "wb") as out:
            while block := src.read(1 << 20):
                written += len(block)
                if written > entry["bytes"]:
                    raise mismatch
                h.update(block)
                out.write(block)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise _corrupt(archive, exc) from None
    if written != entry["bytes"] or h.hexdigest() != entry["sha256"]:
        raise mismatch


def _read_all(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    try:
        fh = tar.extractfile(member)
        if fh is None:
            raise UserError(f"bundle member {member.name!r} cannot be read")
        return fh.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise UserError(
            f"not a readable bundle: truncated or corrupt ({exc.__class__.__name__})"
        ) from None
