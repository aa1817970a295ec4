"""The bad-input table: every fault a user can fix is one line naming the path and the fix.

Each row builds a real bad input in a temporary folder and runs the command a user would. The
row's ``was`` column is how the reliability trials of issues 13 and 23 (and our own run of this
table against the code before the fix) found it: ``good`` (already one clear line), ``weak`` (an
error, but misleading or late) or ``bug`` (a traceback, silent damage, a hang, or success).
``kind`` is the issue-23 class the row belongs to (``test_every_class_is_covered`` counts them).
Every row runs in an empty working folder that must stay empty, with the temporary and cache
folders redirected into the test's own: nothing is written outside the run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
from collections.abc import Callable, Iterator
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
    was: str  # good / weak / bug, before issue 13 (or 23, for the rows of those classes)
    cli: Callable[[Ctx], list[str]] | None = None
    api: Callable[[Ctx], Any] | None = None
    match: str = ""
    env: str | None = None  # DENSE_EDGE_FAULT
    kind: str = "input"  # issue 23's classes: silent, unbounded, traceback, trust, first-hour
    expect: Callable[[Any], bool] | None = None  # for a row that must succeed: its result is right
    # A real full disk for the command: no file it writes may pass this many bytes (the soft
    # RLIMIT_FSIZE; Python ignores SIGXFSZ, so the kernel fails the write with EFBIG inside
    # the runtime's own code, as a full disk fails it with ENOSPC).
    fsize: int | None = None


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

    root = digit_pngs(c.tmp / "imgs", per_class=10)
    c.bomb(root / "3")
    recipe = load_recipe(None, {"data.source": "imagefolder", "data.root": str(root),
                                "train.epochs": 1, "data.skip_corrupt": skip})  # fmt: skip
    return train_stage(recipe, RunDir.at(c.tmp / "out").create())


def _train_odd_size(c: Ctx, skip: bool) -> Any:
    from PIL import Image

    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir
    from dense_edge.train.stage import train_stage

    root = digit_pngs(c.tmp / "imgs", per_class=10)
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


# -- issue 23: images, bundles, numbers in recipes, weights ---------------------------------


def _grey8(**over: Any) -> Any:
    from dense_edge.preprocess import Preprocess

    return Preprocess(input_size=(8, 8), color="L", crop=False, mean=(0.5,), std=(0.25,), **over)


def _png16(c: Ctx) -> Any:
    """A 16-bit grey PNG at mid-grey (32768): 128 in 8 bits, not 255."""
    import numpy as np
    from PIL import Image

    p = c.tmp / "wide.png"
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(p)
    assert Image.open(p).mode.startswith("I")
    return _grey8().load_image(p)


def _palette(c: Ctx, colour: bool) -> Any:
    from PIL import Image

    im = Image.new("P", (8, 8))
    im.putpalette([200, 10, 10] * 256 if colour else [90, 90, 90] * 256)
    im.save(c.tmp / "pal.png")
    return _grey8().load_image(c.tmp / "pal.png")


def _rotated_photo(c: Ctx) -> Any:
    """An 8x8 picture stored rotated, with EXIF orientation 6 ('rotate 90 to view')."""
    import numpy as np
    from PIL import Image

    stored = np.zeros((8, 8), dtype=np.uint8)
    stored[0, :] = 255  # a bright top row as stored
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(c.tmp / "photo.jpg", exif=exif, quality=100)
    return _grey8().load_image(c.tmp / "photo.jpg")[:, :, 0]


def _model(c: Ctx) -> Any:
    from dense_edge import runtime

    return runtime.load(c.engine())


def _predict(c: Ctx, item: Any, close: bool = False) -> Any:
    m = _model(c)
    if close:
        m.close()
        return m.predict(item)
    with m:
        return m.predict(item)


def _folders(c: Ctx, names: list[str], per_class: int = 4) -> Path:
    root = digit_pngs(c.tmp / "src", per_class=per_class, classes=len(names))
    out = c.tmp / "imgs"
    out.mkdir()
    for i, name in enumerate(names):
        (root / str(i)).rename(out / name)
    return out


def _imagefolder(c: Ctx, root: Path, *more: str) -> list[str]:
    return ["train", "--out", str(c.tmp / "o"), "--set", "data.source=imagefolder",
            "--data-root", str(root), "--set", "train.epochs=1", *more]  # fmt: skip


def _cyclic_onnx(c: Ctx) -> str:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second"),
             helper.make_node("Identity", ["a"], ["y"], name="out")]  # fmt: skip
    model = helper.make_model(helper.make_graph(nodes, "loop", [x], [y]))
    path = c.tmp / "cyclic.onnx"
    onnx.save(model, str(path))
    return str(path)


class _Zeros:
    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def _bundle_bomb(c: Ctx) -> Path:
    """A ~100 KB .bundle whose index and manifest list a 96 MiB file of zeros."""
    import hashlib
    import io
    import tarfile

    size = 96 << 20
    h = hashlib.sha256()
    z = _Zeros(size)
    while block := z.read(1 << 20):
        h.update(block)
    entry = {"bytes": size, "sha256": h.hexdigest()}
    manifest = json.dumps({"kind": "engine", "files": {"big.bin": entry}}).encode()
    files = {
        "manifest.json": {"bytes": len(manifest), "sha256": hashlib.sha256(manifest).hexdigest()},
        "big.bin": entry,
    }
    index = json.dumps({"format": "dense-edge/bundle", "format_version": 1,
                        "files": files}).encode()  # fmt: skip
    out = c.tmp / "bomb.bundle"
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        for name, data, n in [("bundle.json", io.BytesIO(index), len(index)),
                              ("big.bin", _Zeros(size), size),
                              ("manifest.json", io.BytesIO(manifest), len(manifest))]:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = n
            tar.addfile(info, data)  # type: ignore[arg-type]
    assert out.stat().st_size < 1 << 20
    return out


def _bundle(c: Ctx, extra: dict[str, bytes] | None = None) -> Path:
    """A real .bundle of the digits engine, with ``extra`` members added to its index only."""
    import hashlib
    import io
    import tarfile

    from dense_edge.runtime.archive import pack

    out = pack(c.engine(), c.tmp / "m.bundle")
    if not extra:
        return out
    with tarfile.open(out) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    index = json.loads(members["bundle.json"])
    for name, data in extra.items():
        members[name] = data
        index["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    members["bundle.json"] = json.dumps(index).encode()
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _unlisted_member_dropped(c: Ctx) -> list[str]:
    from dense_edge import runtime

    with runtime.load(_bundle(c, {"extra.bin": b"not in the engine manifest"})) as m:
        return sorted(p.name for p in m.source.iterdir())


def _engine_with_link(c: Ctx, special: str) -> Path:
    import os

    engine = c.engine()
    assert "model.onnx" in json.loads((engine / "manifest.json").read_text())["files"]
    target = engine / "model.onnx"
    target.unlink()
    if special == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    return engine


def _squatted_cache(c: Ctx) -> list[str]:
    """The bundle's cache slot already holds another valid engine (other class names)."""
    import hashlib
    import os
    import shutil

    from dense_edge import runtime
    from dense_edge.bundle import seal

    archive = _bundle(c)
    slot = Path(os.environ["DENSE_EDGE_CACHE"]) / "bundles"
    slot = slot / f"m-{hashlib.sha256(archive.read_bytes()).hexdigest()[:16]}"
    shutil.copytree(c.engine(), slot)
    m = json.loads((slot / "manifest.json").read_text())
    m["classes"] = [f"other{i}" for i in range(len(m["classes"]))]
    (slot / "manifest.json").write_text(json.dumps(seal(m)))
    runtime.load(slot).close()  # a valid engine: it would be served
    with runtime.load(archive) as model:
        return model.classes


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _leftovers_removed(c: Ctx) -> list[str]:
    """A validate and a bundle extraction were killed (SIGKILL): their marked temporary folders
    stay; the next command removes them, and nothing else."""
    import os
    import tempfile

    tmp = Path(tempfile.gettempdir())
    dead = _dead_pid()
    left = tmp / f".dense-edge-tmp-validate-{dead}-x1"
    (left / "images.npy").parent.mkdir()
    (left / "images.npy").write_bytes(b"x" * 1000)
    alive = tmp / f".dense-edge-tmp-validate-{os.getpid()}-x2"  # a running command's
    alive.mkdir()
    mine = tmp / "dense-edge-notes"  # not ours by name: never touched
    mine.mkdir()
    result = CliRunner().invoke(cli, ["recipe"])
    assert result.exit_code == 0, result.output
    alive.rmdir()
    return sorted(p.name for p in tmp.iterdir())


