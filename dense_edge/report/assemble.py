"""The run's report: what validation measured here, plus the rows it cannot measure.

Validation (:func:`dense_edge.validate.stage.validate_stage`) only measures. Two kinds of row
are not measured by it, and the report layer adds them here before the conclusions are drawn
again from every row:

- **kit rows**: a requested engine that could not be built here, only written as a device
  build kit (``RUN/kits/<engine>/``): shown as ``kit``, nothing measured;
- **device rows**: rows of the run's last report measured on a device (``report merge``): they
  cannot be measured again here, so they are kept, re-checked against today's budgets, as long
  as they measured the same model (the weights' sha256); a device row takes the place of its
  own kit row.

Neither is added when the float reference is unsound (nothing is judged against it).
"""

from __future__ import annotations

import json
from pathlib import Path

from dense_edge.recipe import Recipe
from dense_edge.records import REPORT_FILE, EngineRow, Report
from dense_edge.report.schema import engine_row
from dense_edge.rundir import RunDir
from dense_edge.validate import budgets as budgets_mod
from dense_edge.validate import verdict as verdict_mod
from dense_edge.validate.stage import engine_dirs, requested_engines, validate_stage


def assemble(
    recipe: Recipe,
    run: RunDir,
    *,
    engines: list[str] | None = None,
    budgets: budgets_mod.Budgets | None = None,
) -> Report:
    """Validate the run, then add the kit rows and the last report's device rows (unwritten)."""
    kits = kit_folders(recipe, run, engines)
    device_rows = previous_device_rows(run.report)
    report = validate_stage(recipe, run, engines=engines, budgets=budgets, kits=list(kits))
    return add_rows_not_measured_here(report, run, kits, device_rows)


def kit_folders(recipe: Recipe, run: RunDir, engines: list[str] | None) -> dict[str, Path]:
    """The requested engines that are not built, only written as device kits: name -> kit."""
    present = {p.name for p in engine_dirs(run)}
    return {n: run.root / "kits" / n for n in requested_engines(recipe, engines)
            if n not in present and (run.root / "kits" / n).is_dir()}  # fmt: skip


def kit_row(name: str, kit: Path, run: RunDir) -> EngineRow:
    """The row of an engine written only as a kit here: nothing measured, not built."""
    target, _, precision = name.partition("-")
    path = str(kit.relative_to(run.root)) if kit.is_relative_to(run.root) else str(kit)
    return {"name": name, "target": target, "precision": precision, "status": "kit",
            "kit_path": path, "budget_status": "not built"}  # fmt: skip


def previous_device_rows(folder: Path) -> tuple[str | None, list[EngineRow]]:
    """The weights the run's last report measured (its ``model.weights_sha256``) and its device
    rows; none when there is no last report or it is unreadable (never an error: the new report
    replaces it). A row that is not an engine row is left out."""
    try:
        data = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, []
    if not isinstance(data, dict):
        return None, []
    model = data.get("model")
    weights = model.get("weights_sha256") if isinstance(model, dict) else None
    rows = []
    for e in data.get("engines", []):
        if isinstance(e, dict) and e.get("measured_on"):
            try:
                rows.append(engine_row(e))
            except ValueError:
                continue
    return weights, rows


def add_rows_not_measured_here(
    report: Report,
    run: RunDir,
    kits: dict[str, Path],
    previous: tuple[str | None, list[EngineRow]],
) -> Report:
    """``report`` with the kit rows and the last report's device rows (``previous``, from
    :func:`previous_device_rows`) added, and its conclusions drawn again from every row."""
    if report["reference_check"]["status"] == "unsound":
        return report
    rows = report["engines"] + [kit_row(n, k, run) for n, k in kits.items()]
    weights, device_rows = previous
    if device_rows and weights == report["model"]["weights_sha256"]:
        rows = _with_device_rows(rows, device_rows, budgets_mod.Budgets.of(report))
    targets = list(dict.fromkeys(
        [r["target"] for r in report["recommendations"]]
        + [e["target"] for e in rows if not e.get("is_reference")]
    ))  # fmt: skip
    return verdict_mod.decide_again(report, rows, targets)


def _with_device_rows(
    rows: list[EngineRow], device_rows: list[EngineRow], b: budgets_mod.Budgets
) -> list[EngineRow]:
    """``rows`` without the kit rows the device rows take the place of, then the device rows
    not already present, their budgets checked again."""
    names = {e["name"] for e in device_rows}
    kept = [e for e in rows if not (e.get("status") == "kit" and e["name"] in names)]
    have = {e["name"] for e in kept}
    for e in device_rows:
        if e["name"] in have:
            continue
        budgets_mod.check_row(e, b)
        kept.append(e)
    return kept
