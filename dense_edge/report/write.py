"""Writing report.json, report.md and report.html together, atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dense_edge.records import REPORT_FILE, Report
from dense_edge.report import html, markdown
from dense_edge.stages import atomic_dir


def finite(data: Any) -> Any:
    """``data`` with every NaN or infinite number as ``None``: JSON has no NaN, and a reader
    that meets ``null`` knows the value is missing (the checks already judged it: a NaN
    measurement fails the check that reads it before the report is written)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def to_json(report: Report) -> str:
    """report.json's text: valid JSON (``allow_nan=False``), never a ``NaN`` token."""
    return json.dumps(finite(report), indent=2, default=str, allow_nan=False) + "\n"


def write_reports(report: Report, folder: Path) -> Path:
    with atomic_dir(folder) as tmp:
        (tmp / REPORT_FILE).write_text(to_json(report))
        (tmp / "report.md").write_text(markdown.render(report))
        (tmp / "report.html").write_text(html.render(report))
    return folder
