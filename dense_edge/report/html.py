"""report.html: one self-contained page, plots embedded as PNG (matplotlib, no network)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Literal

from dense_edge.catalog import PYTORCH, REFERENCE_COLOR
from dense_edge.records import EngineRow, Report
from dense_edge.report import tables
from dense_edge.targets.base import WALL_CLOCK
from dense_edge.targets.registry import all_targets
from dense_edge.validate.budgets import describe_budgets
from dense_edge.validate.latency import clock_of

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;color:#1d2433;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{padding:.3rem .6rem;
border-bottom:1px solid #e4e6ef;text-align:right}td:first-child,th:first-child{text-align:left}
th{background:#f4f5fa}.pass{color:#0a7a32;font-weight:700}.fail{color:#b3261e;font-weight:700}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots img{max-width:100%;border:1px solid #e4e6ef}
.muted{color:#667}.prose{text-align:left;max-width:36rem}.verdict{font-size:1.4rem;margin:.4rem 0}
.warn{background:#fdecea;border:2px solid #b3261e;color:#b3261e;padding:.6rem;font-weight:700}
"""


def _alt(batch: str, machine: str | None) -> str:
    """A plot's alt text, escaped for an attribute (a device's host name is foreign text)."""
    return html.escape(f"latency distribution batch {batch} on {machine or 'this machine'}")


def _plain(text: str) -> str:
    """Text for a plot: matplotlib reads ``$...$`` as maths (and fails on a lone ``$``)."""
    return text.replace("$", r"\$")


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _machine(e: EngineRow) -> str | None:
    """Where an engine was timed: None for this machine, else the device's host name."""
    where = e.get("measured_on") or {}
    return str(where.get("host") or where.get("gpu") or "device") if where else None


def _measured(report: Report, batch: str, machine: str | None = None) -> list[EngineRow]:
    """Engines timed at ``batch`` on ``machine`` (None: this one); times from two machines are
    never drawn on one axis."""
    return [
        e
        for e in report["engines"]
        if e.get("status", "measured") == "measured"
        and batch in e.get("latency", {})
        and _machine(e) == machine
    ]


def machines(report: Report) -> list[str | None]:
    """This machine first, then every device whose rows were merged."""
    found = {_machine(e) for e in report["engines"] if e.get("status", "measured") == "measured"}
    return [None] * (None in found) + sorted(m for m in found if m is not None)


def latency_plot(report: Report, batch: str, machine: str | None = None) -> str:
    """Per-call latency per engine on a log axis, so a slow float model squashes nothing.

    One plot per machine. An engine timed by its runtime's own clock rather than the wall clock
    is marked with a dagger, and the axis label says so.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = _measured(report, batch, machine)
    own_clock = [clock_of(e["latency"][batch]) != WALL_CLOCK for e in engines]
    names = [_plain(e["name"]) + (" \u2020" if own else "")
             for e, own in zip(engines, own_clock, strict=True)]  # fmt: skip
    data = [e["latency"][batch].get("samples_ms") or [e["latency"][batch]["p50_ms"]]
            for e in engines]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(names) + 1.4))
    ax.boxplot(data, orientation="horizontal", tick_labels=names, showfliers=True,
               flierprops={"markersize": 2, "alpha": 0.4})  # fmt: skip
    for i, e in enumerate(engines, start=1):
        ax.annotate(f"p50 {tables.ms(e['latency'][batch]['p50_ms'])} ms", (1.0, i),
                    xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)  # fmt: skip
    ax.set_xscale("log")
    label = f"latency per batch of {batch}, ms (log scale)"
    if any(own_clock):
        label += "\n\u2020 the runtime's own clock; the others: wall clock around the call"
    ax.set_xlabel(label)
    counts = sorted({e["latency"][batch]["iterations"] for e in engines})
    n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    where = "this machine" if machine is None else _plain(machine)
    ax.set_title(f"Latency per call on {where}, batch {batch} ({n} samples per engine)")
    ax.grid(axis="x", which="both", alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def accuracy_latency_plot(report: Report, batch: str) -> str:
    """Top-1 (%) against p50 latency on this machine (a device's times are in its own latency
    plot); the band is what the top-1 drop budget allows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    markers = {"fp32": "o", "fp16": "s", "bf16": "D", "int8": "^"}
    colors = {PYTORCH: REFERENCE_COLOR, **{t.name: t.color for t in all_targets()}}
    engines = _measured(report, batch)
    labelled = any("top1_fraction" in e["accuracy"] for e in engines)
    key: Literal["top1_fraction", "agreement_fraction"] = (
        "top1_fraction" if labelled else "agreement_fraction"
    )
    ys, xs = [], []
    shown = [e for e in engines if e["accuracy"].get(key) is not None]
    for i, e in enumerate(shown):
        y = e["accuracy"][key]
        x = e["latency"][batch]["p50_ms"]
        xs.append(x)
        ys.append(y * 100)
        # Hollow markers, each smaller than the one drawn before it: engines at the same
        # accuracy and speed sit inside each other, all visible, never one hiding another.
        size = 50 + 120 * (len(shown) - 1 - i)
        ax.scatter(x, y * 100, s=size, marker=markers.get(e["precision"], "o"),
                   facecolors="none", edgecolors=colors.get(e["target"], "#999"),
                   label=_plain(e["name"]), zorder=3 + i, linewidths=1.8)  # fmt: skip
    ref = next((e for e in engines if e.get("is_reference")), None)
    budget = report["budgets"].get("max_top1_drop") if labelled else None
    ref_accuracy = ref["accuracy"].get(key) if ref else None
    ref_y = ref_accuracy * 100 if ref_accuracy is not None else None
    lo_candidates = list(ys)
    if ref_y is not None:
        ax.axhline(ref_y, color="#555", lw=0.8, ls="--", zorder=1)
        if budget is not None:
            ax.axhspan(ref_y - budget, min(100.0, ref_y + budget), color="#2ca02c", alpha=0.12,
                       zorder=0, label=f"within the {budget:g}-point budget")  # fmt: skip
            lo_candidates.append(ref_y - budget)
    if ys:
        # At least 5 points of range: one image in a few hundred is not the whole plot.
        lo, hi = min(lo_candidates), max([*ys, ref_y or 0.0])
        span = max(hi - lo, 5.0)
        mid = (hi + lo) / 2
        ax.set_ylim(max(0.0, mid - span * 0.6), min(100.5, mid + span * 0.6))
    if xs:
        ax.set_xscale("log")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_xlabel(f"p50 latency, batch {batch}, ms (log scale)")
    ax.set_ylabel("top-1 (%)" if labelled else "agreement with float (%)")
    ax.set_title("Accuracy vs latency per engine, on this machine")
    ax.grid(alpha=0.3, which="both")
    out = _png(fig)
    plt.close(fig)
    return out


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    text = html.escape(str(v))
    if len(text) > 40:  # prose (a reason, a path) reads left-aligned
        return f'<div class="prose">{text}</div>'

    if text == "pass":
        return f'<span class="pass">{text}</span>'
    if text.startswith(("fail", "unverified", "not built", "kit written")):
        return f'<span class="fail">{text}</span>'
    return text


