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

import mmap
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

PERTURB = "165"  # 0xa5 in every byte of fresh and freed memory
HEAP_CHECK_ENV = {"MALLOC_PERTURB_": PERTURB}


WIDE_CLASSES = 1000
WIDE_INPUT = 64  # densenet121 at a reduced input size: the classifier is the same as at 224


def make_wide_run(root: Path) -> tuple[Any, Any]:
    """(recipe, run) of a random-weight 1000-class densenet121 at 64x64, exported to ONNX, with
    an image folder it is right about: ``train/`` names the 1000 classes (one small image each),
    ``test/`` holds 8 images of class 0, and the classifier's bias favours class 0. So the
    float reference is sound (validation rightly refuses one at chance) and engines are judged.
    """
    import torch
    from PIL import Image

    from dense_edge.export import export_stage
    from dense_edge.models import create
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir
    from dense_edge.train.stage import train_stage

    rng = np.random.default_rng(0)
    data = root / "data"
    for c in range(WIDE_CLASSES):
        (data / "train" / f"c{c:04d}").mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(data / "train" / f"c{c:04d}" / "a.png")
    (data / "test" / "c0000").mkdir(parents=True)
    for i in range(8):
        pixels = rng.integers(0, 256, (WIDE_INPUT, WIDE_INPUT, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(data / "test" / "c0000" / f"{i}.png")
    torch.manual_seed(0)
    model = create("densenet121", num_classes=WIDE_CLASSES)
    with torch.no_grad():
        model.classifier.bias[0] += 100.0
    weights = root / "densenet121-1000.pth"
    torch.save(model.state_dict(), weights)
    recipe = load_recipe(None, {
        "model.arch": "densenet121", "model.weights": str(weights),
        "model.num_classes": WIDE_CLASSES, "preprocess.input_size": [WIDE_INPUT, WIDE_INPUT],
        "preprocess.resize": WIDE_INPUT, "data.source": "imagefolder", "data.root": str(data),
        "validate.batch_sizes": [1, 4], "validate.iterations": 5, "validate.warmup": 1,
        "validate.rounds": 1,
    })  # fmt: skip
    run = RunDir.at(root / "run").create()
    train_stage(recipe, run)
    export_stage(recipe, run)
    return recipe, run


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
    from dense_edge import bundle as bundle_io
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
            # The caller drops the timed call, as the harness does, then the runner infers again
            # at that batch: OpenVINO's CPU plugin kept pointing at the freed shared input and
            # wrote the next same-shape batch into it (validate's accuracy pass, batch 8 after
            # timing batch 8, died with a segmentation fault).
            # The batch handed in lives in pages of its own, unmapped once the caller is done
            # with it, so a runtime that still writes there faults here instead of corrupting
            # the heap quietly; a runner that keeps the batch alive itself keeps the pages too.
            other = x[::-1].copy()
            wanted = runner.infer(other)
            pages = mmap.mmap(-1, x.nbytes)
            bound = np.frombuffer(pages, dtype=np.float32).reshape(x.shape)
            bound[...] = x
            call = runner.timed_call(bound)
            call.run()
            del call, got, bound
            try:
                pages.close()
            except BufferError:
                pass  # the runner holds the batch: nothing is freed under the runtime
            again = runner.infer(other)
            assert np.allclose(again, wanted, rtol=1e-3, atol=1e-3), (
                f"{runner.name} batch {b}: infer() after a dropped timed call differs"
            )
    print("timed calls match infer()")


if __name__ == "__main__":
    check_timed_call(Path(sys.argv[1]), tuple(int(b) for b in sys.argv[2:]) or (1, 4))
