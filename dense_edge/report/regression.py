"""The regression gate behind ``report compare BASE NEW``: deltas between two reports and
regressions beyond tolerance.

Engines are matched by name (``openvino-int8``...). Accuracy is judged in points of top-1 (and
agreement) anywhere, by :mod:`dense_edge.accuracy` (the one top-1 drop and budget check).
Latency is judged only between reports from the same machine (CPU model and GPU), because a
latency delta across machines measures the machines, and only by medians with their
confidence intervals, never by p99 (a tail from a shared machine is noise):

- **drift-corrected** (``latency``, percent): a shared machine's speed drifts between two
  validations (by more than 2x here). The drift is measured as the median, over every model in
  both reports (engines and the float model), of new p50 / base p50, and divided out; an engine
  regresses when its corrected p50 grew by more than the tolerance *and* its corrected
  interval lies wholly above the old one. One engine slowing down stands out; the machine
  slowing down does not. The float model is the yardstick (its row is shown, not judged): it
  is eager PyTorch, the model most disturbed by other load on a small machine.
- **absolute** (``latency_abs``, percent, off by default): the engine's own p50; a regression
  needs a growth beyond this tolerance and intervals that do not overlap. It catches a slowdown
  that also hit the float model (e.g. fewer threads for everything); set it where the machine
  is quiet (a dedicated CI runner), since a shared machine drifts by more than 2x.

- **side by side** (``paired``, percent, the default judge when both reports' engines are on
  this machine): both versions of each engine are timed again together, in alternating bursts
  (:mod:`dense_edge.validate.side_by_side`), and an engine regresses when the median of its
  per-round ratios new/base exceeds 1 + the tolerance *and* the ratio's confidence interval
  lies wholly above 1. Where it ran, it replaces the two judgements above (they are shown).

Differences of machine or library versions are always printed, never silent.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from dense_edge import bundle as bundle_io
from dense_edge.accuracy import judge, top1_drop_points
from dense_edge.errors import UserError
from dense_edge.records import EngineRow, Latency, MeasuredOn, Report
from dense_edge.report.merge import device_identity as identity
from dense_edge.report.schema import load as load_report
from dense_edge.validate.latency import clock_of, wall_p50_of
from dense_edge.validate.provenance import engine_content_sha256
from dense_edge.validate.side_by_side import DEFAULT_ROUNDS, Pair, PairedTiming, time_pairs

# A latency or size change this close to its tolerance (in percent) is within it: percent
# changes are ratios of rounded times and sizes, so they carry more rounding than accuracy
# (which :func:`dense_edge.accuracy.judge` checks with its own, smaller slack).
PERCENT_SLACK = 1e-9


@dataclass(frozen=True)
class RegressionTolerance:
    """How much worse a new report may be than its base before ``report compare`` fails."""

    top1_points: float = 0.5  # top-1 may drop this many points
    agreement: float = 0.01  # agreement with float may drop this much (fraction)
    latency_pct: float = 50.0  # drift-corrected p50 may grow this many percent
    latency_abs_pct: float | None = None  # the engine's own p50 may grow this many percent
    # (None: shown, not judged; on a shared machine whole-machine drift exceeds 2x)
    size_pct: float = 10.0  # engine size may grow this many percent
    paired_pct: float = 10.0  # side by side: new/base may exceed 1 by this many percent

    @classmethod
    def parse(cls, items: tuple[str, ...] | list[str]) -> RegressionTolerance:
        keys = {"top1": "top1_points", "agreement": "agreement", "latency": "latency_pct",
                "latency_abs": "latency_abs_pct", "size": "size_pct",
                "paired": "paired_pct"}  # fmt: skip
        values: dict[str, float] = {}
        for item in items:
            key, sep, text = item.partition("=")
            if not sep or key not in keys:
                raise UserError(
                    f"--tolerance {item!r}: expected one of {', '.join(k + '=N' for k in keys)}",
                    fix="e.g. --tolerance top1=0.5 --tolerance latency=50%",
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
    status: str  # "ok", "REGRESSION", "improved", "not compared", "not compared here", "shown"


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status == "REGRESSION"]


def _machine(report: Report) -> tuple[str, str]:
    env = report["environment"]
    gpu = env.get("gpu") or {}
    return env["cpu"]["model"], gpu.get("name", "no GPU")


def compare(
    base: Report,
    new: Report,
    tol: RegressionTolerance,
    *,
    across_machines: bool = False,
    paired: list[PairedTiming] | None = None,
) -> Comparison:
    """Rows and notes for ``new`` against ``base``; ``paired``: side-by-side timings, if any."""
    out = Comparison()
    side = {(t.name, str(t.batch)): t for t in paired or []}
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
    same_model = same_weights(base, new)
    if same_model is False:
        out.notes.append("the reports are of different model weights (their tensors differ)")
    elif same_model is None:
        out.notes.append("the reports do not say which weights they measured alike (a tensor "
                         "hash in one, not the other): model identity not checked")  # fmt: skip
    if base["evaluation"] != new["evaluation"]:
        out.notes.append("the evaluation data differ (split, samples or source)")
    judge_latency = same_machine or across_machines

    engines_b = {e["name"]: e for e in base["engines"]}
    engines_n = {e["name"]: e for e in new["engines"]}
    for name in sorted(set(engines_b) - set(engines_n)):
        if engines_b[name].get("measured_on"):  # a device row: CI without the device has none
            out.rows.append(Row(name, "engine", None, None,
                                f"{_device(engines_b[name])} row, not in the new report",
                                NOT_HERE))  # fmt: skip
            continue
        # An engine that disappeared is a regression of coverage, not a detail.
        out.rows.append(Row(name, "engine", None, None, "missing in new report", "REGRESSION"))
    for name in sorted(set(engines_n) - set(engines_b)):
        out.notes.append(f"engine {name} is new")
    common = sorted(set(engines_b) & set(engines_n))
    out.notes += _identity_notes(engines_b, engines_n, common)
    drift = _drift(engines_b, engines_n, common)
    if judge_latency and drift:
        out.notes.append("machine drift between the reports (median new/base p50 of every "
                         "model), divided out before judging: "
                         + ", ".join(f"batch {b} x{d:.2f}" for b, d in sorted(
                             drift.items(), key=lambda kv: int(kv[0]))))  # fmt: skip
    for name in common:
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
        on_b, on_n = b.get("measured_on"), n.get("measured_on")
        if on_b or on_n:
            # Device and kit rows are judged only against rows of the same device identity.
            if not (on_b and on_n) or device_identity(on_b) != device_identity(on_n):
                out.rows.append(Row(name, "engine", None, None,
                                    f"{_device(b)} vs {_device(n)}: other devices",
                                    NOT_HERE))  # fmt: skip
                continue
            judge_here = True  # one device, its own numbers: no machine drift to divide out
        else:
            judge_here = judge_latency
        first = len(out.rows)
        out.rows += _accuracy_rows(name, b, n, tol)
        is_ref = name == base.get("reference")
        for batch in sorted(set(b["latency"]) & set(n["latency"]), key=int):
            timing = side.get((name, batch))
            if timing is not None:
                out.rows.append(_paired_row(timing, tol))
            on_one = _on_one_clock(b["latency"][batch], n["latency"][batch])
            if on_one is None:
                out.notes.append(
                    f"{name} b{batch}: timed by another clock in each report, one without a "
                    "wall-clock median: its p50s are not compared"
                )
                continue
            lb, ln = on_one
            if lb.get("clock") == TWO_CLOCKS and timing is None:
                out.notes.append(f"{name} b{batch}: timed by another clock in each report; "
                                 "judged by the wall-clock medians")  # fmt: skip
            from_reports = judge_here and timing is None
            # this machine's drift says nothing about a device's own timings
            factor = 1.0 if on_b else drift.get(batch, 1.0)
            drift_row = _drift_row(name, batch, lb, ln, factor, tol, from_reports, is_ref)
            abs_row = _absolute_row(name, batch, lb, ln, tol, from_reports)
            if timing is not None:  # the side-by-side timing judges; these are context
                drift_row.status = abs_row.status = "shown"
            out.rows += [drift_row, abs_row]
        out.rows.append(
            _pct_row(
                name, "size MiB", b["size_bytes"] / 2**20, n["size_bytes"] / 2**20, tol.size_pct
            )
        )
        if b.get("stand_in") or n.get("stand_in"):  # shown, never what fails a gate
            for row in out.rows[first:]:
                if row.status == "REGRESSION":
                    row.status = "shown (stand-in, not judged)"
    return out


NOT_HERE = "not compared here"


def _device(e: EngineRow) -> str:
    on = e.get("measured_on")
    if not on:
        return "this machine's"
    what = "stand-in" if e.get("stand_in") else str(on.get("where") or "device")
    return f"{what} {on.get('host') or '?'} ({on.get('gpu') or 'no GPU'})"


def device_identity(on: MeasuredOn) -> tuple[str, ...]:
    """Where a device row was measured: two rows are compared only when this is equal."""

    return identity(on)


def _identity_notes(
    engines_b: dict[str, EngineRow], engines_n: dict[str, EngineRow], names: list[str]
) -> list[str]:
    """Which engines are the same build in both reports, by what they compute (the runtime
    files without the metadata they embed), and which were changed: a latency change of an
    identical engine is the machine's, one of a changed engine may be the change's."""
    same: list[str] = []
    changed: list[str] = []
    for name in names:
        hb = engines_b[name].get("engine_content_sha256")
        hn = engines_n[name].get("engine_content_sha256")
        if hb and hn:
            (same if hb == hn else changed).append(name)
    notes = []
    if same:
        notes.append("identical engines in both reports (same content): " + ", ".join(same))
    if changed:
        notes.append("engines whose content changed: " + ", ".join(changed))
    return notes


def same_weights(base: Report, new: Report) -> bool | None:
    """Whether the reports measured the same weights: by the tensor hash when both have one
    (a safetensors file embeds metadata, so the file's hash differs for identical tensors);
    else by the file's hash; None when one report has a tensor hash and the other has not and
    their file hashes differ (nothing proves either way)."""
    tb = base["model"].get("weights_tensor_sha256")
    tn = new["model"].get("weights_tensor_sha256")
    if tb and tn:
        return bool(tb == tn)
    fb, fn = base["model"].get("weights_sha256"), new["model"].get("weights_sha256")
    if fb == fn:
        return True
    return None if (tb or tn) else False


def compare_files(
    base: Path,
    new: Path,
    tol: RegressionTolerance,
    *,
    side_by_side: bool = True,
    rounds: int = DEFAULT_ROUNDS,
    across_machines: bool = False,
) -> Comparison:
    """``report compare``: two reports (report.json or run folders), engines timed side by side
    where both versions are still on this machine; why not, for the others, in the notes."""

    base_path, new_path = report_path(base), report_path(new)
    base_report, new_report = load_report(base_path), load_report(new_path)
    paired: list[PairedTiming] | None = None
    why: list[str] = []
    if side_by_side:
        pairs, why = side_by_side_pairs(base_report, base_path, new_report, new_path)
        if pairs:
            batches = sorted(_batches(base_report) & _batches(new_report))
            paired = time_pairs(pairs, batches, rounds=rounds)
    result = compare(base_report, new_report, tol, across_machines=across_machines, paired=paired)
    result.notes = why + result.notes
    return result


def _batches(report: Report) -> set[int]:
    return {int(b) for e in report["engines"] for b in e.get("latency", {})}


def _paired_row(t: PairedTiming, tol: RegressionTolerance) -> Row:
    """Judged on the ratio new/base timed side by side: effect size and interval both. For an
    engine on this CPU the CPU time per call must agree: slower by the wall clock alone is a
    version that waited for a core (a neighbour's burst), not one that does more work."""
    lo, hi = t.ratio_ci
    change = (t.ratio - 1) * 100
    cpu, cpu_ci = t.cpu_ratio, t.cpu_ratio_ci
    wall_slower = change > tol.paired_pct + PERCENT_SLACK and lo > 1.0
    cpu_slower = (
        cpu is None
        or cpu_ci is None
        or ((cpu - 1) * 100 > tol.paired_pct / 2 + PERCENT_SLACK and cpu_ci[0] > 1.0)
    )
    note = ""
    if not all(math.isfinite(x) for x in (t.ratio, lo, hi)):
        status = "REGRESSION"  # a timing that is not a number proves nothing: it fails
    elif wall_slower and cpu_slower:
        status = "REGRESSION"
    elif wall_slower:
        status = "ok"
        note = "; slower by the wall clock only (waited for a core?), not judged"
    elif t.ratio * (1 + tol.paired_pct / 100) < 1 and hi < 1.0:
        status = "improved"
    else:
        status = "ok"
    if cpu is not None and cpu_ci is not None:
        note = f"; CPU time x{cpu:.2f} [x{cpu_ci[0]:.2f}, x{cpu_ci[1]:.2f}]" + note
    d = t.to_dict()
    return Row(t.name, f"p50 ms b{t.batch} (side by side, {len(t.ratios)} rounds)",
               d["base_p50_ms"], d["new_p50_ms"],
               f"{change:+.1f}% [x{lo:.2f}, x{hi:.2f}]{note}", status)  # fmt: skip


def report_path(path: Path) -> Path:
    """A run folder or a report.json: the report.json."""
    return path / "report" / "report.json" if path.is_dir() else path


def side_by_side_pairs(
    base: Report, base_path: Path, new: Report, new_path: Path
) -> tuple[list[Pair], list[str]]:
    """The engines both reports measured here whose bundles are still on this machine, unchanged.

    Returns the pairs and, for every engine left out, why (printed as notes).
    """
    pairs: list[Pair] = []
    why: list[str] = []
    engines_b = {e["name"]: e for e in base["engines"]}
    engines_n = {e["name"]: e for e in new["engines"]}
    for name in sorted(set(engines_b) & set(engines_n)):
        b, n = engines_b[name], engines_n[name]
        if b.get("is_reference") or name == base.get("reference"):
            continue
        if b.get("status") == "kit" or n.get("status") == "kit":
            continue
        if b.get("measured_on") or n.get("measured_on"):
            continue
        folders = []
        for report, path, entry in ((base, base_path, b), (new, new_path, n)):
            folder, problem = _engine_on_disk(report, path, entry)
            if problem:
                why.append(f"{name}: {problem}; its latency is judged from the reports")
                break
            folders.append(folder)
        else:
            pairs.append(Pair(name, folders[0], folders[1]))
    return pairs, why


def _engine_on_disk(report: Report, path: Path, entry: EngineRow) -> tuple[Path, str | None]:
    rel = Path(str(entry.get("path", "")))
    roots = [Path(str(report.get("run_dir", ""))), report_path(path).parent.parent]
    found = [root / rel for root in roots if (root / rel / bundle_io.MANIFEST).is_file()]
    if not found:
        return rel, f"engine folder {rel} is not on this machine"
    folder = found[0]
    recorded = entry.get("engine_sha256")
    if recorded is None:
        return folder, "its report does not record which engine it measured (validate again)"
    try:
        manifest = bundle_io.read(folder, verify=True)
    except UserError as exc:
        return folder, str(exc).splitlines()[0]  # the error names the folder already
    if manifest.get(bundle_io.SEAL) != recorded:
        content = entry.get("engine_content_sha256")
        if content and engine_content_sha256(folder) == content:
            return folder, None  # rebuilt since, into the same engine: its files say so
        return folder, f"{folder} was rebuilt after its report was made"
    return folder, None


def _drift(
    engines_b: dict[str, EngineRow], engines_n: dict[str, EngineRow], names: list[str]
) -> dict[str, float]:
    """Per batch size, the median of new p50 / base p50 over every model measured in both."""
    ratios: dict[str, list[float]] = {}
    for name in names:
        b, n = engines_b[name], engines_n[name]
        if b.get("status") == "kit" or n.get("status") == "kit":
            continue
        if b.get("measured_on") or n.get("measured_on"):
            continue
        for batch in set(b["latency"]) & set(n["latency"]):
            common = _on_one_clock(b["latency"][batch], n["latency"][batch])
            if common is not None and common[0]["p50_ms"] > 0:
                ratios.setdefault(batch, []).append(common[1]["p50_ms"] / common[0]["p50_ms"])
    return {batch: float(statistics.median(r)) for batch, r in ratios.items()}


TWO_CLOCKS = "wall (the reports' own clocks differ)"


def _on_one_clock(lb: Latency, ln: Latency) -> tuple[Latency, Latency] | None:
    """Base and new latency entries on one clock: as they are when one clock timed both, else
    their wall-clock medians (without intervals); None when a wall-clock median is missing."""
    if clock_of(lb) == clock_of(ln):
        return lb, ln
    wb, wn = wall_p50_of(lb), wall_p50_of(ln)
    if wb is None or wn is None:
        return None
    return {"p50_ms": wb, "clock": TWO_CLOCKS}, {"p50_ms": wn, "clock": TWO_CLOCKS}


def _ci(lat: Latency) -> tuple[float, float, float]:
    p50 = float(lat["p50_ms"])
    lo, hi = lat.get("p50_ci_low_ms"), lat.get("p50_ci_high_ms")
    return float(p50 if lo is None else lo), p50, float(p50 if hi is None else hi)


def _judge(change_pct: float, tol_pct: float, separated: bool, better: bool, judge: bool) -> str:
    if not judge:
        return "not compared"
    if change_pct > tol_pct + PERCENT_SLACK and separated:
        return "REGRESSION"
    return "improved" if better and change_pct < -tol_pct else "ok"


def _drift_row(
    name: str, batch: str, lb: Latency, ln: Latency, drift: float,
    tol: RegressionTolerance, judge: bool, yardstick: bool,
) -> Row:  # fmt: skip
    """The engine's p50 with the machine's drift divided out, judged with its interval."""
    b, n = _ci(lb), _ci(ln)
    new, new_lo, new_hi = n[1] / drift, n[0] / drift, n[2] / drift
    change = (new / b[1] - 1) * 100 if b[1] else 0.0
    if yardstick and judge:
        status = "shown"  # the float model: the yardstick, not a product
    else:
        status = _judge(change, tol.latency_pct, new_lo > b[2], new_hi < b[0], judge)
    return Row(name, f"p50 ms b{batch} (drift-corrected)", round(b[1], 4), round(new, 4),
               f"{change:+.1f}%", status)  # fmt: skip


def _absolute_row(
    name: str,
    batch: str,
    lb: Latency,
    ln: Latency,
    tol: RegressionTolerance,
    judge: bool,
) -> Row:
    b, n = _ci(lb), _ci(ln)
    change = (n[1] / b[1] - 1) * 100 if b[1] else 0.0
    if tol.latency_abs_pct is None:
        status = "shown" if judge else "not compared"
    else:
        status = _judge(change, tol.latency_abs_pct, n[0] > b[2], n[2] < b[0], judge)
    return Row(name, f"p50 ms b{batch}", round(b[1], 4), round(n[1], 4), f"{change:+.1f}%",
               status)  # fmt: skip


def _number(v: object) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _accuracy_rows(name: str, b: EngineRow, n: EngineRow, tol: RegressionTolerance) -> list[Row]:
    """Top-1 and agreement rows. A measurement that is not a number (NaN, or null where the
    report had NaN) fails: it can never be "ok"."""
    rows = []
    ab, an = b["accuracy"], n["accuracy"]
    tb, tn = ab.get("top1_fraction"), an.get("top1_fraction")
    gb, gn = ab.get("agreement_fraction"), an.get("agreement_fraction")
    if not _number(gn) or (tn is not None and not _number(tn)):
        return [Row(name, "accuracy", None, None, "not a number in the new report",
                    "REGRESSION")]  # fmt: skip
    if not _number(gb) or (tb is not None and not _number(tb)):
        return [Row(name, "accuracy", None, None, "not a number in the base report",
                    "not compared")]  # fmt: skip
    if tb is not None and tn is not None:
        drop = top1_drop_points(tb, tn)  # the new engine against the base one
        status = _accuracy_status(judge("max_top1_drop", tol.top1_points, drop), drop)
        rows.append(Row(name, "top-1 % (drop in points)", round(tb * 100, 2), round(tn * 100, 2),
                        f"{drop:+.2f} points", status))  # fmt: skip
    elif tb is not None or tn is not None:
        rows.append(Row(name, "top-1 % (drop in points)", tb, tn, "one report has no labels",
                        "not compared"))  # fmt: skip
    d = gb - gn
    status = _accuracy_status(judge("max_agreement_drop", tol.agreement, d), d)
    rows.append(Row(name, "agreement (drop as a fraction)", round(gb, 4), round(gn, 4),
                    f"{d:+.4f}", status))  # fmt: skip
    return rows


def _accuracy_status(verdict: str, drop: float) -> str:
    """A row's status from :func:`dense_edge.accuracy.judge`'s verdict on a drop."""
    if verdict == "fail":
        return "REGRESSION"
    return "improved" if drop < 0 else "ok"


def _pct_row(
    name: str, metric: str, base: float, new: float, pct: float, *, judge: bool = True
) -> Row:
    change = (new - base) / base * 100 if base else 0.0
    if not judge:
        status = "not compared"
    elif change > pct + PERCENT_SLACK:
        status = "REGRESSION"
    else:
        status = "improved" if change < -pct else "ok"
    return Row(name, metric, round(base, 4), round(new, 4), f"{change:+.1f}%", status)
