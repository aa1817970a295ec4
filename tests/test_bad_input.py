"""The bad-input table: every fault a user can fix is one line naming the path and the fix.

Each row builds a real bad input in a temporary folder and runs the command a user would. The
row's ``was`` column is how the reliability trial of issue 13 (and our own run of this table
against the code before the fix) found it: ``good`` (already one clear line), ``weak`` (an
error, but misleading or late) or ``bug`` (a traceback, silent damage, or success).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dense_edge.cli import cli
from dense_edge.errors import UserError
from tests.helpers import copy_run, digit_pngs

SET15 = ["--set", "train.epochs=15"]


@dataclass
class Ctx:
    tmp: Path
    request: pytest.FixtureRequest

    @property
    def run(self) -> Path:
        """A private copy of the session's trained and exported digits run (made on demand)."""
        out = self.tmp / "run"
        if not out.exists():
            copy_run(self.request.getfixturevalue("digits_exported"), out)
        return out

    def engine(self) -> Path:
        from dense_edge.compile.stage import compile_stage
        from dense_edge.rundir import RunDir
        from tests.conftest import digits_recipe

        return compile_stage(digits_recipe(), RunDir.at(self.run), "onnxruntime", "fp32").path

    def recipe(self, text: str) -> str:
        p = self.tmp / "recipe.yaml"
        p.write_text(text)
        return str(p)

    def bomb(self, folder: Path) -> Path:
        """A 16 KB PNG that claims 20000x20000 pixels (over Pillow's bomb limit)."""
        from PIL import Image

        folder.mkdir(parents=True, exist_ok=True)
        p = folder / "bomb.png"
        Image.new("L", (20000, 20000)).save(p, optimize=True)
        return p


def _edit_manifest(engine: Path, edit: Callable[[dict[str, Any]], None], seal: bool) -> Path:
    m = json.loads((engine / "manifest.json").read_text())
    edit(m)
    if not seal:
        m.pop("manifest_sha256", None)  # an older bundle: no seal, the schema must catch it
    (engine / "manifest.json").write_text(json.dumps(m))
    return engine


def _load(path: Path) -> None:
    from dense_edge import runtime

    runtime.load(path).close()


@dataclass
class Case:
    id: str
    was: str  # good / weak / bug, before issue 13
    cli: Callable[[Ctx], list[str]] | None = None
    api: Callable[[Ctx], Any] | None = None
    match: str = ""
    env: str | None = None  # DENSE_EDGE_FAULT


def _shorter(m: dict[str, Any]) -> None:
    m["classes"] = m["classes"][:5]
    m["num_classes"] = 5


def _null_pre(m: dict[str, Any]) -> None:
    m["preprocess"] = None


def _shape(m: dict[str, Any]) -> None:
    m["input_shape"] = [3, 32, 32]


def _train_bomb(c: Ctx, skip: bool) -> Any:
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir
    from dense_edge.train.stage import train_stage

    root = digit_pngs(c.tmp / "imgs", per_class=4)
    c.bomb(root / "3")
    recipe = load_recipe(None, {"data.source": "imagefolder", "data.root": str(root),
                                "train.epochs": 1, "data.skip_corrupt": skip})  # fmt: skip
    return train_stage(recipe, RunDir.at(c.tmp / "out").create())


def _train_odd_size(c: Ctx, skip: bool) -> Any:
    from PIL import Image

    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir
    from dense_edge.train.stage import train_stage

    root = digit_pngs(c.tmp / "imgs", per_class=4)
    Image.new("L", (10, 10)).save(root / "3" / "odd.png")  # the model takes 8x8, no resize
    recipe = load_recipe(None, {"data.source": "imagefolder", "data.root": str(root),
                                "train.epochs": 1, "data.skip_corrupt": skip})  # fmt: skip
    return train_stage(recipe, RunDir.at(c.tmp / "out").create())


