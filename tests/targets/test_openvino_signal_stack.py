"""OpenVINO must not leave the process's alternate signal stack pointing at freed memory.

Each OpenVINO CPU plugin (one per ``ov.Core``, alive as long as a model compiled with it) swaps
the calling thread's alternate signal stack and puts back the one it found when it goes. Two
runners closed in the order they were opened used to leave the main thread's stack unmapped;
the next signal with a Python handler then killed the process with SIGSEGV and no traceback
(the test suite died that way three times, always after a training whose DataLoader installed a
SIGCHLD handler). The case runs in a process of its own, so a regression fails this test instead
of killing the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

CASE = """
import os, signal, subprocess, sys
from dense_edge.targets.openvino.runner import OpenVinoRunner
from tests.sigstack import dangling_alt_stack

model = sys.argv[1]
first, second = OpenVinoRunner(model), OpenVinoRunner(model)
first.activate()
second.activate()
first.deactivate()  # closed in the order they were opened
second.deactivate()
print("after close:", dangling_alt_stack() or "mapped", flush=True)
signal.signal(signal.SIGCHLD, lambda *_: None)  # as torch's DataLoader does
for _ in range(10):
    subprocess.run(["true"], check=True)
for _ in range(3):
    os.kill(os.getpid(), signal.SIGCHLD)
print("signals delivered", flush=True)
"""


def test_runners_closed_in_any_order_leave_signals_deliverable(digits_exported: Path):
    model = digits_exported / "onnx" / "model.onnx"
    out = subprocess.run([sys.executable, "-c", CASE, str(model)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr[-2000:])
    assert out.stdout.splitlines() == ["after close: mapped", "signals delivered"], out.stdout
