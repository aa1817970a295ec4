"""``dense-edge calibrate``: INT8 calibration and Q/DQ models per target profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dense_edge.calibrate import profiles as profile_registry
from dense_edge.calibrate.checker import check
from dense_edge.calibrate.profiles import PLAN_FILE
from dense_edge.calibrate.stage import SUMMARY_COLUMNS, calibrate_stage, summary_rows
from dense_edge.catalog import FLOAT_PARTS, PROFILES
from dense_edge.cli.options import force_option, load, recipe_options, run_dir
from dense_edge.errors import CheckFailed, UserError
from dense_edge.fileio import read_json
from dense_edge.progress import print_table


@click.command()
@recipe_options
@force_option
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    type=click.Choice(PROFILES),
    help="Target profile (repeatable; default: the recipe's calibration.profiles).",
)
@click.option("--method", type=click.Choice(["minmax", "percentile", "entropy", "mse"]))
@click.option("--percentile", type=float, help="For --method percentile (e.g. 99.99).")
@click.option("--samples", type=int, help="Number of calibration images.")
@click.option(
    "--source",
    help="'data' (the training split), an image folder or a .json calibration manifest.",
)
@click.option(
    "--float-parts",
    type=click.Choice(FLOAT_PARTS),
    help="TensorRT: type of the layers left unquantised (default fp16; I/O stay fp32).",
)
@click.option(
    "--accuracy-aware/--no-accuracy-aware",
    default=None,
    help="Keep layers in float to meet a budget.",
)
@click.option("--max-top1-drop", type=float, help="Accuracy-aware budget: points of top-1.")
@click.option("--min-agreement", type=float, help="Accuracy-aware budget: agreement with float.")
@click.option(
    "--debug", is_flag=True, help="Compare float and int8 layer by layer; print the worst."
)
@click.option(
    "--check",
    "check_model",
    type=click.Path(path_type=Path),
    help="Only check MODEL against --profile's rules and list violations.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Print the tensorrt precision and estimated traffic plan (int8/tensorrt/plan.json).",
)
def calibrate(
    recipe_path: Path | None,
    out: Path | None,
    sets: tuple[str, ...],
    force: bool,
    profiles: tuple[str, ...],
    method: str | None,
    percentile: float | None,
    samples: int | None,
    source: str | None,
    float_parts: str | None,
    accuracy_aware: bool | None,
    max_top1_drop: float | None,
    min_agreement: float | None,
    debug: bool,
    check_model: Path | None,
    explain: bool,
) -> None:
    """Calibrate on real images and write INT8 models for each target profile."""
    if check_model is not None:
        _check(check_model, profiles, explain)
        return
    recipe = load(
        recipe_path,
        sets,
        **{
            "calibration.method": method,
            "calibration.percentile": percentile,
            "calibration.samples": samples,
            "calibration.source": source,
            "calibration.float_parts": float_parts,
            "calibration.accuracy_aware.enabled": accuracy_aware,
            "calibration.accuracy_aware.max_top1_drop": max_top1_drop,
            "calibration.accuracy_aware.min_agreement": min_agreement,
        },
    )
    results = calibrate_stage(
        recipe, run_dir(recipe, out), profiles=list(profiles) or None, force=force, debug=debug
    )
    for r in results:
        if "layers" in r.record:
            print_table(
                f"{r.profile}: worst layers (float vs int8 on 8 calibration images)",
                ["layer", "SNR dB", "cosine"],
                [[e["layer"], e["snr_db"], e["cosine"]] for e in r.record["layers"][:10]],
            )
    print_table("INT8 calibration (validation split)", SUMMARY_COLUMNS, summary_rows(results))
    if explain:
        planned = [r for r in results if profile_registry.get(r.profile).writes_plan]
        if not planned:
            raise click.UsageError(
                f"--explain describes the {_planned_names()} profile: add --profile "
                f"{_planned_names()}"
            )
        _explain_file(planned[0].path.parent / PLAN_FILE)


def _planned_names() -> str:
    return ", ".join(p for p in PROFILES if profile_registry.get(p).writes_plan)


def _explain_file(plan_path: Path) -> None:
    # traffic reads ONNX graphs (it imports onnx): loaded for --explain only
    from dense_edge.calibrate.traffic import explain_lines

    click.echo(f"{plan_path}:")
    for line in explain_lines(read_json(plan_path)):
        click.echo(line)


def _explain_model(model: Path) -> None:
    import onnx

    from dense_edge.calibrate.traffic import explain_lines, plan_record, strip_qdq

    q = onnx.load(str(model))
    for line in explain_lines(plan_record(q, strip_qdq(q))):
        click.echo(line)


def _check(model: Path, profiles: tuple[str, ...], explain: bool = False) -> None:
    if len(profiles) != 1:
        raise UserError("--check needs exactly one --profile", fix="e.g. --profile tensorrt")
    report = check(model, profiles[0])
    if report.violations:
        by_rule: dict[str, list[Any]] = {}
        for v in report.violations:
            by_rule.setdefault(v.rule, []).append(v)
        print_table(
            f"{model}: {len(report.violations)} violations of the {report.profile} rules",
            ["rule", "count", "first node", "problem"],
            [[rule, len(vs), vs[0].node, vs[0].message] for rule, vs in by_rule.items()],
        )
        raise CheckFailed(f"{model} does not follow the {report.profile} profile")
    floats = f", {len(report.float_layers)} kept in float" if report.float_layers else ""
    click.echo(
        f"{model}: follows the {report.profile} profile "
        f"({len(report.quantized_layers)} quantised layers{floats})"
    )
    for note in report.notes:
        click.echo(f"  note: {note}")
    if explain and profile_registry.get(report.profile).writes_plan:
        _explain_model(model)
