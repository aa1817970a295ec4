"""The process's one OpenVINO ``Core``, shared by calibration, compilation and the runners, and
the one reader of a model through it (an op OpenVINO cannot convert is named with its node).

One, never one per call: OpenVINO's CPU plugin (one per ``Core``, kept alive by every model
compiled with it) replaces the calling thread's alternate signal stack when it starts and puts
back the one it found when it is destroyed. Two plugins destroyed in the order they were made
leave the thread's alternate stack pointing at unmapped memory, and the next signal with a
Python handler (Ctrl-C, or the SIGCHLD handler torch's DataLoader installs) kills the process
with a segmentation fault and no traceback: two runners closed in the order they were opened
were enough. The CPU plugin is started here, so a plugin any other library starts later (NNCF
makes ``Core`` objects of its own) nests inside this one's.
``tests/targets/test_openvino_signal_stack.py`` holds the case.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dense_edge.errors import MissingDependencyError, UserError

_core: Any = None
_lock = threading.Lock()


def core() -> Any:
    """The ``openvino.Core`` of this process, made on first use and kept until it ends."""
    global _core
    with _lock:
        if _core is None:
            try:
                import openvino as ov
            except ImportError:
                raise MissingDependencyError(
                    "the openvino target needs the openvino package",
                    fix="pip install 'dense-edge[openvino]'",
                ) from None
            made = ov.Core()
            try:
                made.get_property("CPU", "FULL_DEVICE_NAME")  # starts the CPU plugin now
            except RuntimeError:  # no CPU plugin in this build: nothing to nest
                pass
            _core = made
        return _core


def read_model(path: Path) -> Any:
    """OpenVINO's model of the file at ``path``; an ONNX op OpenVINO cannot convert (a custom
    domain's, or one its frontend lacks) is named with its node, not as OpenVINO's bare
    "Exception from src/inference/src/cpp/core.cpp"."""
    try:
        return core().read_model(str(path))
    except Exception as exc:
        missing = unconverted_ops(path) if path.suffix == ".onnx" else []
        if missing:
            raise UserError(_unconverted_message(missing), path=path,
                            fix="replace it with standard ONNX ops before export, or compile "
                                "for a target that implements it") from None  # fmt: skip
        raise UserError(
            f"OpenVINO cannot read the model ({str(exc).splitlines()[0][:200]})",
            path=path,
            fix="re-create it with dense-edge export/calibrate --force",
        ) from None


def unconverted_ops(path: Path) -> list[tuple[str, str, str]]:
    """(domain, op type, node name) of every ONNX node OpenVINO's frontend leaves unconverted."""
    try:
        from openvino.frontend import FrontEndManager

        frontend = FrontEndManager().load_by_framework("onnx")
        loaded = frontend.load(str(path))  # kept alive: the converted model points into it
        partial = frontend.convert_partially(loaded)
        out = []
        for op in partial.get_ordered_ops():
            if "FrameworkNode" not in op.get_type_name():
                continue
            attrs = op.get_attributes()
            out.append((str(attrs.get("ONNX_META_domain") or "ai.onnx"),
                        str(attrs.get("ONNX_META_type") or op.get_type_name()),
                        op.get_friendly_name()))  # fmt: skip
        return out
    except Exception:
        return []  # the frontend cannot say: the caller reports OpenVINO's own words


def _unconverted_message(missing: list[tuple[str, str, str]]) -> str:
    def shown(text: str) -> str:
        return repr(text[:60] + ("..." if len(text) > 60 else ""))

    domain, op, node = missing[0]
    same = sum(1 for d, o, _ in missing if (d, o) == (domain, op))
    others = sorted({f"{d}.{o}" for d, o, _ in missing} - {f"{domain}.{op}"})
    text = (f"OpenVINO has no conversion for op {shown(op)} (domain {shown(domain)}), used by "
            f"node {shown(node)}")  # fmt: skip
    if same > 1:
        text += f" and {same - 1} more"
    if others:
        text += f"; nor for {', '.join(shown(o) for o in others[:3])}"
        text += f" and {len(others) - 3} more" if len(others) > 3 else ""
    return text
