"""Calibration sets: the shipped digits set, folders, manifests; bad input is named."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from dense_edge.calibrate.dataset import load_calibration_set
from dense_edge.data import preprocess_for
from dense_edge.errors import DataError
from tests.conftest import REPO, digits_recipe

SHIPPED = REPO / "calibration" / "digits"


def _load(**over):
    recipe = digits_recipe(**over)
    return load_calibration_set(recipe, preprocess_for(recipe))


def test_shipped_digits_set_is_what_source_data_draws():
    from_files = _load(**{"calibration.source": str(SHIPPED / "manifest.json")})
    from_data = _load()
    assert len(from_files) == len(from_data) == 300
    # Same images (the file set is sorted by class folder; compare as sets of rows).
    a = {x.tobytes() for x in from_files.images}
    b = {x.tobytes() for x in from_data.images}
    assert a == b


def test_shipped_digits_set_is_disjoint_from_the_test_split():
    from dense_edge.data import load_splits

    recipe = digits_recipe()
    pre = preprocess_for(recipe)
    test = {x.tobytes() for x in load_splits(recipe).test.to_array(pre)}
    files = _load(**{"calibration.source": str(SHIPPED / "manifest.json")})
    # Digits has a few byte-identical images across the data set; the split is by index, so
    # allow only those rare duplicates.
    assert sum(x.tobytes() in test for x in files.images) <= 3
    labels = [e["label"] for e in json.loads((SHIPPED / "manifest.json").read_text())["images"]]
    assert all(29 <= n <= 31 for n in np.bincount(labels))  # stratified: 30 +- rounding


def test_folder_source(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "set")
    (tmp_path / "set" / "manifest.json").unlink()
    cal = _load(**{"calibration.source": str(tmp_path / "set"), "calibration.samples": 50})
    assert cal.images.shape == (50, 1, 8, 8)


def test_checksum_mismatch_is_refused(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "set")
    listed = json.loads((SHIPPED / "manifest.json").read_text())["images"]
    victim = tmp_path / "set" / listed[100]["path"]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(victim)
    with pytest.raises(DataError, match=rf"{victim.name}: checksum does not match"):
        _load(**{"calibration.source": str(tmp_path / "set" / "manifest.json")})


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        _load(**{"calibration.source": str(tmp_path / "empty")})


def _folder_with(tmp_path, bad_name, bad):
    """A folder of good digits plus one bad file; returns (folder, number of files)."""
    folder = tmp_path / "imgs"
    shutil.copytree(SHIPPED / "1", folder)
    bad(folder / bad_name)
    return folder, len(list(folder.iterdir()))


def test_unreadable_image_is_named_or_counted(tmp_path):
    folder, n = _folder_with(tmp_path, "broken.png", lambda p: p.write_bytes(b"not a png"))
    with pytest.raises(DataError, match=r"broken\.png: cannot decode image .*skip_unreadable"):
        _load(**{"calibration.source": str(folder), "calibration.samples": n})
    cal = _load(**{"calibration.source": str(folder), "calibration.samples": n - 1,
                   "calibration.skip_unreadable": True})  # fmt: skip
    assert len(cal) == n - 1 and len(cal.skipped) == 1  # the broken file was replaced
    with pytest.raises(DataError, match=rf"has {n - 1} usable images \(1 skipped\)"):
        _load(**{"calibration.source": str(folder), "calibration.samples": n,
                 "calibration.skip_unreadable": True})  # fmt: skip


def test_wrong_channels_and_size(tmp_path):
    rgb, n = _folder_with(
        tmp_path, "rgb.png", lambda p: Image.new("RGB", (8, 8), (9, 9, 9)).save(p)
    )
    with pytest.raises(DataError, match=r"rgb\.png: image is RGB \(colour\), the model takes grey"):
        _load(**{"calibration.source": str(rgb), "calibration.samples": n})
    big = tmp_path / "big"
    shutil.copytree(SHIPPED / "2", big)
    Image.new("L", (32, 32)).save(big / "big.png")
    n = len(list(big.iterdir()))
    with pytest.raises(DataError, match=r"big\.png: image is 32x32, the model takes 8x8"):
        _load(**{"calibration.source": str(big), "calibration.samples": n})


def test_fewer_samples_than_asked(tmp_path):
    folder = tmp_path / "few"
    shutil.copytree(SHIPPED / "4", folder)
    n = len(list(folder.iterdir()))
    with pytest.raises(DataError, match=f"has {n} usable images, calibration.samples asks for 300"):
        _load(**{"calibration.source": str(folder)})
    with pytest.raises(DataError, match="asks for 5000"):
        _load(**{"calibration.samples": 5000})
