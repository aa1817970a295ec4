"""A new user's first hour (issue 23): what a log of a run looks like."""

from __future__ import annotations

import re


def test_progress_in_a_log_file_is_one_plain_line(capsys, monkeypatch):
    """Not a terminal: no redrawn bars, one line per bar when it ends."""
    from dense_edge.progress import bar

    monkeypatch.delenv("DENSE_EDGE_QUIET", raising=False)
    with bar("calibrate: statistics", 12) as b:
        for _ in range(12):
            b.advance(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"calibrate: statistics: 12/12 in \d+\.\d s", lines[0])


def test_reusing_is_said_once_per_stage(capsys, monkeypatch):
    from dense_edge.progress import info

    monkeypatch.delenv("DENSE_EDGE_QUIET", raising=False)
    for _ in range(4):  # four targets ask for the same exported model
        info("onnx: reusing runs/x/onnx (test)", once=True)
    info("compile: reusing runs/x/engines/a (test)", once=True)
    assert capsys.readouterr().err.splitlines() == [
        "onnx: reusing runs/x/onnx (test)",
        "compile: reusing runs/x/engines/a (test)",
    ]
