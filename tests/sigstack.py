"""Is this thread's alternate signal stack (``sigaltstack``) memory that is still mapped?

A signal whose handler asks for the alternate stack (every Python handler does: CPython installs
them with ``SA_ONSTACK``) is delivered on it; if it points at unmapped memory the kernel cannot
deliver the signal and kills the process with SIGSEGV, before faulthandler can say anything.
OpenVINO's CPU plugin swaps this stack (``dense_edge/ovcore.py`` says how that
went wrong), so the suite checks it after every test (tests/conftest.py) and
tests/targets/test_openvino_signal_stack.py holds the case that broke it."""

from __future__ import annotations

import ctypes


class _StackT(ctypes.Structure):
    _fields_ = [
        ("ss_sp", ctypes.c_void_p),
        ("ss_flags", ctypes.c_int),
        ("ss_size", ctypes.c_size_t),
    ]


def dangling_alt_stack() -> str | None:
    """``None`` if the calling thread has no alternate stack or a mapped one; else a description."""
    current = _StackT()
    if ctypes.CDLL(None, use_errno=True).sigaltstack(None, ctypes.byref(current)) != 0:
        return None
    start = current.ss_sp or 0
    if not start or current.ss_flags & 2:  # SS_DISABLE
        return None
    end = start + current.ss_size
    with open("/proc/self/maps", encoding="ascii") as maps:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split(maxsplit=1)[0].split("-"))
            if lo <= start and end <= hi:
                return None
    return f"the alternate signal stack {start:#x}..{end:#x} is not mapped memory"
