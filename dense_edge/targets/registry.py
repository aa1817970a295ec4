"""The one list of targets dense-edge builds engines for, and how to load any engine bundle.

Every name a user can give (``--target``, a recipe's ``targets``, an engine manifest's
``target``) is looked up here; the CLI choices, the recipe schema and the report schema's enum
derive from :data:`TARGETS`. Importing this module imports no runtime.
"""

from __future__ import annotations

from pathlib import Path

from dense_edge.errors import UserError
from dense_edge.targets import bundle as bundle_io
from dense_edge.targets.base import Runner, Target
from dense_edge.targets.onnxruntime.target import TARGET as ONNXRUNTIME
from dense_edge.targets.openvino.target import TARGET as OPENVINO
from dense_edge.targets.tensorrt.target import TARGET as TENSORRT

# One line per target: adding one is its package and a line here.
TARGETS: dict[str, Target] = {t.name: t for t in (ONNXRUNTIME, OPENVINO, TENSORRT)}

ONNX = "onnx"  # not a target: `export --target onnx` stops at the checked ONNX model


def names() -> tuple[str, ...]:
    return tuple(TARGETS)


def all_targets() -> tuple[Target, ...]:
    return tuple(TARGETS.values())


def get(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UserError(
            f"unknown target {name!r}", fix=f"choose one of {', '.join(TARGETS)} (or {ONNX})"
        ) from None


def check_precision(target: str, precision: str) -> None:
    info = get(target)
    if precision not in info.precisions:
        raise UserError(
            f"target {target} does not build {precision} engines",
            fix=f"choose one of {', '.join(info.precisions)}",
        )


def load_runner(bundle: str | Path, *, verify: bool = True) -> Runner:
    """A runner for any engine bundle, chosen by its manifest."""
    folder = Path(bundle)
    manifest = bundle_io.read(folder, verify=verify)
    target = manifest.get("target")
    if not isinstance(target, str) or target not in TARGETS:
        raise UserError(f"bundle manifest names an unknown target {target!r}", path=folder)
    return TARGETS[target].load_runner(folder, manifest)
