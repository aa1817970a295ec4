"""report.md: the report's verdict, recommendation and tables in Markdown."""

from __future__ import annotations

import html
import re
from typing import Any

from dense_edge.records import Report
from dense_edge.report import tables
from dense_edge.validate.budgets import describe_budgets

# Inline Markdown only: every line we write starts with our own text ("| ", "- ", "# "), so the
# block markers (#, >, -, 1.) cannot start a line from inside a value once breaks are gone.
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def text(value: Any) -> str:
    """Untrusted text (a class, recipe or engine name, a path, a device report's field) as one
    line of literal Markdown: line breaks and control characters become spaces (no fake
    heading or table row), HTML is escaped (no tag, no handler), and Markdown's punctuation is
    backslash-escaped (no link, no emphasis)."""
    one_line = _CONTROL.sub(" ", str(value))
    return _MARKDOWN.sub(r"\\\1", html.escape(one_line, quote=False))


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return "-" if v is None else text(v)

    out = ["| " + " | ".join(text(c) for c in columns) + " |",
           "|" + "|".join(["---"] * len(columns)) + "|"]  # fmt: skip
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def render(report: Report) -> str:
    header = tables.header_lines(report)
    parts = [
        f"# dense-edge report: {text(report.get('recipe', ''))} ({text(report['model']['arch'])})",
        "",
        f"**{text(header[0])}** ({text(report['created'])})",
        "",
        *[f"- {text(line.strip().removeprefix('- '))}" for line in header[1:]],
        "",
        "## Recommendation",
        "",
        _table(tables.RECOMMENDATION_COLUMNS, tables.recommendation_rows(report)),
        "",
        "## Engines",
        "",
        "top-1 and agreement in %; top-1 drop in points against the float model (positive = "
        "worse); p50 with its 95% confidence interval.",
        "",
        _table(tables.summary_columns(report), tables.summary_rows(report)),
        "",
        "## Budgets",
        "",
        text(describe_budgets(report["budgets"])),
        "",
    ]
    budget_rows = tables.budget_rows(report)
    if budget_rows:
        parts += [_table(tables.BUDGET_COLUMNS, budget_rows), ""]
    parts += ["## Latency", "", text(tables.clock_note(report)), "",
              _table(tables.LATENCY_COLUMNS, tables.latency_rows(report)), ""]  # fmt: skip
    classes = tables.worst_class_rows(report)
    parts += ["## Classes an engine loses", ""]
    parts += [
        _table(tables.CLASS_COLUMNS, classes)
        if classes
        else "No engine gets fewer images of any class right than the float model.",
        "",
    ]
    parts += ["## Environment", ""] + [
        f"- {text(line)}" for line in tables.environment_lines(report)
    ]
    return "\n".join(parts) + "\n"
