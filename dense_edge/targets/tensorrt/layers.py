"""The kit's ``device_check.py``: what TensorRT did with the Concats, from trtexec's own output.

``device_check.sh`` builds the engine with ``trtexec --verbose --profilingVerbosity=detailed
--exportLayerInfo=layer_info.json`` (through ``trtexec.sh``, so with the kit's flags) and runs
this file on the log and the layer JSON. From the builder's verbose log it counts, per Concat:
eliminated ("Eliminating concatenation C": producers write straight into C's buffer), the copies
it still makes ("Generating copy for T to C_out because input is not movable." or "because of
stomping hazard.": T feeds another Concat already) and retargeted producers ("Retargeting T to
C_out"); from the engine's layers, the reformat layers (``LayerType`` Reformat: a layout or type
conversion) and the Concat layers that remain. This is what the traffic model
(``calibrate --explain``: a copy per extra Concat reader) predicts, measured on the device.
Standard library only; it runs wherever trtexec does.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, TypedDict

_ELIMINATED = re.compile(r"Eliminating concatenation (\S+)")
_COPY = re.compile(r"Generating copy for (\S+) to (\S+) because ([^.\n]+)")
_RETARGET = re.compile(r"Retargeting (\S+) to (\S+)")


class ConcatCopy(TypedDict):
    tensor: str  # what is copied
    into: str  # the Concat's output it is copied into
    reason: str  # trtexec's words: "input is not movable", "of stomping hazard"


class LogFindings(TypedDict):
    """What the verbose build log says TensorRT did with the Concats."""

    concats_eliminated: int
    copies: int
    concats_with_copies: int
    copy_reasons: dict[str, int]
    producers_retargeted: int
    eliminated: list[str]  # the Concats eliminated
    copied: list[ConcatCopy]


class EngineLayers(TypedDict):
    """What the engine's layer JSON holds: its layer kinds, reformats and Concats."""

    layers: int
    reformat_layers: int
    concat_layers_left: int
    layer_types: dict[str, int]  # layer type -> count, most first
    reformats: list[str]
    detailed: bool  # the JSON names layer types (--profilingVerbosity=detailed)


class _CheckKeys(TypedDict):
    log: LogFindings


class LayerCheck(_CheckKeys, total=False):
    """``device_check.py``'s result; ``engine`` when the layer JSON was there."""

    engine: EngineLayers


def parse_log(text: str) -> LogFindings:
    """Concat elimination, copies and retargeting from a trtexec ``--verbose`` build log."""
    eliminated = list(dict.fromkeys(_ELIMINATED.findall(text)))
    copies: list[ConcatCopy] = [{"tensor": t, "into": into, "reason": why.strip()}
              for t, into, why in _COPY.findall(text)]  # fmt: skip
    retargeted = _RETARGET.findall(text)
    copied_into = list(dict.fromkeys(c["into"] for c in copies))
    reasons: dict[str, int] = {}
    for c in copies:
        reasons[c["reason"]] = reasons.get(c["reason"], 0) + 1
    return {
        "concats_eliminated": len(eliminated),
        "copies": len(copies),
        "concats_with_copies": len(copied_into),
        "copy_reasons": reasons,
        "producers_retargeted": len(retargeted),
        "eliminated": eliminated,
        "copied": copies,
    }


def parse_layers(data: dict[str, Any]) -> EngineLayers:
    """Layer kinds in trtexec's ``--exportLayerInfo`` JSON (``--profilingVerbosity=detailed``)."""
    layers = data.get("Layers", [])
    kinds: dict[str, int] = {}
    reformats, concats = [], []
    for layer in layers:
        if isinstance(layer, str):  # profilingVerbosity below detailed: names only
            kind, name = "unknown", layer
        else:
            kind, name = str(layer.get("LayerType", "unknown")), str(layer.get("Name", ""))
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind.lower() == "reformat" or name.startswith("Reformatting CopyNode"):
            reformats.append(name)
        if "concat" in kind.lower():
            concats.append(name)
    return {
        "layers": len(layers),
        "reformat_layers": len(reformats),
        "concat_layers_left": len(concats),
        "layer_types": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        "reformats": reformats,
        "detailed": bool(layers) and not isinstance(layers[0], str),
    }


def check(log: Path, layer_info: Path | None) -> LayerCheck:
    out: LayerCheck = {"log": parse_log(log.read_text(errors="replace"))}
    if layer_info is not None and layer_info.exists():
        out["engine"] = parse_layers(json.loads(layer_info.read_text()))
    return out


def summary(result: LayerCheck) -> str:
    g = result["log"]
    line = (f"Concats: {g['concats_eliminated']} eliminated, {g['concats_with_copies']} with "
            f"copies ({g['copies']} copies: {g['copy_reasons'] or 'none'}), "
            f"{g['producers_retargeted']} producers retargeted")  # fmt: skip
    if "engine" in result:
        e = result["engine"]
        line += (f"; engine: {e['layers']} layers, {e['reformat_layers']} reformat, "
                 f"{e['concat_layers_left']} Concat layers left")  # fmt: skip
    return line


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 3:
        print("usage: device_check.py TRTEXEC_VERBOSE_LOG [LAYER_INFO_JSON [OUT_JSON]]",
              file=sys.stderr)  # fmt: skip
        return 2
    log = Path(argv[0])
    info = Path(argv[1]) if len(argv) > 1 else None
    result = check(log, info)
    if result["log"]["concats_eliminated"] == 0 and result["log"]["copies"] == 0:
        print("device_check: no Concat lines in the log: was trtexec run with --verbose?",
              file=sys.stderr)  # fmt: skip
    out = Path(argv[2]) if len(argv) > 2 else log.with_name("device_check.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))
    print(f"device check: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
