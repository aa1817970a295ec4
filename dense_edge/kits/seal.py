"""The seal a run keeps of each kit it wrote, and the check of a device report against it.

A kit's ``manifest.json`` lists the sha256 of every file, but it travels with the kit: whoever
edits the evaluation data can update those sums too, and the device report would then say
"drop +0.00" about data the run never made. So the run keeps its own record, *outside* the kit
folder (``RUN/kits/<kit>.seal.json``, never copied to the device): the sha256 of the kit's
manifest and of its evaluation set and model as written. The device validator reports the same
identities, measured from the files it ran; ``report merge`` refuses a device report whose
identities are not the sealed ones. Editing any of the kit's own files (data, model, manifest,
all consistently) changes an identity the run holds, so it cannot pass.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TypedDict

from dense_edge.errors import UserError
from dense_edge.fileio import write_json
from dense_edge.records import MANIFEST_FILE

SUFFIX = ".seal.json"
SCHEMA = "dense-edge/kit-seal"
MANIFEST = MANIFEST_FILE  # a kit's manifest (records.py defines the name once)
EVAL_FOLDER = "eval"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class KitIdentity(TypedDict):
    """A kit's identity: the sha256 of its manifest, its evaluation set and its model."""

    manifest_sha256: str
    evaluation_sha256: str | None  # None: the kit carries no evaluation set
    model_sha256: str | None  # None: its build plan names no model present in it


def identity(kit: Path) -> KitIdentity:
    """What a kit is, measured from its files: its manifest, evaluation set and model."""
    manifest_path = kit / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    eval_files = sorted(p for p in (kit / EVAL_FOLDER).glob("*") if p.is_file())
    digest = hashlib.sha256()
    for p in eval_files:
        digest.update(f"{p.name}:{_sha256(p)}\n".encode())
    model = manifest.get("build_plan", {}).get("onnx")
    return {
        "manifest_sha256": _sha256(manifest_path),
        "evaluation_sha256": digest.hexdigest() if eval_files else None,
        "model_sha256": _sha256(kit / model) if model and (kit / model).is_file() else None,
    }


def seal_path(kit: Path) -> Path:
    return kit.parent / f"{kit.name}{SUFFIX}"


def write(kit: Path) -> Path:
    """Record ``kit``'s identity beside it, in the run (the file is not part of the kit)."""

    return write_json(seal_path(kit), {"schema": SCHEMA, "kit": kit.name, **identity(kit)})


def check(device: dict[str, Any], run_root: Path, report_path: Path) -> None:
    """Refuse a device report whose kit is not one this run wrote, unchanged."""
    kit = device.get("kit", {})
    name = kit.get("name") or Path(str(kit.get("path", ""))).name
    seal_file = run_root / "kits" / f"{name}{SUFFIX}"
    if not seal_file.exists():
        raise UserError(
            f"this run holds no seal of kit {name!r} (RUN/kits/{name}{SUFFIX}), so the device "
            "report's evaluation data cannot be checked",
            path=report_path,
            fix="merge into the run that wrote the kit (--run), or export the kit again there "
            "and validate that one",
        )
    sealed = json.loads(seal_file.read_text(encoding="utf-8"))
    measured = kit.get("identity") or {}
    for key, what in (("manifest_sha256", "manifest"), ("evaluation_sha256", "evaluation set"),
                      ("model_sha256", "model")):  # fmt: skip
        if sealed.get(key) != measured.get(key):
            raise UserError(
                f"the kit this device report measured is not the one the run wrote: its {what} "
                f"differs (sha256 {str(measured.get(key))[:12]}..., sealed "
                f"{str(sealed.get(key))[:12]}...; the kit's files were changed after export)",
                path=report_path,
                fix=f"copy the kit again from {seal_file.parent / name} and validate it anew",
            )
