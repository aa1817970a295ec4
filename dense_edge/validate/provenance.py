"""What a report must prove about what it measured: current engines, the model's identity, the
machine's load.

- :func:`refuse_stale` refuses an engine whose stage record says it was built from another
  source model than the run's current one (``calibrate --force`` with other settings since), so
  a report never describes engines that are not the run's current ones.
- :func:`tensor_sha256` identifies weights by their tensors (names, dtypes, shapes, bytes), not by
  the file: a safetensors file's header may embed metadata such as a timestamp, so two files of
  bit-identical tensors hash differently.
- :func:`engine_content_sha256` does the same for an engine bundle: the runtime files hashed
  without the metadata they embed (an ONNX model's ``metadata_props``, an OpenVINO IR's
  net-level ``<rt_info>``, both of which carry the export's manifest and its ``created`` time),
  plus every other file's bytes, the bundle's ``manifest.json`` left out. Two builds of the same
  model with the same settings hash alike; any change to a weight, a layer or a class does not.
- :func:`load_average` is the machine's 1/5/15-minute load, read at the start and the end of a
  measurement: a latency table is only read right beside the load it was measured under.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

from dense_edge import bundle
from dense_edge.errors import StageError
from dense_edge.fileio import sha256_file
from dense_edge.records import LoadAverage
from dense_edge.stages import read_record

_HEADER_LIMIT = 100 * 2**20  # a safetensors header larger than this is not one


def stale_reason(run_root: Path, engine: Path) -> str | None:
    """Why ``engine`` is not built from the run's current source model, or None when it is (or
    when its manifest predates stage records and nothing can be said)."""
    try:
        manifest = json.loads((engine / bundle.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the validation worker reports an unreadable bundle itself
    stage = manifest.get("stage") if isinstance(manifest, dict) else None
    source = manifest.get("source") if isinstance(manifest, dict) else None
    if not isinstance(stage, dict) or not isinstance(source, dict) or not source.get("model"):
        return None
    model = run_root / str(source["model"])
    built_from = (stage.get("inputs") or {}).get("source")
    if not model.is_file():
        return f"its source model {source['model']} is no longer in the run"
    current = read_record(model.parent)
    if built_from and current is not None and current.get("fingerprint") != built_from:
        return (f"it was built from an earlier {source['model']} (its stage made that model "
                f"again since, from other inputs)")  # fmt: skip
    recorded = source.get("sha256")
    if recorded and sha256_file(model) != recorded:
        return f"{source['model']} changed since it was built"
    return None


def refuse_stale(run_root: Path, engines: list[Path]) -> None:
    """StageError naming every engine built from other inputs than the run's current ones."""
    stale = [(e, why) for e in engines if (why := stale_reason(run_root, e)) is not None]
    if not stale:
        return
    names = "; ".join(f"{e.name}: {why}" for e, why in stale)
    rebuild = " and ".join(
        f"dense-edge compile --target {e.name.rsplit('-', 1)[0]} --precision "
        f"{e.name.rsplit('-', 1)[-1]} --force"
        for e, _ in stale
    )
    raise StageError(
        f"not the run's current engines, a report of them would describe another model ({names})",
        fix=f"rebuild them ({rebuild}), or leave them out with --engine",
    )


def tensor_sha256(path: Path) -> str | None:
    """A hash of a safetensors file's tensors: every name (sorted) with its dtype, shape and
    bytes; the header's free-form ``__metadata__`` is left out. None for another format or an
    unreadable file (the caller falls back to the file's hash)."""
    try:
        with open(path, "rb") as fh:
            size_bytes = fh.read(8)
            if len(size_bytes) != 8:
                return None
            (size,) = struct.unpack("<Q", size_bytes)
            if size > _HEADER_LIMIT:
                return None
            header = json.loads(fh.read(size))
            if not isinstance(header, dict):
                return None
            base = 8 + size
            h = hashlib.sha256()
            for name in sorted(k for k in header if k != "__metadata__"):
                info = header[name]
                start, end = (int(x) for x in info["data_offsets"])
                fh.seek(base + start)
                data = fh.read(end - start)
                if len(data) != end - start:
                    return None
                meta = json.dumps([name, info["dtype"], list(info["shape"]), end - start])
                h.update(meta.encode() + b"\0" + data)
            return h.hexdigest()
    except (OSError, ValueError, KeyError, TypeError):
        return None


def weights_tensor_sha256(model_dir: Path) -> str | None:
    """The tensor hash of the run's model weights (``model/weights.safetensors``), if any."""
    for f in sorted(model_dir.glob("weights*.safetensors")):
        return tensor_sha256(f)
    return None


def _onnx_content(path: Path) -> bytes:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    del model.metadata_props[:]
    model.doc_string = ""
    model.graph.doc_string = ""
    return bytes(model.SerializeToString(deterministic=True))


def _ir_content(path: Path) -> bytes:
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    for info in root.findall("rt_info"):  # the net's own, not the layers'
        root.remove(info)
    return bytes(ET.tostring(root, encoding="utf-8"))


_EMBEDS_METADATA = {".onnx": _onnx_content, ".xml": _ir_content}


def engine_content_sha256(folder: Path) -> str | None:
    """A hash of what an engine computes (see the module's docstring), or None when its
    manifest or a file it lists cannot be read (the caller falls back to the bundle's seal)."""
    try:
        manifest = json.loads((folder / bundle.MANIFEST).read_text(encoding="utf-8"))
        names = sorted(str(n) for n in manifest["files"])
        h = hashlib.sha256()
        for name in names:
            path = folder / name
            if Path(name).name != name or not path.is_file():
                return None
            read = _EMBEDS_METADATA.get(path.suffix.lower())
            h.update(name.encode() + b"\0")
            if read is not None:
                data = read(path)
                h.update(len(data).to_bytes(8, "little") + data)
            else:
                h.update(path.stat().st_size.to_bytes(8, "little"))
                with open(path, "rb") as fh:
                    while block := fh.read(1 << 20):
                        h.update(block)
        return h.hexdigest()
    except Exception:  # protobuf, XML, OS, JSON errors alike: no content hash, never a crash
        return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the system does not say."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def load_record(start: list[float] | None) -> LoadAverage:
    """The report's ``environment.load_average``: at the start and the end of the measurement."""
    return {"start": start, "end": load_average(), "cores": os.cpu_count()}