def render(report: Report) -> str:
    batches = sorted({b for e in report["engines"] for b in e.get("latency", {})}, key=int)
    state = report["verdict"]
    cls = "pass" if state == "PASSED" else "fail"
    header = tables.header_lines(report)
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in report.get("verdict_reasons", []))
    ev = report["evaluation"]
    said = ev.get("warning")
    warning = f'<p class="warn">WARNING: {html.escape(said)}</p>' if said else ""
    info_lines = "".join(f"<li>{html.escape(line)}</li>" for line in header
                         if line.startswith(("evaluation", "reference", "skipped",
                                             "timed on")))  # fmt: skip
    decision = tables.decision_batch(report)
    plots = ""
    if batches:
        plots = "".join(
            f'<img alt="{_alt(b, m)}" src="data:image/png;base64,{latency_plot(report, b, m)}">'
            for m in machines(report)
            for b in batches
            if _measured(report, b, m)
        )
        plots += (
            f'<img alt="accuracy vs latency" src="data:image/png;base64,'
            f'{accuracy_latency_plot(report, decision if decision in batches else batches[0])}">'
        )
    env = "".join(f"<li>{html.escape(line)}</li>" for line in tables.environment_lines(report))
    classes = tables.worst_class_rows(report)
    budget_rows = tables.budget_rows(report)
    recipe = html.escape(str(report.get("recipe", "")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>dense-edge report: {recipe}</title>
<style>{_CSS}</style></head><body>
<h1>dense-edge report: {recipe}
<span class="muted">({html.escape(report["model"]["arch"])})</span></h1>
<p class="verdict {cls}">{html.escape(state)}</p><ul>{reasons}</ul>
{warning}<ul class="muted">{info_lines}<li>{html.escape(report["created"])}</li></ul>
<h2>Recommendation</h2>
{_table(tables.RECOMMENDATION_COLUMNS, tables.recommendation_rows(report))}
<h2>Engines</h2>
<p class="muted">top-1 and agreement in %; top-1 drop in points against the float model
(positive = worse); p50 with its 95% confidence interval; p99 only from
{html.escape(str(report.get("benchmark", {}).get("p99_min_samples", 1000)))} samples up.</p>
{_table(tables.summary_columns(report), tables.summary_rows(report))}
<h2>Budgets</h2><p>{html.escape(describe_budgets(report["budgets"]))}</p>
{_table(tables.BUDGET_COLUMNS, budget_rows) if budget_rows else ""}
<h2>Plots</h2><div class="plots">{plots}</div>
<h2>Latency</h2><p class="muted">{html.escape(tables.clock_note(report))}</p>
{_table(tables.LATENCY_COLUMNS, tables.latency_rows(report))}
<h2>Classes an engine loses</h2>
{
        _table(tables.CLASS_COLUMNS, classes)
        if classes
        else "<p>No engine gets fewer images of any class right than the float model.</p>"
    }
<h2>Environment</h2><ul>{env}</ul>
</body></html>
"""
