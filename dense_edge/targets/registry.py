"""The targets dense-edge builds engines for, and how to load any engine bundle.

The names are declared in :mod:`dense_edge.catalog` (the recipe schema and the CLI's choices read
them there); this module maps each declared name to the :class:`Target` that implements it, in
the catalogue's order, and a declaration without an implementation fails at import. Importing
this module imports no runtime.
"""

from __future__ import annotations

from pathlib import Path

from dense_edge import bundle as bundle_io
from dense_edge import catalog
from dense_edge.catalog import ONNX
from dense_edge.errors import UserError
from dense_edge.targets.base import Runner, Target
from dense_edge.targets.onnxruntime.target import TARGET as ONNXRUNTIME
from dense_edge.targets.openvino.target import TARGET as OPENVINO
from dense_edge.targets.tensorrt.target import TARGET as TENSORRT

# One line per target: adding one is its declaration in dense_edge.catalog, its package and a
# line here. The catalogue's order is the order everything lists targets in.
_IMPLEMENTED: tuple[Target, ...] = (ONNXRUNTIME, OPENVINO, TENSORRT)


def _implementation(declared: catalog.TargetDeclaration) -> Target:
    for target in _IMPLEMENTED:
        if target.declared is declared:
            return target
    raise LookupError(
        f"target {declared.name!r} is declared in dense_edge.catalog but not listed in "
        "dense_edge.targets.registry"
    )


TARGETS: dict[str, Target] = {d.name: _implementation(d) for d in catalog.TARGETS}

__all__ = ["ONNX", "TARGETS", "all_targets", "check_precision", "get", "load_runner", "names"]


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
    manifest = bundle_io.read_manifest(folder, verify=verify)
    target = manifest.get("target")
    if not isinstance(target, str) or target not in TARGETS:
        raise UserError(f"bundle manifest names an unknown target {target!r}", path=folder)
    return TARGETS[target].load_runner(folder, manifest)
