"""A reused run decodes no image: `dense-edge run` again on an unchanged image-folder run opens
none, and a changed calibration image (the 20th drawn) is noticed without decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dense_edge.cli import cli
from tests.conftest import write_recipe
from tests.helpers import digit_pngs


class DecodeCounter:
    """Counts every image decode: dense-edge's decode_image wherever it is bound, and PIL's
    Image.open beneath it (anything that reads pixels goes through one of them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        from PIL import Image

        from dense_edge import preprocess as leaf
        from dense_edge.calibrate import dataset

        self.decoded: list[str] = []
        self.opened: list[str] = []
        real_decode, real_open = leaf.decode_image, Image.open

        def decode(path, *a, **k):  # type: ignore[no-untyped-def]
            self.decoded.append(str(path))
            return real_decode(path, *a, **k)

        def open_(fp, *a, **k):  # type: ignore[no-untyped-def]
            self.opened.append(str(fp))
            return real_open(fp, *a, **k)

        monkeypatch.setattr(leaf, "decode_image", decode)
        monkeypatch.setattr(dataset, "decode_image", decode)
        monkeypatch.setattr(Image, "open", open_)

    def clear(self) -> None:
        self.decoded.clear()
        self.opened.clear()

    @property
    def total(self) -> int:
        return len(self.decoded) + len(self.opened)


def _recipe(tmp_path: Path, calibration_source: str) -> Path:
    data = digit_pngs(tmp_path / "digits", per_class=8)
    return write_recipe(
        tmp_path / "r.yaml",
        f"""name: reuse
data: {{source: imagefolder, root: {data}}}
train: {{epochs: 1}}
export: {{parity: {{samples: 8}}}}
calibration: {{source: {calibration_source}, samples: 24}}
targets:
  - {{name: onnxruntime, precisions: [fp32, int8]}}
validate: {{batch_sizes: [1], iterations: 8, warmup: 1, rounds: 1, time_budget_s: 1.0,
            budgets: {{max_top1_drop: 100.0, min_agreement: 0.01}}}}
""",
    )


def _run(recipe: Path, run: Path) -> str:
    result = CliRunner().invoke(cli, ["run", "--recipe", str(recipe), "--out", str(run)])
    assert result.exit_code in (0, 1), result.output  # 1: a verdict, not a crash
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output


def _invert(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        pixels = np.asarray(im)
    Image.fromarray(255 - pixels).save(path)  # new content


@pytest.mark.parametrize("source", ["data", "folder"])
def test_a_repeated_run_decodes_nothing_and_a_changed_20th_image_recalibrates(
    tmp_path, monkeypatch, source
):
    from dense_edge.calibrate.dataset import calibration_identity
    from dense_edge.recipe import load_recipe

    calib = digit_pngs(tmp_path / "calib", per_class=3)
    recipe = _recipe(tmp_path, "data" if source == "data" else str(calib))
    run = tmp_path / "run"
    _run(recipe, run)
    calibration = run / "int8" / "onnxruntime" / "calibration.json"
    first = calibration.read_text()

    counter = DecodeCounter(monkeypatch)
    from dense_edge.compile.stage import compile_stage
    from dense_edge.rundir import RunDir

    # every int8 compile goes through the calibrate stage: both decide reuse without pixels
    assert compile_stage(load_recipe(recipe), RunDir.at(run), "onnxruntime", "int8").reused
    assert counter.total == 0, (counter.decoded[:3], counter.opened[:3])
    assert calibration.read_text() == first  # reused, not redone

    # the 20th image calibration uses, changed in place (same size): the calibration is stale
    loaded = load_recipe(recipe)
    if source == "data":
        from dense_edge.calibrate.dataset import _drawn_file_digests

        drawn = _drawn_file_digests(loaded)
        assert drawn is not None and len(drawn) == 24
        victim = Path(drawn[19][0])
    else:
        victim = sorted(calib.rglob("*.png"))[19]
    before = calibration_identity(loaded)
    _invert(victim)
    counter.clear()
    assert calibration_identity(loaded) != before
    assert counter.total == 0  # noticed from the file's sha256, not its pixels
    out = CliRunner().invoke(
        cli, ["calibrate", "--recipe", str(recipe), "--out", str(run), "--profile", "onnxruntime"]
    )
    # a training image changed the model's inputs too (its listing): that stage speaks first
    stale = "other inputs: images" if source == "folder" else "model was made from other inputs"
    assert out.exit_code != 0 and stale in out.output, out.output


def test_a_repeated_dense_edge_run_decodes_only_what_validation_measures(tmp_path, monkeypatch):
    """Every stage is reused without decoding. Validation is a measurement, not a cached stage, but
    its preprocessed split and the float logits are cached in the run folder, keyed by the
    listing: a repeated run measures again without opening one image."""
    import json

    recipe = _recipe(tmp_path, "data")
    run = tmp_path / "run"
    _run(recipe, run)
    cache = run / "eval-cache"
    cached = {p: p.stat().st_mtime_ns for p in cache.rglob("*.npy")}
    assert any(p.name == "images.npy" for p in cached), sorted(cached)
    counter = DecodeCounter(monkeypatch)
    _run(recipe, run)
    # the preprocessed split was read, not written again (decoding runs in worker processes,
    # which the counter cannot see: the cache's files tell)
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.npy")} == cached
    report = json.loads((run / "report" / "report.json").read_text())
    samples = report["evaluation"]["samples"]
    assert samples > 0
    assert counter.total == 0 and not counter.opened, counter.opened[:3]