CASES = [
    Case("recipe name with ..", "bug",
         cli=lambda c: ["train", "--recipe", c.recipe("name: ../../victim\n")],
         match="name '../../victim' is not a plain name"),
    Case("recipe name absolute", "bug",
         cli=lambda c: ["train", "--recipe", c.recipe("name: /tmp/victim\n")],
         match="is not a plain name"),
    Case("duplicate recipe key", "weak",
         cli=lambda c: ["train", "--recipe", c.recipe("train:\n  epochs: 1\n  epochs: 2\n")],
         match="duplicate key 'epochs'"),
    Case("--set value of the wrong type", "weak",
         cli=lambda c: ["train", "--recipe", c.recipe("seed: 1\n"), "--set", "seed=abc"],
         match="--set seed=abc: seed: expected int"),
    Case("unknown recipe key", "good",
         cli=lambda c: ["train", "--recipe", c.recipe("trian: {}\n")], match="unknown key"),
    Case("recipe not found", "good",
         cli=lambda c: ["train", "--recipe", str(c.tmp / "nope.yaml")], match="recipe not found"),
    Case("--weights is a folder", "bug",
         cli=lambda c: ["train", "--out", str(c.tmp / "o"), "--weights", str(c.tmp)],
         match="is a folder without weights.safetensors"),
    Case("--weights missing", "good",
         cli=lambda c: ["train", "--weights", str(c.tmp / "w.pth")], match="file not found"),
    Case("--weights not a checkpoint", "good",
         cli=lambda c: ["train", "--out", str(c.tmp / "o"), "--weights",
                        c.recipe("not weights")], match="not a PyTorch checkpoint"),
    Case("--out is a file", "good",
         cli=lambda c: ["train", "--out", c.recipe("x")], match="recipe.yaml' is a file"),
    Case("a file where a stage folder belongs", "weak",
         cli=lambda c: [(shutil.rmtree(c.run / "onnx"), (c.run / "onnx").write_text("x"))
                        and "export", "--out", str(c.run), *SET15],
         match="is a file where dense-edge writes a stage folder"),
    Case("a foreign folder where a stage folder belongs", "bug",
         cli=lambda c: [((c.tmp / "r2" / "model").mkdir(parents=True),
                         (c.tmp / "r2" / "model" / "mine.txt").write_text("x"))
                        and "train", "--out", str(c.tmp / "r2"), "--force"],
         match="was not made by dense-edge"),
    Case("changed settings on a finished model", "bug",
         cli=lambda c: ["train", "--out", str(c.run), "--set", "train.epochs=2"],
         match="train.epochs 15 -> 2"),
    Case("disk full while exporting", "bug", env="onnx:built:ENOSPC",
         cli=lambda c: ["export", "--out", str(c.run), "--force", *SET15],
         match="free disk space"),
    Case("permission denied while calibrating", "bug", env="int8/onnxruntime:built:EACCES",
         cli=lambda c: ["calibrate", "--out", str(c.run), "--profile", "onnxruntime",
                        "--source", "data", "--samples", "32", *SET15],
         match="make it writable"),
    Case("read-only disk while compiling", "bug", env="engines/onnxruntime-fp32:built:EROFS",
         cli=lambda c: ["compile", "--out", str(c.run), "--target", "onnxruntime",
                        "--precision", "fp32", *SET15],
         match="read-only"),
    Case("disk full while training", "bug", env="model:checkpoint-1:ENOSPC",
         cli=lambda c: ["train", "--out", str(c.tmp / "t"), "--set", "train.epochs=1",
                        "--set", "data.limit=60"],
         match="checkpoint.pt.*free disk space"),
    Case("disk full while bundling", "bug", env="bundle:written:ENOSPC",
         cli=lambda c: ["bundle", str(c.engine()), "-o", str(c.tmp / "m.bundle")],
         match="free disk space"),
    Case("bundle -o into a missing folder", "bug",
         cli=lambda c: ["bundle", str(c.engine()), "-o", str(c.tmp / "no" / "m.bundle")],
         match="output folder does not exist"),
    Case("bundle -o into an unwritable folder", "bug",
         cli=lambda c: ["bundle", str(c.engine()), "-o", "/sys/m.bundle"],
         match="cannot write /sys/m.bundle.*Permission denied"),
    Case("bundle of a folder that is not an engine", "good",
         cli=lambda c: ["bundle", str(c.tmp), "-o", str(c.tmp / "m.bundle")],
         match="not an engine bundle"),
    Case("engine manifest with shortened classes", "bug",
         api=lambda c: _load(_edit_manifest(c.engine(), _shorter, seal=True)),
         match="manifest.json was edited"),
    Case("engine manifest with preprocess: null", "bug",
         api=lambda c: _load(_edit_manifest(c.engine(), _null_pre, seal=False)),
         match="preprocess must be a mapping"),
    Case("engine manifest with a changed input shape", "bug",
         api=lambda c: _load(_edit_manifest(c.engine(), _shape, seal=True)),
         match="manifest.json was edited"),
    Case("decompression-bomb image in the data", "bug",
         api=lambda c: _train_bomb(c, skip=False), match="bomb.png.*too large to decode"),
    Case("decompression-bomb image with skip_corrupt", "bug",
         api=lambda c: _train_bomb(c, skip=True), match=""),
    Case("image of another size in the training data", "weak",
         api=lambda c: _train_odd_size(c, skip=False), match=r"odd\.png: image is 10x10"),
    Case("image of another size with skip_corrupt", "weak",
         api=lambda c: _train_odd_size(c, skip=True), match=""),
    Case("decompression-bomb calibration image", "bug",
         cli=lambda c: ["calibrate", "--out", str(c.run), "--profile", "onnxruntime",
                        "--source", str(c.bomb(c.tmp / "cal").parent), "--samples", "1",
                        *SET15],
         match="bomb.png.*too large to decode"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line(case, tmp_path, request, monkeypatch):
    ctx = Ctx(tmp_path, request)
    if case.api is not None:
        if not case.match:  # a case that must succeed (skipping), not fail
            result = case.api(ctx)
            assert result is not None
            return
        with pytest.raises(UserError) as info:
            case.api(ctx)
        text = str(info.value)
    else:
        assert case.cli is not None
        args = case.cli(ctx)
        if case.env:
            monkeypatch.setenv("DENSE_EDGE_FAULT", case.env)
        result = CliRunner().invoke(cli, args)
        monkeypatch.delenv("DENSE_EDGE_FAULT", raising=False)
        assert isinstance(result.exception, SystemExit), result.exception  # no traceback
        assert result.exit_code == 2, result.output
        text = result.output.strip()
        if not text.startswith("Usage:"):  # Click's own usage errors end in one "Error:" line
            assert text.startswith("error: ") and "\n" not in text, text
    import re

    assert re.search(case.match, text), text
