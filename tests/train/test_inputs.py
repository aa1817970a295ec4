"""The training input pipeline (file sources through a DataLoader) and the training threads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dense_edge.data import imagefolder
from dense_edge.data.imageset import ArrayImageSet
from dense_edge.errors import DataError
from dense_edge.preprocess import Preprocess
from dense_edge.recipe import load_recipe
from dense_edge.rundir import RunDir
from dense_edge.train import threads
from dense_edge.train.inputs import TrainInputs, random_resized_crop
from dense_edge.train.stage import model_fingerprint, train_stage

PRE = Preprocess(input_size=(16, 16), resize=20, crop=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes x 8 RGB pictures of different sizes (so crops and resizes have work to do)."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for c in range(3):
        (root / f"c{c}").mkdir()
        for k in range(8):
            h, w = 20 + 3 * k, 24 + 2 * c
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                root / f"c{c}" / f"{k}.png"
            )
    return root


def _train_set(folder: Path):  # type: ignore[no-untyped-def]
    return imagefolder.load(folder, PRE, 0.0, 0.0, 0, False).train


def _epoch(inputs: TrainInputs, epoch: int, batch: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    order = np.random.default_rng([0, epoch]).permutation(len(inputs.labels))
    batches = [order[s : s + batch] for s in range(0, len(order), batch)]
    return [(x.numpy(), y.numpy()) for x, y in inputs.epoch(epoch, batches)]


def _same(a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(xa, xb) and np.array_equal(ya, yb)
        for (xa, ya), (xb, yb) in zip(a, b, strict=False)
    )


def test_same_seed_same_batches_with_0_and_2_workers(folder):
    images = _train_set(folder)

    def run(workers: int, seed: int = 0) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        inputs = TrainInputs(images, PRE, workers=workers, random_crop=True, hflip=True, seed=seed)
        return [_epoch(inputs, e) for e in (0, 1)]

    one, two = run(0), run(2)
    assert _same(one[0], two[0]) and _same(one[1], two[1])
    assert not _same(one[0], run(0, seed=1)[0])  # the seed matters
    # a new epoch draws new crops, not the same ones in a new order
    by_image: list[dict[int, np.ndarray]] = []
    for e in (0, 1):
        order = np.random.default_rng([0, e]).permutation(len(images))
        flat = np.concatenate([x for x, _ in one[e]])
        by_image.append({int(i): flat[k] for k, i in enumerate(order)})
    assert any(not np.array_equal(by_image[0][i], by_image[1][i]) for i in range(len(images)))


def test_workers_yield_the_one_process_images_without_augmentation(folder):
    images = _train_set(folder)
    got = _epoch(TrainInputs(images, PRE, workers=2), 0)
    order = np.random.default_rng([0, 0]).permutation(len(images))
    want = [
        (images.preprocessed(PRE, order[s : s + 5]), images.labels[order[s : s + 5]])
        for s in range(0, len(order), 5)
    ]
    assert _same(got, want)


def test_random_resized_crop_shape_and_range(folder):
    images = _train_set(folder)
    inputs = TrainInputs(images, PRE, workers=0, random_crop=True, hflip=True)
    lo = (0 - np.array(PRE.mean)) / np.array(PRE.std)
    hi = (1 - np.array(PRE.mean)) / np.array(PRE.std)
    for x, y in _epoch(inputs, 0):
        assert x.shape[1:] == (3, 16, 16) and x.dtype == np.float32
        assert y.dtype == np.int64
        for c in range(3):
            assert lo[c] - 1e-5 <= x[:, c].min() and x[:, c].max() <= hi[c] + 1e-5
    rng = np.random.default_rng(0)
    picture = np.zeros((60, 80, 3), np.uint8)
    for _ in range(200):
        h, w = random_resized_crop(picture, rng).shape[:2]
        assert 1 <= h <= 60 and 1 <= w <= 80
        assert 0.08 * 4800 * 0.9 <= h * w <= 4800  # 8-100% of the area (rounding aside)
        assert 3 / 4 * 0.85 <= w / h <= 4 / 3 * 1.15


def test_array_sources_stay_in_memory():
    images = ArrayImageSet(np.zeros((6, 8, 8), np.uint8), np.arange(6) % 2)
    pre = Preprocess(input_size=(8, 8), color="L", mean=(0.5,), std=(0.5,))
    inputs = TrainInputs(images, pre, workers=2)
    assert inputs.in_memory and inputs.workers == 0
    assert inputs.describe()["path"] == "in memory"
    assert not TrainInputs(images, pre, workers=2, random_crop=True).in_memory


def test_an_unreadable_file_in_a_worker_is_one_line_naming_it(folder, tmp_path):
    import shutil

    root = tmp_path / "f"
    shutil.copytree(folder, root)
    bad = root / "c1" / "3.png"
    bad.write_bytes(b"not a png")
    inputs = TrainInputs(_train_set(root), PRE, workers=2)
    with pytest.raises(DataError) as err:
        _epoch(inputs, 0)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_thread_counts_follow_cpus_and_load():
    assert threads.choose(None, cpus=2, machine_cpus=2, load=0.0)["intra_op"] == 2
    assert threads.choose(None, cpus=2, machine_cpus=2, load=1.2)["intra_op"] == 1
    assert threads.choose(None, cpus=2, machine_cpus=2, load=8.0)["intra_op"] == 1
    assert threads.choose(None, cpus=16, machine_cpus=64, load=16.0)["intra_op"] == 12
    assert (
        threads.choose(None, cpus=16, machine_cpus=16, load=0, processes_per_node=4)["intra_op"]
        == 4
    )
    chosen = threads.choose(3, cpus=2, machine_cpus=2, load=8.0)
    assert chosen["intra_op"] == 3 and chosen["chosen_by"] == "train.threads"
    assert 1 <= threads.usable_cpus() <= (__import__("os").cpu_count() or 1)


def test_runtime_keys_leave_the_fingerprint_and_augmentation_enters_it():
    base = model_fingerprint(load_recipe(None))
    assert model_fingerprint(load_recipe(None, {"train.threads": 1, "train.workers": 3})) == base
    crop = load_recipe(None, {"train.augment.random_resized_crop": True})
    assert model_fingerprint(crop) != base


def test_training_an_image_folder_records_threads_and_inputs(tmp_path):
    """densenet-digits on an image folder of real digits, one epoch through 2 workers."""
    from sklearn.datasets import load_digits

    root = tmp_path / "digits"
    d = load_digits()
    for j, (img, y) in enumerate(zip(d.images[:120], d.target[:120], strict=True)):
        (root / str(y)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255 / 16).astype(np.uint8)).save(root / str(y) / f"{j}.png")
    recipe = load_recipe(
        None,
        {
            "data.source": "imagefolder",
            "data.root": str(root),
            "train.epochs": 1,
            "train.workers": 2,
            "train.threads": 1,
        },
    )
    train_stage(recipe, RunDir.at(tmp_path / "run").create())
    record = json.loads((tmp_path / "run" / "model" / "manifest.json").read_text())["training"]
    assert record["threads"]["intra_op"] == 1 == torch.get_num_threads()
    assert record["threads"]["chosen_by"] == "train.threads"
    assert record["inputs"] == {
        "path": "DataLoader",
        "workers": 2,
        "prefetch_batches_per_worker": 2,
        "pin_memory": False,
        "random_resized_crop": False,
    }
