"""report.md: the report's verdict, recommendation and tables in Markdown."""

from __future__ import annotations

from typing import Any

from dense_edge.records import Report
from dense_edge.report import tables
from dense_edge.validate.budgets import describe_budgets


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return "-" if v is None else str(v).replace("|", "\\|")

    out = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] * len(columns)) + "|"]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def render(report: Report) -> str:
    header = tables.header_lines(report)
    parts = [
        f"# dense-edge report: {report.get('recipe', '')} ({report['model']['arch']})",
        "",
        f"**{header[0]}** ({report['created']})",
        "",
        *[f"- {line.strip().removeprefix('- ')}" for line in header[1:]],
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
        describe_budgets(report["budgets"]),
        "",
    ]
    budget_rows = tables.budget_rows(report)
    if budget_rows:
        parts += [_table(tables.BUDGET_COLUMNS, budget_rows), ""]
    parts += ["## Latency", "", tables.clock_note(report), "",
              _table(tables.LATENCY_COLUMNS, tables.latency_rows(report)), ""]  # fmt: skip
    classes = tables.worst_class_rows(report)
    parts += ["## Classes an engine loses", ""]
    parts += [
        _table(tables.CLASS_COLUMNS, classes)
        if classes
        else "No engine gets fewer images of any class right than the float model.",
        "",
    ]
    parts += ["## Environment", ""] + [f"- {line}" for line in tables.environment_lines(report)]
    return "\n".join(parts) + "\n"
