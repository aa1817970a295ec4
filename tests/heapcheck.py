"""glibc heap checking for the processes tests start, and a probe of one runner's timed call.

What works on glibc 2.36 (Debian 12), measured on the ONNX Runtime timed call of bb51fc7^ that
let its bound output array be freed while ONNX Runtime kept writing into it:

- ``MALLOC_PERTURB_`` (no preload needed): fresh and freed memory is filled with a pattern, so a
  runtime that reads an input freed under it computes on garbage (its output then differs from
  ``infer()``), and one that writes into freed memory overwrites the pattern glibc's own free-list
  checks read, which abort (``free(): corrupted unsorted chunks``) or fault.
- ``MALLOC_CHECK_=3`` and ``GLIBC_TUNABLES=glibc.malloc.check=3`` do nothing since glibc 2.34
  unless ``libc_malloc_debug.so.0`` is preloaded, and with it they *hide* a write into freed
  memory (the debug malloc gives up the thread cache whose checks catch it): a 40-byte and a
  4000-byte write after free both went unnoticed. So they are not used.

A runner's timed call is probed in a process of its own (``python -m tests.heapcheck BUNDLE``):
a crash there is a failed test, not a dead test session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

PERTURB = "165"  # 0xa5 in every byte of fresh and freed memory
HEAP_CHECK_ENV = {"MALLOC_PERTURB_": PERTURB}


def heap_checked_env() -> dict[str, str]:
    """``os.environ`` with heap checking on."""
    return {**os.environ, **HEAP_CHECK_ENV}


def probe(bundle: Path, batches: tuple[int, ...] = (1, 4)) -> subprocess.CompletedProcess[str]:
    """Run :func:`check_timed_call` on ``bundle`` in a heap-checked process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "tests.heapcheck", str(bundle), *map(str, batches)],
        capture_output=True, text=True, env=heap_checked_env(), timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip


def check_timed_call(bundle: Path, batches: tuple[int, ...]) -> None:
    """The timed call's output buffer equals ``infer()`` on the same images, after the caller
    dropped the batch it handed in and Python reused freed memory, as the harness does."""
    from dense_edge.targets import bundle as bundle_io
    from dense_edge.targets.registry import load_runner
    from dense_edge.validate.latency import batch_of

    shape = [int(d) for d in bundle_io.read(bundle)["input_shape"]][-3:]
    sample = np.random.default_rng(0).standard_normal((3, *shape)).astype(np.float32)
    with load_runner(bundle) as runner:
        for b in batches:
            x = batch_of(sample, b)
            expected = runner.infer(x)
            call = runner.timed_call(x.copy())  # the caller keeps no reference to what it bound
            for _ in range(3):
                churn = [np.full_like(x, 7.0) for _ in range(4)]  # reuse what was freed
                churn += [np.full_like(expected, -3.0) for _ in range(4)]
                call.run()
                del churn
            assert call.output is not None, f"{runner.name}: the timed call exposes no output"
            got = np.array(call.output(), copy=True)
            assert got.shape == expected.shape, (got.shape, expected.shape)
            worst = float(np.abs(got - expected).max())
            assert np.allclose(got, expected, rtol=1e-3, atol=1e-3), (
                f"{runner.name} batch {b}: the timed call's output differs from infer() by {worst}"
            )
    print("timed calls match infer()")


if __name__ == "__main__":
    check_timed_call(Path(sys.argv[1]), tuple(int(b) for b in sys.argv[2:]) or (1, 4))
