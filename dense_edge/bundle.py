"""Engine bundles: ``engines/<target>-<precision>/`` = engine files + ``manifest.json``.

The manifest carries what a device app needs (architecture, classes, preprocessing, input shape),
what was asked and what really runs (precision, runtime and version, device, settings), and the
sha256 of every file, checked whenever a bundle is loaded. A foundation module (the standard
library, errors and manifests only): device apps import it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict, cast

from dense_edge.errors import UserError
from dense_edge.manifest import EngineFile, EngineManifest, validate_manifest
from dense_edge.records import MANIFEST_FILE

MANIFEST = MANIFEST_FILE  # the bundle's manifest: the one file name records.py defines
BUNDLE_KIND = "engine"
SEAL = "manifest_sha256"  # the sha256 of the manifest's own content, without this key


def content_sha256(manifest: Mapping[str, object]) -> str:
    """sha256 of the manifest's content (keys sorted, ``manifest_sha256`` left out): the same
    however the JSON is laid out, different after any edit to a value."""
    body = {k: v for k, v in manifest.items() if k != SEAL}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(manifest: Mapping[str, object]) -> dict[str, object]:
    """The manifest with ``manifest_sha256`` set: edits to it (classes, mean) are detected."""
    return {**manifest, SEAL: content_sha256(manifest)}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def file_table(folder: Path, names: list[str]) -> dict[str, EngineFile]:
    return {n: {"sha256": sha256(folder / n), "bytes": (folder / n).stat().st_size} for n in names}


def labels_text(classes: list[str]) -> str:
    """``labels.txt``: one class per line, as the C++ apps in examples/ read it. A name with a
    newline or another control character would shift every later label: refused."""
    for name in classes:
        if not isinstance(name, str) or not name.isprintable():
            raise UserError(
                f"class name {name!r} has a newline or other control character: labels.txt "
                "(one class per line) cannot hold it",
                fix="rename the class (its data folder) and train again",
            )
    return "\n".join(classes) + "\n"


def write_sidecars(
    folder: Path,
    model: dict[str, Any],
    config: Mapping[str, object] | None = None,
    *,
    target: str,
    title: str,
) -> list[str]:
    """``labels.txt`` (one class per line) and ``preprocess.txt`` (``key value ...`` lines), and
    ``<target>.txt`` (the compile settings) for targets whose apps read them (OpenVINO's): what
    a device app in any language needs without a JSON parser."""
    (folder / "labels.txt").write_text(labels_text(model["classes"]), encoding="utf-8")
    pre = model["preprocess"]
    resize = pre.get("resize")
    if resize is None:
        resize_text = "none"
    elif isinstance(resize, list):
        resize_text = " ".join(str(v) for v in resize)
    else:
        resize_text = str(resize)
    lines = [
        "# dense-edge preprocessing: image -> float32 NCHW tensor, in this order",
        f"input_name {model.get('input_name', 'images')}",
        f"output_name {model.get('output_name', 'logits')}",
        f"input_size {pre['input_size'][0]} {pre['input_size'][1]}",
        f"color {pre['color']}",
        f"channel_order {pre['channel_order']}",
        f"resize {resize_text}",
        f"crop {int(bool(pre.get('crop')))}",
        f"interpolation {pre['interpolation']}",
        f"scale {float(pre['scale']):.17g}",
        "mean " + " ".join(f"{float(v):.17g}" for v in pre["mean"]),
        "std " + " ".join(f"{float(v):.17g}" for v in pre["std"]),
        f"layout {pre.get('layout', 'NCHW')}",
    ]
    (folder / "preprocess.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    names = ["labels.txt", "preprocess.txt"]
    if config is not None:
        text = "".join(f"{k} {v}\n" for k, v in config.items())
        name = f"{target}.txt"
        (folder / name).write_text(f"# {title} compile settings\n" + text, encoding="utf-8")
        names.append(name)
    return names


def read(folder: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """The bundle's manifest as a plain mapping (see :func:`read_manifest`, which checks it)."""
    return dict(read_manifest(folder, verify=verify))


def read_manifest(folder: str | Path, *, verify: bool = True) -> EngineManifest:
    """The bundle's manifest, typed, after checking its seal and (``verify``) that every listed
    file is present and unchanged."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise UserError("engine bundle folder not found", path=folder)
    if not path.exists():
        raise UserError(
            f"not an engine bundle: no {MANIFEST}",
            path=folder,
            fix="build it with dense-edge compile",
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable bundle manifest ({exc})", path=path) from None
    if (
        isinstance(manifest, dict)
        and SEAL in manifest
        and manifest[SEAL] != content_sha256(manifest)
    ):
        raise UserError(
            f"{MANIFEST} was edited after the engine was built (its manifest_sha256 no longer "
            "matches its content: classes, preprocessing or shapes may not fit the engine)",
            path=path,
            fix="restore the original manifest.json, or rebuild with dense-edge compile --force",
        )
    validate_manifest(manifest, path)
    if manifest.get("kind") != BUNDLE_KIND:
        raise UserError(f"manifest kind is {manifest.get('kind')!r}, not an engine", path=path)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise UserError("bundle manifest lists no files", path=path)
    for name, entry in files.items():
        f = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise UserError(f"bundle lists a file outside the bundle: {name}", path=path)
        _check_regular(f, name, folder, verify)  # a FIFO or /dev/zero hangs whoever reads it
        if verify:
            if not isinstance(entry, dict) or f.stat().st_size != entry.get("bytes"):
                raise UserError(
                    f"bundle file {name} does not have the size its manifest lists "
                    "(truncated or modified)",
                    path=folder,
                    fix="rebuild it with dense-edge compile --force",
                )
            if sha256(f) != entry.get("sha256"):
                raise UserError(
                    f"bundle file {name} does not match its sha256 (corrupted or modified)",
                    path=folder,
                    fix="rebuild it with dense-edge compile --force",
                )
    return cast(EngineManifest, manifest)  # validated and checked just above


def _check_regular(f: Path, name: str, folder: Path, required: bool) -> None:
    import os
    import stat

    try:
        mode = os.stat(f).st_mode  # follows a link: what a reader would open
    except FileNotFoundError:
        if not required:
            return
        raise UserError(f"bundle file {name} is missing", path=folder) from None
    except OSError as exc:
        raise UserError(
            f"bundle file {name} cannot be read ({exc.strerror})", path=folder
        ) from None
    if not stat.S_ISREG(mode):
        raise UserError(
            f"bundle file {name} is not a regular file (a device, a FIFO or a link to one)",
            path=folder,
            fix="replace it with the engine's real file, or rebuild with dense-edge compile",
        )


class EngineSummary(TypedDict):
    target: str | None
    precision: str | None
    precision_run: str | None
    bytes: int  # all its files together


def engine_summary(manifest: EngineManifest) -> EngineSummary:
    return {
        "target": manifest.get("target"),
        "precision": manifest.get("precision"),
        "precision_run": manifest.get("precision_run"),
        "bytes": sum(int(f.get("bytes", 0)) for f in manifest.get("files", {}).values()),
    }
