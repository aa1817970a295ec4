"""Writing report.json, report.md and report.html together, atomically."""

from __future__ import annotations

import json
from pathlib import Path

from dense_edge.records import REPORT_FILE, Report
from dense_edge.report import html, markdown
from dense_edge.stages import atomic_dir


def write_reports(report: Report, folder: Path) -> Path:
    with atomic_dir(folder) as tmp:
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str) + "\n")
        (tmp / "report.md").write_text(markdown.render(report))
        (tmp / "report.html").write_text(html.render(report))
    return folder
