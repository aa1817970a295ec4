"""Single-file bundles: ``dense-edge bundle ENGINE_DIR -o model.bundle``.

A bundle is a gzip'd tar of an engine folder plus ``bundle.json``, which lists every member with
its size and sha256. Unpacking refuses anything that is not exactly that: unknown or missing
members, links, devices, absolute or ``..`` paths (nothing is ever written outside the target
folder), wrong sizes or checksums (a tampered or truncated bundle), and a manifest that fails its
schema. Only the standard library is used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from dense_edge.errors import UserError

INDEX = "bundle.json"
FORMAT = "dense-edge/bundle"
VERSION = 1


def pack(engine_dir: str | Path, out: str | Path) -> Path:
    """Write ``out`` (a .bundle) from an engine folder, after verifying the folder itself."""
    from dense_edge.targets import bundle as engine_bundle

    folder = Path(engine_dir)
    manifest = engine_bundle.read(folder)  # refuses a modified engine folder
    names = sorted({*manifest["files"], engine_bundle.MANIFEST})
    if "labels.txt" not in names:
        names.append("labels.txt")
    members: dict[str, bytes] = {}
    for name in names:
        if name == "labels.txt" and not (folder / name).exists():
            members[name] = ("\n".join(manifest["classes"]) + "\n").encode()
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
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for name, data in [(INDEX, json.dumps(index, indent=2).encode()), *members.items()]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name


def unpack(archive: str | Path, dest: str | Path) -> Path:
    """Verify ``archive`` and extract it into the new folder ``dest``; return ``dest``."""
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise UserError("bundle not found", path=archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            by_name = {m.name: m for m in members}
            if len(by_name) != len(members):
                raise UserError("bundle has duplicate members (tampered)", path=archive)
            for m in members:
                if not _safe_name(m.name):
                    raise UserError(
                        f"bundle member {m.name!r} points outside the bundle", path=archive
                    )
                if not m.isreg():
                    raise UserError(f"bundle member {m.name!r} is not a regular file", path=archive)
            if INDEX not in by_name:
                raise UserError("not a dense-edge bundle (no bundle.json)", path=archive)
            index = json.loads(_read(tar, by_name[INDEX]))
            if index.get("format") != FORMAT or index.get("format_version") != VERSION:
                raise UserError(
                    f"unsupported bundle format {index.get('format')!r} "
                    f"{index.get('format_version')!r}",
                    path=archive,
                )
            listed: dict[str, Any] = index.get("files", {})
            extra = set(by_name) - set(listed) - {INDEX}
            missing = set(listed) - set(by_name)
            if extra or missing:
                what = (
                    f"unlisted member {sorted(extra)[0]!r}"
                    if extra
                    else f"missing {sorted(missing)[0]!r}"
                )
                raise UserError(f"bundle does not match its index: {what} (tampered)", path=archive)
            for name in listed:
                if not _safe_name(name):
                    raise UserError(f"bundle lists {name!r}, outside the bundle", path=archive)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
            try:
                for name, entry in listed.items():
                    data = _read(tar, by_name[name])
                    if len(data) != entry.get("bytes") or hashlib.sha256(
                        data
                    ).hexdigest() != entry.get("sha256"):
                        raise UserError(
                            f"bundle member {name!r} does not match its sha256 "
                            "(tampered or corrupted)",
                            path=archive,
                        )
                    target = (tmp / name).resolve()
                    if tmp.resolve() not in target.parents:
                        raise UserError(
                            f"bundle member {name!r} points outside the bundle", path=archive
                        )
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                from dense_edge.targets import bundle as engine_bundle

                engine_bundle.read(tmp)  # the manifest's schema and its own checksums
                if dest.exists():
                    shutil.rmtree(dest)
                os.replace(tmp, dest)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp)
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError) as exc:
        raise UserError(
            f"not a readable bundle: truncated or corrupt ({exc.__class__.__name__})",
            path=archive,
            fix="copy the bundle again",
        ) from None
    return dest


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tar.extractfile(member)
    if fh is None:
        raise UserError(f"bundle member {member.name!r} cannot be read")
    return fh.read()