def _onnx_with_bad_manifest(c: Ctx) -> Path:
    import onnx

    model = onnx.load(str(c.run / "onnx" / "model.onnx"))
    for prop in model.metadata_props:
        if prop.key == "dense_edge.manifest":
            prop.value = "{not json"
    out = c.tmp / "bad.onnx"
    onnx.save(model, str(out))
    return out


def _huge_onnx(c: Ctx) -> str:
    """The digits ONNX with its first convolution's dims set to claim 2**40 floats (its 864 bytes
    of data unchanged): a 450 KB file that would stand for 4 TiB."""
    import onnx

    model = onnx.load(str(c.run / "onnx" / "model.onnx"))
    w = model.graph.initializer[0]
    del w.dims[:]
    w.dims.extend([1 << 10] * 4)
    path = c.tmp / "huge.onnx"
    onnx.save(model, str(path))
    return str(path)


def _custom_op_onnx(c: Ctx) -> Path:
    """The digits ONNX with its first ReLU turned into a custom domain's op (its manifest kept)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(c.run / "onnx" / "model.onnx"))
    node = next(n for n in model.graph.node if n.op_type == "Relu")
    node.op_type, node.domain = "FancyRelu", "com.example"
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    path = c.tmp / "custom.onnx"
    onnx.save(model, str(path))
    return path


def _calibrated(c: Ctx, samples: int) -> Path:
    """The run, calibrated for onnxruntime on ``samples`` images of its training split."""
    from dense_edge.calibrate.stage import calibrate_stage
    from dense_edge.rundir import RunDir
    from tests.conftest import digits_recipe

    recipe = digits_recipe(**{"calibration.samples": samples})
    calibrate_stage(recipe, RunDir.at(c.run), profiles=["onnxruntime"])
    return c.run


def _nan_weights(c: Ctx) -> Any:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    import dense_edge

    model = onnx.load(str(c.run / "onnx" / "model.onnx"))
    init = next(i for i in model.graph.initializer if len(i.dims) == 4)  # the first conv
    w = numpy_helper.to_array(init).copy()
    w[...] = np.nan
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    path = c.tmp / "nan.onnx"
    onnx.save(model, str(path))
    return dense_edge.collect_statistics(path, np.zeros((4, 8, 8), np.uint8))


def _two_corrupt(c: Ctx) -> Path:
    root = _folders(c, ["a", "b"], per_class=10)
    (root / "a" / "x.png").write_bytes(b"not an image")
    (root / "b" / "y.png").write_bytes(b"not one either")
    return root


def _alias_bomb() -> str:
    """331 bytes of YAML that stand for 9**8 (43 million) strings, where an int is expected."""
    names = "abcdefg"
    parts = ["&a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in itertools.pairwise(names):
        parts.append(f"&{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    parts.append("[" + ", ".join(["*g"] * 9) + "]")
    return "seed: [" + ", ".join(parts) + "]\n"


_ALIAS_BOMB = _alias_bomb()

ISSUE23 = [
    # silently wrong answers
    Case("16-bit grey PNG is scaled, not clipped", "bug", kind="silent",
         api=_png16, expect=lambda a: int(a.max()) == 128),
    Case("palette PNG with colours for a grey model", "bug", kind="silent",
         api=lambda c: _palette(c, colour=True), match=r"pal\.png: image is P \(colour\)"),
    Case("palette PNG of greys for a grey model", "good", kind="silent",
         api=lambda c: _palette(c, colour=False), expect=lambda a: int(a.max()) == 90),
    Case("EXIF orientation is applied", "bug", kind="silent",
         api=_rotated_photo, expect=lambda a: a[:, -1].mean() > 200 and a[0, :4].mean() < 60),
    Case("float64 input of 1e300", "bug", kind="silent",
         api=lambda c: _predict(c, __import__("numpy").full((1, 8, 8), 1e300)),
         match="beyond-float32"),
    Case("class folder starting with '.'", "bug", kind="silent",
         cli=lambda c: _imagefolder(c, _folders(c, ["0", "1", ".2"])),
         match="class folder '.2' starts with '.'"),
    Case("weights whose classes are not the data's folders", "bug", kind="silent",
         cli=lambda c: _imagefolder(c, _folders(c, ["zero", "one", "two", "three", "four", "five",
                                                    "six", "seven", "eight", "nine"], per_class=10),
                                    "--weights", str(c.run / "model")),
         match=r"weights' classes \['0', '1', .*4 more\] are not the data's class folders "
               r"\['eight', 'five'"),
    Case("--set model.weights=null", "bug", kind="silent",
         api=lambda c: __import__("dense_edge.cli.options", fromlist=["load"]).load(
             Path(c.recipe(f"model:\n  weights: {c.recipe('x')}\n")), ("model.weights=null",)),
         expect=lambda r: r.model.weights is None),
    Case("splits that round to 0 images", "bug", kind="silent",
         cli=lambda c: _imagefolder(c, _folders(c, ["a", "b"], per_class=2)),
         match="data.val_fraction rounds to 0 of 4 images"),
    Case("calibrate --check of a cyclic graph", "bug", kind="silent",
         cli=lambda c: ["calibrate", "--check", _cyclic_onnx(c), "--profile", "onnxruntime"],
         match="not a valid ONNX graph: node .* cycle"),
    # unbounded work from small input
    Case("bundle that expands 1000-fold", "bug", kind="unbounded",
         api=lambda c: _load(_bundle_bomb(c)), match="decompression bomb"),
    Case("bundle member the engine manifest does not list", "weak", kind="unbounded",
         api=_unlisted_member_dropped, expect=lambda names: "extra.bin" not in names),
    Case("YAML alias bomb where a scalar is expected", "bug", kind="unbounded",
         cli=lambda c: ["calibrate", "--out", str(c.tmp / "o"), "--recipe", c.recipe(_ALIAS_BOMB)],
         match=r"seed: expected int, got \[\[.*\.\.\.\]$"),
    Case("calibration.bins of a million", "bug", kind="unbounded",
         cli=lambda c: ["calibrate", "--out", str(c.tmp / "o"),
                        "--set", "calibration.bins=1048576"],
         match="--set calibration.bins=1048576: calibration.bins: input should be less than or "
               "equal to 65536"),
    Case("preprocess.input_size of a million pixels a side", "bug", kind="unbounded",
         cli=lambda c: ["export", "--out", str(c.tmp / "o"),
                        "--set", "preprocess.input_size=[1000000, 1000000]"],
         match=r"preprocess.input_size\[0\]: input should be less than or equal to 4096"),
    Case("engine file that is a FIFO", "bug", kind="unbounded",
         api=lambda c: _load(_engine_with_link(c, "fifo")), match="not a regular file"),
    Case("engine file linked to /dev/zero, bundled", "bug", kind="unbounded",
         cli=lambda c: ["bundle", str(_engine_with_link(c, "zero")), "-o",
                        str(c.tmp / "m.bundle")],
         match="not a regular file"),
    # tracebacks for input a user can fix
    Case("negative seed", "bug", kind="traceback",
         cli=lambda c: ["calibrate", "--out", str(c.tmp / "o"), "--set", "seed=-1"],
         match="seed: input should be greater than or equal to 0"),
    Case("seed over 64 bits", "bug", kind="traceback",
         cli=lambda c: ["calibrate", "--out", str(c.tmp / "o"), "--set", f"seed={2**70}"],
         match="seed: input should be less than or equal to"),
    Case("validate.batch_sizes: [0]", "bug", kind="traceback",
         cli=lambda c: ["validate", "--out", str(c.tmp / "o"), "--set", "validate.batch_sizes=[0]"],
         match=r"validate.batch_sizes\[0\]: input should be greater than or equal to 1"),
    Case("preprocess.resize: 0", "bug", kind="traceback",
         cli=lambda c: ["export", "--out", str(c.tmp / "o"), "--set", "preprocess.resize=0"],
         match="preprocess.resize: input should be greater than or equal to 1"),
    Case("a one-class data set", "bug", kind="traceback",
         cli=lambda c: _imagefolder(c, _folders(c, ["only"])),
         match="only one class folder"),
    Case("an ONNX file whose embedded manifest is not JSON", "bug", kind="traceback",
         api=lambda c: _load(_onnx_with_bad_manifest(c)),
         match="bad.onnx: the dense-edge manifest embedded .* is not JSON"),
    Case("non-finite weights during calibration", "bug", kind="traceback",
         api=_nan_weights, match=r"calibration: tensor '.*' of \w+ '.*' is NaN or infinite on "
                                 r"images \d+\.\.\d+: the model's weights"),
    Case("an ONNX whose initializer claims 2**40 elements, checked", "bug", kind="traceback",
         cli=lambda c: ["calibrate", "--check", _huge_onnx(c), "--profile", "onnxruntime"],
         match=r"huge\.onnx: initializer 'features\.conv0\.weight' claims 1,099,511,627,776 "
               r"elements \(1024x1024x1024x1024\) but holds 864 bytes"),
    Case("an ONNX whose initializer claims 2**40 elements, quantised", "bug", kind="traceback",
         api=lambda c: __import__("dense_edge").quantize(
             _huge_onnx(c), [__import__("numpy").zeros((8, 8), "uint8")], profile="onnxruntime"),
         match=r"huge\.onnx: initializer .* claims 1,099,511,627,776 elements"),
    Case("an ONNX whose initializer claims 2**40 elements, compiled", "bug", kind="traceback",
         api=lambda c: __import__("dense_edge").build_engine(
             _huge_onnx(c), target="openvino", precision="fp32", out_dir=c.tmp / "e"),
         match=r"huge\.onnx: initializer .* claims 1,099,511,627,776 elements"),
    Case("disk full while OpenVINO compiles", "bug", kind="traceback", fsize=64 << 10,
         cli=lambda c: ["compile", "--out", str(c.run), "--target", "openvino",
                        "--precision", "fp32", *SET15],
         match=r"cannot write .*/run/engines \(File too large\) \(free space"),
    Case("disk full while ONNX Runtime compiles", "weak", kind="traceback", fsize=64 << 10,
         cli=lambda c: ["compile", "--out", str(c.run), "--target", "onnxruntime",
                        "--precision", "fp32", *SET15],
         match=r"cannot write .*/run/engines \(File too large\) \(free space"),
    Case("an ONNX op OpenVINO cannot convert", "weak", kind="traceback",
         api=lambda c: __import__("dense_edge").build_engine(
             _custom_op_onnx(c), target="openvino", precision="fp32", out_dir=c.tmp / "e"),
         match=r"custom\.onnx: OpenVINO has no conversion for op 'FancyRelu' \(domain "
               r"'com\.example'\), used by node '/features/denseblock1/denselayer1/relu1/Relu' "
               r"\(replace it with standard ONNX ops"),
    Case("predict after close()", "weak", kind="traceback",
         api=lambda c: _predict(c, __import__("numpy").zeros((8, 8), "uint8"), close=True),
         match="was closed.*load it again"),
    Case("an 8x8 int32 array", "weak", kind="traceback",
         api=lambda c: _predict(c, __import__("numpy").zeros((8, 8), "int32")),
         match=r"dtype int32 and shape \(8, 8\)"),
    Case("bytes input", "weak", kind="traceback",
         api=lambda c: _predict(c, b"\x89PNG..."), match="given bytes.*io.BytesIO"),
    # trust and leftovers
    Case("a cache slot holding another engine", "bug", kind="trust",
         api=_squatted_cache, expect=lambda classes: classes == [str(i) for i in range(10)]),
    Case("leftovers of a killed validate", "bug", kind="trust",
         api=_leftovers_removed,
         expect=lambda names: not any(n.startswith(".dense-edge-tmp-validate-") for n in names)
         and "dense-edge-notes" in names),
    Case("class name with a newline", "bug", kind="trust",
         cli=lambda c: _imagefolder(c, _folders(c, ["a", "b\nc"])),
         match=r"'b\\nc' has a newline or other control character"),
    Case("recipe name with a trailing newline", "bug", kind="trust",
         cli=lambda c: ["train", "--recipe", c.recipe('name: "digits\\n"\n')],
         match=r"name 'digits\\n' is not a plain name"),
    # a new user's first hour
    Case("every corrupt image named, not only the first", "weak", kind="first-hour",
         cli=lambda c: _imagefolder(c, _two_corrupt(c)),
         match=r"2 image files cannot be used: \['.*x\.png', '.*y\.png'\]"),
    Case("a calibration made from other images names the keys", "weak", kind="first-hour",
         cli=lambda c: ["calibrate", "--out", str(_calibrated(c, 32)), "--profile", "onnxruntime",
                        "--source", str(digit_pngs(c.tmp / "cal", per_class=4)), "--samples", "40",
                        *SET15],
         match=r"int8/onnxruntime was made from other inputs: calibration\.samples 32 -> 40; "
               r"calibration\.source data -> .*/cal \(pass --force"),
    Case("--data-root on calibrate", "weak", kind="first-hour",
         cli=lambda c: ["calibrate", "--out", str(c.tmp / "o"), "--data-root",
                        str(c.tmp / "nowhere")],
         match="--data-root .*nowhere: data.root: file not found"),
]  # fmt: skip
CASES += ISSUE23


def test_every_class_is_covered():
    kinds = {c.kind for c in ISSUE23}
    assert kinds == {"silent", "unbounded", "traceback", "trust", "first-hour"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line(case, tmp_path, request, monkeypatch):
    import tempfile

    ctx = Ctx(tmp_path, request)
    cwd, scratch = tmp_path / "cwd", tmp_path / "scratch"
    cwd.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(cwd)  # nothing may be written here (runs/ of a default --out, scratch)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("DENSE_EDGE_CACHE", str(tmp_path / "cache"))
    try:
        _run_case(case, ctx, monkeypatch)
    finally:
        monkeypatch.chdir(tmp_path)
    assert not list(cwd.iterdir()), "written outside the run"
    assert not [p for p in scratch.iterdir() if p.name.startswith(".dense-edge-tmp-")]


@contextlib.contextmanager
def _file_size_limit(nbytes: int | None) -> Iterator[None]:
    import resource

    if nbytes is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _run_case(case: Case, ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    if case.api is not None:
        if not case.match:  # a case that must succeed (skipping), not fail
            result = case.api(ctx)
            assert result is not None
            if case.expect is not None:
                assert case.expect(result), result
            return
        with pytest.raises(UserError) as info:
            case.api(ctx)
        text = str(info.value)
        assert "\n" not in text, text
    else:
        assert case.cli is not None
        args = case.cli(ctx)
        if case.env:
            monkeypatch.setenv("DENSE_EDGE_FAULT", case.env)
        with _file_size_limit(case.fsize):
            result = CliRunner().invoke(cli, args)
        monkeypatch.delenv("DENSE_EDGE_FAULT", raising=False)
        assert isinstance(result.exception, SystemExit), result.exception  # no traceback
        assert result.exit_code == 2, result.output
        text = result.output.strip()
        if not text.startswith("Usage:"):  # Click's own usage errors end in one "Error:" line
            assert text.startswith("error: ") and "\n" not in text, text
    import re

    assert re.search(case.match, text), text
