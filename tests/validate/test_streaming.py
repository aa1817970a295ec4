"""Streaming evaluation: the split decoded once into the run's cache, read back in batches, and
the float model's logits computed once (validate/split_cache.py, data/stream.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dense_edge.compile.stage import compile_stage
from dense_edge.data import preprocess_for
from dense_edge.data.evaluation import evaluation_set
from dense_edge.data.imageset import FileImageSet
from dense_edge.data.stream import batches
from dense_edge.recipe import load_recipe
from dense_edge.rundir import RunDir
from dense_edge.validate import split_cache
from dense_edge.validate.stage import validate_stage
from tests.conftest import VALIDATE_FAST, digits_recipe

FAST = {**VALIDATE_FAST, "validate.rounds": 1,
        "targets": [{"name": "onnxruntime", "precisions": ["fp32"]}]}  # fmt: skip


@pytest.fixture(scope="module")
def random_digits(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(recipe, run) of a random-weight digits DenseNet, imported and exported: no training.
    At chance, its reference is unsound until a test makes its cached logits say otherwise."""
    import torch

    from dense_edge.export import export_stage
    from dense_edge.models import create
    from dense_edge.train.stage import train_stage

    root = tmp_path_factory.mktemp("random-digits")
    torch.manual_seed(0)
    weights = root / "digits.pth"
    torch.save(create("densenet-digits", num_classes=10).state_dict(), weights)
    recipe = digits_recipe(**FAST, **{"model.weights": str(weights)})
    run = RunDir.at(root / "run").create()
    train_stage(recipe, run)
    export_stage(recipe, run)
    return recipe, run


def _logits_files(run: RunDir) -> list[Path]:
    return sorted((run.root / split_cache.CACHE).glob("*/logits-*.npy"))


def test_a_second_validate_does_not_run_the_float_model_again(random_digits):
    recipe, run_copy = random_digits
    compile_stage(recipe, run_copy, "onnxruntime", "fp32")
    first = validate_stage(recipe, run_copy)
    cached = _logits_files(run_copy)
    assert len(cached) == 1 and "pytorch-fp32" in cached[0].name
    assert first["reference_check"]["status"] == "unsound"  # random weights: at chance
    # Make the cached logits say something the float model never would: always right. If the
    # second validate ran the float model over the split, its top-1 would be the real one.
    labels = np.load(cached[0].parent / split_cache.LABELS)
    np.save(cached[0], np.eye(10, dtype=np.float32)[labels] * 10)
    second = validate_stage(recipe, run_copy)
    assert second["reference_check"]["top1_fraction"] == 1.0
    ref2 = next(e for e in second["engines"] if e["is_reference"])
    assert ref2["latency"]  # its latency is still measured, beside the engines', in this run
    assert any(e["name"] == "onnxruntime-fp32" for e in second["engines"])
    assert first["evaluation"] == second["evaluation"]
    # nothing of either command is left in the run but the cache itself
    left = sorted(p.name for p in (run_copy.root / split_cache.CACHE).iterdir())
    assert len(left) == 1 and not left[0].startswith(split_cache.WORK)


def test_the_cached_split_is_the_preprocessed_split_and_a_limit_keeps_its_sample(tmp_path):
    run_copy = RunDir.at(tmp_path / "run").create()
    recipe = digits_recipe(**{"validate.limit": 50})
    pre = preprocess_for(recipe)
    ev = evaluation_set(recipe, pre, limit=50)
    cache = split_cache.prepare(run_copy, ev)
    full = evaluation_set(recipe, pre)
    assert np.array_equal(np.load(cache.images), ev.images)
    assert np.array_equal(cache.labels(), ev.labels)
    assert split_cache.prepare(run_copy, ev).folder == cache.folder  # written once, reused
    assert split_cache.prepare(run_copy, full).folder != cache.folder  # another listing
    got = np.concatenate(list(split_cache.read_batches(cache.images, 16)))
    assert np.array_equal(got, ev.images)


def test_decoding_workers_give_the_batches_in_order(tmp_path: Path):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(23):
        p = tmp_path / f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    images = FileImageSet(paths, [0] * len(paths), "RGB")
    recipe = load_recipe(None, {"model.arch": "densenet-40-12", "preprocess.input_size": [8, 8],
                                "preprocess.resize": 8})  # fmt: skip
    pre = preprocess_for(recipe)
    one = np.concatenate([b for _, b in batches(images, pre, 5, workers=0)])
    two = list(batches(images, pre, 5, workers=2, ahead=2))
    assert [s for s, _ in two] == [0, 5, 10, 15, 20]
    assert np.array_equal(np.concatenate([b for _, b in two]), one)


def test_a_killed_validate_leaves_nothing_the_next_one_does_not_tidy(tmp_path: Path):
    run_copy = RunDir.at(tmp_path / "run").create()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = run_copy.root / split_cache.CACHE
    (root / f"{split_cache.WORK}{dead.pid}").mkdir(parents=True)
    (root / "abc").mkdir()
    partial = root / "abc" / f"{split_cache.IMAGES}{split_cache.PARTIAL}{dead.pid}"
    partial.write_bytes(b"half")
    split_cache.tidy(run_copy)
    assert not (root / f"{split_cache.WORK}{dead.pid}").exists() and not partial.exists()


def test_the_model_worker_reads_the_split_a_batch_at_a_time(tmp_path, random_digits, monkeypatch):
    """The worker never holds the split: it reads the cached file ``eval_batch`` rows at a time
    and appends each batch's logits to its logits file as they come (it never holds all of
    them either), and those logits equal ``infer()`` on the whole split. (What that costs in
    resident memory is measured by bench/scale.py, 1,000 to 20,000 images at 224x224.)"""
    from dense_edge.targets.pytorch.runner import PyTorchRunner
    from dense_edge.validate import worker

    n, batch = 20_000, 2_000
    images = tmp_path / "images.npy"
    split = np.random.default_rng(0).standard_normal((n, 1, 8, 8), np.float32)
    np.save(images, split)
    reads: list[int] = []
    real_read_rows = split_cache.read_rows

    def counted(path, start, stop):  # type: ignore[no-untyped-def]
        rows = real_read_rows(path, start, stop)
        reads.append(len(rows))
        return rows

    monkeypatch.setattr(split_cache, "read_rows", counted)
    with PyTorchRunner(random_digits[1].model) as runner:
        worker._write_logits(runner, images, {"eval_batch": batch}, tmp_path / "logits.npy")
        whole = runner.infer(split)
    logits = np.load(tmp_path / "logits.npy")
    assert max(reads) == batch and sum(reads) == n and len(reads) == n // batch
    np.testing.assert_allclose(logits, whole, rtol=1e-5, atol=1e-5)
