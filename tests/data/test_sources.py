"""Data sources: real digits, image folders, CIFAR-10 batches; bad input is named."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from dense_edge.data import load_splits, preprocess_for
from dense_edge.errors import DataError, UserError
from dense_edge.preprocess import Preprocess
from dense_edge.recipe import load_recipe


def _recipe(**over):
    return load_recipe(None, over)


def test_digits_split_is_deterministic_disjoint_and_stratified():
    a = load_splits(_recipe())
    b = load_splits(_recipe(seed=5))  # the training seed does not move the split
    assert (len(a.train), len(a.val), len(a.test)) == (1259, 179, 359)
    assert np.array_equal(a.test.labels, b.test.labels)
    assert np.array_equal(a.test.images, b.test.images)
    assert sorted(np.bincount(a.test.labels)) == sorted(np.bincount(b.test.labels))
    assert a.classes == [str(i) for i in range(10)]


def test_stratified_split_parts_are_disjoint_and_cover_everything():
    from dense_edge.data.imageset import stratified_split

    labels = np.repeat(np.arange(10), 37)
    parts = stratified_split(labels, [0.1, 0.2], seed=3)
    joined = np.concatenate(parts)
    assert len(joined) == len(labels) == len(np.unique(joined))
    assert all(len(np.unique(labels[p])) == 10 for p in parts)


def test_digits_preprocess_matches_the_manifest_definition():
    recipe = _recipe()
    pre = preprocess_for(recipe)
    assert pre.input_shape == [1, 8, 8]
    x = load_splits(recipe).test.to_array(pre)
    assert x.shape[1:] == (1, 8, 8) and x.dtype == np.float32
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2


def _folder(root, classes=("cat", "dog"), n=6, size=(10, 12), mode="RGB"):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            arr = np.full((*size, 3), 40 * i, np.uint8)
            Image.fromarray(arr).convert(mode).save(root / c / f"{i}.png")
    return root


def _folder_recipe(root, **over):
    return _recipe(
        **{"data.source": "imagefolder", "data.root": str(root), "model.arch": "densenet-bc-100-12",
           "data.val_fraction": 0.2, "data.test_fraction": 0.2, **over}
    )  # fmt: skip


def test_imagefolder_reads_classes_and_preprocesses_to_model_size(tmp_path):
    root = _folder(tmp_path / "imgs", mode="L")  # grey files are converted to the model's RGB
    recipe = _folder_recipe(root, **{"preprocess.resize": [32, 32]})
    splits = load_splits(recipe)
    assert splits.classes == ["cat", "dog"]
    assert len(splits.train) + len(splits.val) + len(splits.test) == 12
    x = splits.train.to_array(preprocess_for(recipe))
    assert x.shape[1:] == (3, 32, 32)


def test_images_of_another_size_are_refused_unless_a_resize_is_declared(tmp_path):
    root = _folder(tmp_path / "imgs")  # 10x12 images, the model takes 32x32
    recipe = _folder_recipe(root)
    splits = load_splits(recipe)
    with pytest.raises(DataError) as err:
        splits.train.to_array(preprocess_for(recipe))
    message = str(err.value)
    assert ".png: image is 10x12, the model takes 32x32" in message and "\n" not in message
    assert "preprocess.resize" in message


def test_colour_images_for_a_grey_model_are_refused_unless_a_resize_is_declared(tmp_path):
    root = _folder(tmp_path / "imgs", size=(8, 8))  # RGB files
    over = {"model.arch": "densenet-digits"}
    recipe = _folder_recipe(root, **over)
    with pytest.raises(DataError, match=r"\.png: image is RGB \(colour\), the model takes grey"):
        load_splits(recipe).train.to_array(preprocess_for(recipe))
    declared = _folder_recipe(root, **over, **{"preprocess.resize": [8, 8]})
    x = load_splits(declared).train.to_array(preprocess_for(declared))
    assert x.shape[1:] == (1, 8, 8)


def test_imagefolder_with_train_val_folders(tmp_path):
    _folder(tmp_path / "d" / "train")
    _folder(tmp_path / "d" / "val", n=2)
    splits = load_splits(_folder_recipe(tmp_path / "d"))
    assert (len(splits.train), len(splits.val)) == (12, 4)
    # no test/ folder: "test" is val/, and the splits say it is not held out
    assert splits.test_is_val and "no test/ folder" in splits.origins["test"]
    _folder(tmp_path / "d" / "test", n=1)
    held = load_splits(_folder_recipe(tmp_path / "d"))
    assert not held.test_is_val and len(held.test) == 2


def test_imagefolder_bad_input(tmp_path):
    with pytest.raises(UserError, match=r"data.root: file not found"):
        load_splits(_folder_recipe(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_splits(_folder_recipe(tmp_path / "empty"))
    root = _folder(tmp_path / "one")
    (root / "bird").mkdir()
    with pytest.raises(DataError, match=r"bird: class folder holds no images"):
        load_splits(_folder_recipe(root))


def test_corrupt_image_is_named_or_counted(tmp_path):
    root = _folder(tmp_path / "c", size=(32, 32))  # the model's size: only broken.png is bad
    bad = root / "cat" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    recipe = _folder_recipe(root)
    splits = load_splits(recipe)
    pre = preprocess_for(recipe)
    everything = [splits.train, splits.val, splits.test]
    with pytest.raises(DataError, match=r"broken\.png: cannot decode image"):
        for s in everything:
            s.to_array(pre)
    skipping = load_splits(_folder_recipe(root, **{"data.skip_corrupt": True}))
    assert skipping.summary()["skipped"] == 1
    assert skipping.skipped[0][0].endswith("broken.png")


def test_an_image_of_another_size_is_named_or_counted(tmp_path):
    from PIL import Image

    root = _folder(tmp_path / "s", size=(8, 8), mode="L")
    odd = root / "cat" / "big.png"
    Image.fromarray(np.zeros((10, 10), np.uint8), "L").save(odd)  # the model takes 8x8
    digits_arch = {"model.arch": _recipe().model.arch}  # 8x8 grey, no resize declared
    recipe = _folder_recipe(root, **digits_arch)
    pre = preprocess_for(recipe)
    assert pre.resize is None and pre.input_size == (8, 8)
    splits = load_splits(recipe)
    with pytest.raises(DataError, match=r"big\.png: image is 10x10, the model takes 8x8"):
        for s in (splits.train, splits.val, splits.test):
            s.to_array(pre)
    skipping = load_splits(_folder_recipe(root, **digits_arch, **{"data.skip_corrupt": True}))
    assert skipping.summary()["skipped"] == 1
    assert skipping.skipped[0][0].endswith("big.png") and "10x10" in skipping.skipped[0][1]
    total = sum(len(skipping.split(n)) for n in ("train", "val", "test"))
    assert total == sum(len(splits.split(n)) for n in ("train", "val", "test")) - 1
    for name in ("train", "val", "test"):
        skipping.split(name).to_array(pre)  # every image left is one the model takes


def test_wrong_channel_count_in_arrays():
    pre = Preprocess(input_size=(8, 8), color="L", mean=(0.5,), std=(0.5,))
    with pytest.raises(DataError, match="has 3 channels, the model takes 1"):
        pre(np.zeros((8, 8, 3), np.uint8))


def _cifar(root, labels_fn=lambda n: np.arange(n) % 10):
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = 20
        batch = {b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in labels_fn(n)]}  # fmt: skip
        with open(root / name, "wb") as fh:
            pickle.dump(batch, fh)
    return root


def _cifar_recipe(root):
    return _recipe(**{"data.source": "cifar10", "data.root": str(root),
                      "model.arch": "densenet-bc-100-12"})  # fmt: skip


def test_cifar10_batches(tmp_path):
    splits = load_splits(_cifar_recipe(_cifar(tmp_path / "cifar-10-batches-py")))
    assert len(splits.test) == 20 and len(splits.train) + len(splits.val) == 100
    assert splits.classes[0] == "airplane"
    assert splits.train.image(0).shape == (32, 32, 3)


def test_cifar10_labels_out_of_range(tmp_path):
    root = _cifar(tmp_path / "c", labels_fn=lambda n: np.arange(n) % 12)
    with pytest.raises(DataError, match="label 11 is out of range for 10 classes"):
        load_splits(_cifar_recipe(root))


def test_cifar10_refuses_code_in_pickles(tmp_path):
    root = _cifar(tmp_path / "c")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(root / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": Evil()}, fh)
    with pytest.raises(DataError, match=r"refusing to load builtins.print"):
        load_splits(_cifar_recipe(root))


def test_missing_root_is_explained():
    with pytest.raises(DataError, match="--data-root"):
        load_splits(_recipe(**{"data.source": "cifar10"}))
