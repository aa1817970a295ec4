"""report.html: one self-contained page, plots embedded as PNG (matplotlib, no network)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from dense_edge.report import tables
from dense_edge.validate.budgets import describe

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;color:#1d2433;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{padding:.3rem .6rem;
border-bottom:1px solid #e4e6ef;text-align:right}td:first-child,th:first-child{text-align:left}
th{background:#f4f5fa}.pass{color:#0a7a32;font-weight:700}.fail{color:#b3261e;font-weight:700}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots img{max-width:100%;border:1px solid #e4e6ef}
.muted{color:#667}
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def latency_plot(report: dict[str, Any], batch: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [e["name"] for e in report["engines"] if batch in e["latency"]]
    data = [e["latency"][batch].get("samples_ms") or [e["latency"][batch]["p50_ms"]]
            for e in report["engines"] if batch in e["latency"]]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(names) + 1.4))
    ax.boxplot(data, orientation="horizontal", tick_labels=names, showfliers=True,
               flierprops={"markersize": 3})  # fmt: skip
    ax.set_xlabel(f"latency per batch of {batch} (ms)")
    ax.set_title(f"Latency distribution, batch {batch}")
    ax.grid(axis="x", alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def accuracy_latency_plot(report: dict[str, Any], batch: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    markers = {"fp32": "o", "fp16": "s", "bf16": "D", "int8": "^"}
    colors = {
        "pytorch": "#555",
        "onnxruntime": "#1f77b4",
        "openvino": "#7b3294",
        "tensorrt": "#2ca02c",
    }
    xs = []
    for e in report["engines"]:
        lat = e["latency"].get(batch)
        y = e["accuracy"].get("top1", e["accuracy"].get("agreement"))
        if lat is None or y is None:
            continue
        xs.append(lat["p50_ms"])
        ax.scatter(lat["p50_ms"], y * 100, s=80, marker=markers.get(e["precision"], "o"),
                   color=colors.get(e["target"], "#999"), label=e["name"], zorder=3,
                   edgecolors="white", linewidths=0.8)  # fmt: skip
    if xs and max(xs) > 8 * min(xs):
        ax.set_xscale("log")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    labelled = "top1" in report["engines"][0]["accuracy"]
    ax.set_xlabel(f"p50 latency, batch {batch} (ms)")
    ax.set_ylabel("top-1 (%)" if labelled else "agreement with float (%)")
    ax.set_title("Accuracy vs latency per engine and precision")
    ax.grid(alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{'-' if v is None else html.escape(str(v))}</td>" for v in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(report: dict[str, Any]) -> str:
    ev = report["evaluation"]
    batches = sorted({b for e in report["engines"] for b in e["latency"]}, key=int)
    ok = report["passed"]
    status = (
        '<span class="pass">PASSED</span>'
        if ok
        else f'<span class="fail">FAILED: {len(report["violations"])} budgets broken</span>'
    )
    plots = "".join(
        f'<img alt="latency distribution batch {b}" '
        f'src="data:image/png;base64,{latency_plot(report, b)}">'
        for b in batches
    )
    plots += (
        f'<img alt="accuracy vs latency" src="data:image/png;base64,'
        f'{accuracy_latency_plot(report, batches[0])}">'
    )
    violations = "".join(f"<li>{html.escape(describe(v))}</li>" for v in report["violations"])
    budgets = ", ".join(
        f"<code>{k}</code> = {v}" for k, v in report["budgets"].items() if v is not None
    )
    env = "".join(f"<li>{html.escape(line)}</li>" for line in tables.environment_lines(report))
    classes = tables.worst_class_rows(report)
    split = f", {ev['split']} split" if ev.get("split") else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>dense-edge report: {html.escape(str(report.get("recipe", "")))}</title>
<style>{_CSS}</style></head><body>
<h1>dense-edge report: {html.escape(str(report.get("recipe", "")))}
<span class="muted">({html.escape(report["model"]["arch"])})</span></h1>
<p>{status} &middot; {html.escape(report["created"])} &middot; {ev["samples"]} images
({html.escape(str(ev["source"]))}{html.escape(split)}) &middot;
reference {html.escape(report["reference"])}</p>
<h2>Engines</h2>{_table(tables.SUMMARY_COLUMNS, tables.summary_rows(report))}
<h2>Plots</h2><div class="plots">{plots}</div>
<h2>Latency</h2>{_table(tables.LATENCY_COLUMNS, tables.latency_rows(report))}
{"<h2>Worst classes</h2>" + _table(tables.CLASS_COLUMNS, classes) if classes else ""}
<h2>Budgets</h2><p>{budgets or "none set"}</p><ul>{violations}</ul>
<h2>Environment</h2><ul>{env}</ul>
</body></html>
"""
