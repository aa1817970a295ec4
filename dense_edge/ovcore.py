"""The process's one OpenVINO ``Core``, shared by calibration, compilation and the runners.

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
from typing import Any

from dense_edge.errors import MissingDependencyError

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
