"""``report compare BASE NEW``: deltas between two reports and regressions beyond tolerance.

Engines are matched by name (``openvino-int8``...). Accuracy is judged in points of top-1 (and
agreement) anywhere. Latency is judged only between reports from the same machine (CPU model
and GPU), because a latency delta across machines measures the machines, and only by medians
with their confidence intervals, never by p99 (a tail from a shared machine is noise):

- **relative** (``latency``, percent): the engine's p50 divided by the float reference's p50
  measured in the same validation, so drift of the whole machine between two validations
  cancels. A regression needs the ratio to grow by more than the tolerance *and* the ratio's
  interval (from the two medians' intervals) to lie wholly above the old one.
- **absolute** (``latency_abs``, percent, off by default): the engine's own p50; a regression
  needs a growth beyond this tolerance and intervals that do not overlap. It catches a slowdown
  that also hit the float model (e.g. fewer threads for everything); set it where the machine
  is quiet (a dedicated CI runner), since a shared machine drifts by more than 2x.

Differences of machine or library versions are always printed, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dense_edge.errors import UserError


@dataclass(frozen=True)
class Tolerance:
    top1_points: float = 0.5  # top-1 may drop this many points
    agreement: float = 0.01  # agreement with float may drop this much (fraction)
    latency_pct: float = 25.0  # p50 relative to the float p50 may grow this many percent
    latency_abs_pct: float | None = None  # the engine's own p50 may grow this many percent
    # (None: shown, not judged; on a shared machine whole-machine drift exceeds 2x)
    size_pct: float = 10.0  # engine size may grow this many percent

    @classmethod
    def parse(cls, items: tuple[str, ...] | list[str]) -> Tolerance:
        keys = {"top1": "top1_points", "agreement": "agreement", "latency": "latency_pct",
                "latency_abs": "latency_abs_pct", "size": "size_pct"}  # fmt: skip
        values: dict[str, float] = {}
        for item in items:
            key, sep, text = item.partition("=")
            if not sep or key not in keys:
                raise UserError(
                    f"--tolerance {item!r}: expected one of {', '.join(k + '=N' for k in keys)}",
                    fix="e.g. --tolerance top1=0.5 --tolerance latency=25%",
                )
            try:
                values[keys[key]] = float(text.rstrip("%"))
            except ValueError:
                raise UserError(f"--tolerance {item!r}: {text!r} is not a number") from None
        return cls(**values)


@dataclass
class Row:
    engine: str
    metric: str
    base: float | None
    new: float | None
    delta: str
    status: str  # "ok", "REGRESSION", "improved", "not compared"


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status == "REGRESSION"]


def _machine(report: dict[str, Any]) -> tuple[str, str]:
    env = report["environment"]
    gpu = env.get("gpu") or {}
    return env["cpu"]["model"], gpu.get("name", "no GPU")


def compare(
    base: dict[str, Any], new: dict[str, Any], tol: Tolerance, *, across_machines: bool = False
) -> Comparison:
    out = Comparison()
    same_machine = _machine(base) == _machine(new)
    if not same_machine:
        out.notes.append(
            f"different machines: {_machine(base)} vs {_machine(new)}; latency is "
            + ("compared anyway (--across-machines)" if across_machines else "not judged")
        )
    vb, vn = base["environment"]["versions"], new["environment"]["versions"]
    changed = [
        f"{k} {vb.get(k)} -> {vn.get(k)}"
        for k in sorted(set(vb) | set(vn))
        if vb.get(k) != vn.get(k)
    ]
    if changed:
        out.notes.append("library versions differ: " + ", ".join(changed))
    if base["model"].get("weights_sha256") != new["model"].get("weights_sha256"):
        out.notes.append("the reports are of different model weights")
    if base["evaluation"] != new["evaluation"]:
        out.notes.append("the evaluation data differ (split, samples or source)")
    judge_latency = same_machine or across_machines

    engines_b = {e["name"]: e for e in base["engines"]}
    engines_n = {e["name"]: e for e in new["engines"]}
    for name in sorted(set(engines_b) - set(engines_n)):
        # An engine that disappeared is a regression of coverage, not a detail.
        out.rows.append(Row(name, "engine", None, None, "missing in new report", "REGRESSION"))
    for name in sorted(set(engines_n) - set(engines_b)):
        out.notes.append(f"engine {name} is new")
    ref_b = engines_b.get(base.get("reference", ""))
    ref_n = engines_n.get(new.get("reference", ""))
    for name in sorted(set(engines_b) & set(engines_n)):
        b, n = engines_b[name], engines_n[name]
        kit_b, kit_n = b.get("status") == "kit", n.get("status") == "kit"
        if kit_b or kit_n:
            if kit_n and not kit_b:
                out.rows.append(Row(name, "engine", None, None, "now only a kit", "REGRESSION"))
            else:
                out.rows.append(Row(name, "engine", None, None,
                                    "kit only" if kit_b and kit_n else "now measured",
                                    "not compared" if kit_b and kit_n else "improved"))  # fmt: skip
            continue
        if b.get("measured_on") != n.get("measured_on") and (
            b.get("measured_on") or n.get("measured_on")
        ):
            out.notes.append(f"{name}: measured in different places; latency not judged")
            judge_here = False
        else:
            judge_here = judge_latency
        out.rows += _accuracy_rows(name, b, n, tol)
        for batch in sorted(set(b["latency"]) & set(n["latency"]), key=int):
            lb, ln = b["latency"][batch], n["latency"][batch]
            is_ref = name == base.get("reference")
            if not is_ref and ref_b and ref_n and batch in ref_b["latency"] \
                    and batch in ref_n["latency"]:  # fmt: skip
                out.rows.append(
                    _relative_row(
                        name,
                        batch,
                        lb,
                        ln,
                        ref_b["latency"][batch],
                        ref_n["latency"][batch],
                        tol,
                        judge_here,
                    )
                )
            out.rows.append(_absolute_row(name, batch, lb, ln, tol, judge_here))
        out.rows.append(
            _pct_row(
                name, "size MiB", b["size_bytes"] / 2**20, n["size_bytes"] / 2**20, tol.size_pct
            )
        )
    return out


def _ci(lat: dict[str, Any]) -> tuple[float, float, float]:
    p50 = float(lat["p50_ms"])
    return float(lat.get("p50_ci_low_ms", p50)), p50, float(lat.get("p50_ci_high_ms", p50))


def _judge(change_pct: float, tol_pct: float, separated: bool, better: bool, judge: bool) -> str:
    if not judge:
        return "not compared"
    if change_pct > tol_pct + 1e-9 and separated:
        return "REGRESSION"
    return "improved" if better and change_pct < -tol_pct else "ok"


def _relative_row(
    name: str, batch: str, lb: dict[str, Any], ln: dict[str, Any], rb: dict[str, Any],
    rn: dict[str, Any], tol: Tolerance, judge: bool,
) -> Row:  # fmt: skip
    """p50 / float p50 of the same report: machine-wide drift cancels."""
    eb, en, fb, fn = _ci(lb), _ci(ln), _ci(rb), _ci(rn)
    base, new = eb[1] / fb[1], en[1] / fn[1]
    base_hi, new_lo = eb[2] / fb[0], en[0] / fn[2]
    base_lo, new_hi = eb[0] / fb[2], en[2] / fn[0]
    change = (new / base - 1) * 100
    status = _judge(change, tol.latency_pct, new_lo > base_hi, new_hi < base_lo, judge)
    return Row(name, f"p50 b{batch} / float p50", round(base, 4), round(new, 4),
               f"{change:+.1f}%", status)  # fmt: skip


def _absolute_row(
    name: str, batch: str, lb: dict[str, Any], ln: dict[str, Any], tol: Tolerance, judge: bool
) -> Row:
    b, n = _ci(lb), _ci(ln)
    change = (n[1] / b[1] - 1) * 100 if b[1] else 0.0
    if tol.latency_abs_pct is None:
        status = "shown" if judge else "not compared"
    else:
        status = _judge(change, tol.latency_abs_pct, n[0] > b[2], n[2] < b[0], judge)
    return Row(name, f"p50 ms b{batch}", round(b[1], 4), round(n[1], 4), f"{change:+.1f}%",
               status)  # fmt: skip


def _accuracy_rows(name: str, b: dict[str, Any], n: dict[str, Any], tol: Tolerance) -> list[Row]:
    rows = []
    ab, an = b["accuracy"], n["accuracy"]
    tb, tn = ab.get("top1_fraction"), an.get("top1_fraction")
    if tb is not None and tn is not None:
        drop = (tb - tn) * 100  # points, positive = worse
        status = (
            "REGRESSION" if drop > tol.top1_points + 1e-9 else ("improved" if drop < 0 else "ok")
        )
        rows.append(Row(name, "top-1 drop (points)", round(tb * 100, 2), round(tn * 100, 2),
                        f"{drop:+.2f} points", status))  # fmt: skip
    elif tb is not None or tn is not None:
        rows.append(Row(name, "top-1 drop (points)", tb, tn, "one report has no labels",
                        "not compared"))  # fmt: skip
    gb, gn = ab["agreement_fraction"], an["agreement_fraction"]
    d = gb - gn
    status = "REGRESSION" if d > tol.agreement + 1e-9 else ("improved" if d < 0 else "ok")
    rows.append(Row(name, "agreement drop", round(gb, 4), round(gn, 4), f"{d:+.4f}", status))
    return rows


def _pct_row(
    name: str, metric: str, base: float, new: float, pct: float, *, judge: bool = True
) -> Row:
    change = (new - base) / base * 100 if base else 0.0
    if not judge:
        status = "not compared"
    elif change > pct + 1e-9:
        status = "REGRESSION"
    else:
        status = "improved" if change < -pct else "ok"
    return Row(name, metric, round(base, 4), round(new, 4), f"{change:+.1f}%", status)
