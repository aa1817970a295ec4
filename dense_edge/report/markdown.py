"""report.md: the report's tables in Markdown."""

from __future__ import annotations

from typing import Any

from dense_edge.report import tables
from dense_edge.validate.budgets import describe


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return "-" if v is None else str(v)

    out = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] * len(columns)) + "|"]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def render(report: dict[str, Any]) -> str:
    ev = report["evaluation"]
    status = (
        "PASSED" if report["passed"] else f"FAILED ({len(report['violations'])} budgets broken)"
    )
    parts = [
        f"# dense-edge report: {report.get('recipe', '')} ({report['model']['arch']})",
        "",
        f"**{status}** — {report['created']}; evaluated on {ev['samples']} images "
        f"({ev['source']}{', ' + ev['split'] + ' split' if ev.get('split') else ''}); "
        f"reference: {report['reference']}.",
        "",
        "## Engines",
        "",
        _table(tables.SUMMARY_COLUMNS, tables.summary_rows(report)),
        "",
        "## Latency",
        "",
        _table(tables.LATENCY_COLUMNS, tables.latency_rows(report)),
        "",
    ]
    classes = tables.worst_class_rows(report)
    if classes:
        parts += ["## Worst classes (against the float model)", "",
                  _table(tables.CLASS_COLUMNS, classes), ""]  # fmt: skip
    parts += ["## Budgets", ""]
    budgets = {k: v for k, v in report["budgets"].items() if v is not None}
    parts.append(", ".join(f"`{k}` = {v}" for k, v in budgets.items()) or "none set")
    parts.append("")
    for v in report["violations"]:
        parts.append(f"- {describe(v)}")
    parts += ["", "## Environment", ""] + [f"- {line}" for line in tables.environment_lines(report)]
    return "\n".join(parts) + "\n"
