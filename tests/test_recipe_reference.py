"""The recipe reference (``dense-edge recipe``) is generated from the schema and complete, and
the README's copy of it is the generated one."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from dense_edge.cli import cli
from dense_edge.recipe import reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_key_has_one_line():
    rows = reference.rows()
    keys = [r[0] for r in rows]
    assert "calibration.bins" in keys and "targets[].max_batch" in keys
    assert not [k for k, *_, text in rows if not text], "a key without a description"
    assert set(reference.HELP) == set(keys), "descriptions of keys the schema no longer has"


def test_the_command_prints_types_defaults_and_bounds():
    result = CliRunner().invoke(cli, ["recipe"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("calibration.bins "))
    assert "int = 2048 [>= 128, <= 65536]" in line
    assert "preprocess.input_size" in result.output


def test_the_readme_holds_the_generated_reference():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- recipe-reference:.*?-->\n(.*?)<!-- /recipe-reference -->", text, re.S)
    assert block, "README lost its recipe reference"
    assert block.group(1) == reference.markdown(), "run: dense-edge recipe --markdown"
