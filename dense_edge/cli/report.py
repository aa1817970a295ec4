"""``dense-edge report``: show (and re-render) a run's report; ``report compare`` for CI."""

from __future__ import annotations

from pathlib import Path

import click

from dense_edge.cli.options import load, run_dir
from dense_edge.errors import CheckFailed, UserError
from dense_edge.kits.device_report import load_device_report
from dense_edge.progress import print_table, terminal_text
from dense_edge.records import Report
from dense_edge.report import tables
from dense_edge.report.merge import merge_into_run
from dense_edge.report.regression import RegressionTolerance, compare_files, report_path
from dense_edge.report.schema import load as load_report
from dense_edge.report.write import write_reports
from dense_edge.rundir import RunDir, lock
from dense_edge.validate.side_by_side import DEFAULT_ROUNDS


def print_summary(report: Report, folder: Path | None = None) -> None:
    """Verdict, recommendation and engines table; exit 1 unless the verdict is PASSED."""
    header = tables.header_lines(report)
    for line in header[1:]:
        if line.startswith("  - "):
            continue  # the verdict's reasons come last, with the verdict
        click.secho(terminal_text(line), fg="red" if line.startswith("WARNING") else None,
                    err=True)  # fmt: skip
    # The terminal gets the columns people read first; report.md/html have them all.
    columns = tables.summary_columns(report)
    rows = tables.summary_rows(report)
    drop = {"top-5", "cold start s", "peak MiB", "size MiB"}
    if all(r[1] in ("measured here", "reference") for r in rows):
        drop.add("status")
    keep = [i for i, c in enumerate(columns) if c not in drop]
    print_table(
        f"{report.get('recipe', '')}: {report['evaluation']['samples']} images",
        [columns[i] for i in keep],
        [[row[i] for i in keep] for row in rows],
    )
    click.echo(terminal_text(tables.clock_note(report)), err=True)
    print_table("recommendation", tables.RECOMMENDATION_COLUMNS, tables.recommendation_rows(report))
    if folder is not None:
        click.echo(f"report: {folder / 'report.html'} (also report.md, report.json)")
    state = report["verdict"]
    if state != "PASSED":
        reasons = report.get("verdict_reasons", [])
        for reason in reasons:
            click.secho(terminal_text(f"  {state}: {reason}"), fg="red", err=True)
        first = terminal_text(reasons[0]) if reasons else "see the report"
        raise CheckFailed(f"{state}: {first}")
    click.secho("PASSED", fg="green")


@click.group(invoke_without_command=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@click.option(
    "--recipe",
    "recipe_path",
    type=click.Path(path_type=Path),
    help="Recipe (for its run directory).",
)
@click.pass_context
def report(ctx: click.Context, out: Path | None, recipe_path: Path | None) -> None:
    """Show a run's report and re-render report.md/report.html from report.json."""
    if ctx.invoked_subcommand is not None:
        return

    run = run_dir(load(recipe_path, ()), out)
    data = load_report(run.report / "report.json")
    write_reports(data, run.report)
    print_summary(data, run.report)


@report.command()
@click.argument("base", type=click.Path(exists=True, path_type=Path))
@click.argument("new", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    metavar="KEY=N",
    help="top1=POINTS (top-1 drop), agreement=FRACTION, paired=PERCENT (new/base timed side "
    "by side), latency=PERCENT (p50 with the machine's drift between the reports divided out; "
    "judges engines not timed side by side), latency_abs=PERCENT (own p50; default: shown, "
    "not judged), size=PERCENT (defaults 0.5, 0.01, 10%, 50%, -, 10%). Latency is judged by "
    "medians and their 95% intervals, never by p99.",
)
@click.option(
    "--side-by-side/--reports-only",
    default=True,
    show_default=True,
    help="Time both versions of every engine still on this machine again, together, in "
    "alternating slices (a shared machine's drift cancels); --reports-only judges the "
    "reports' own numbers.",
)
@click.option(
    "--rounds",
    type=click.IntRange(3, 50),
    default=DEFAULT_ROUNDS,
    show_default=True,
    help="Side-by-side rounds (each: 0.4 s of each version per batch size, in alternating slices).",
)
@click.option("--across-machines", is_flag=True, help="Judge latency even if the machines differ.")
def compare(
    base: Path,
    new: Path,
    tolerances: tuple[str, ...],
    side_by_side: bool,
    rounds: int,
    across_machines: bool,
) -> None:
    """Deltas between two reports (report.json or run folders); exit 1 on a regression."""
    result = compare_files(
        base, new, RegressionTolerance.parse(tolerances), side_by_side=side_by_side, rounds=rounds,
        across_machines=across_machines,
    )  # fmt: skip
    for note in result.notes:
        click.secho(terminal_text(f"note: {note}"), fg="yellow", err=True)
    print_table(
        f"{report_path(base)} -> {report_path(new)}",
        ["engine", "metric", "base", "new", "delta", "status"],
        [[r.engine, r.metric, r.base, r.new, r.delta, r.status] for r in result.rows],
    )
    if result.regressions:
        worst = result.regressions[0]
        raise CheckFailed(
            f"{len(result.regressions)} regression(s) beyond tolerance, e.g. {worst.engine} "
            f"{worst.metric} {worst.delta}"
        )
    click.echo("no regressions beyond tolerance")


@report.command()
@click.argument("device_report", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--run",
    "run_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (default: the one the kit was exported from, if it is here).",
)
def merge(device_report: Path, run_path: Path | None) -> None:
    """Add a device report (the kit's validate.sh) to the run's report, marked where measured."""
    if run_path is None:
        recorded = load_device_report(device_report)["kit"].get("run", {}).get("dir")
        if not recorded or not Path(recorded).is_dir():
            raise UserError(
                "the run this kit came from is not here", path=device_report, fix="pass --run RUN"
            )
        run_path = Path(recorded)
    run = RunDir.at(run_path)
    with lock(run):  # the report is the run's: not while another command writes it
        merged = merge_into_run(device_report, run.report)
    click.echo(f"merged {device_report} into {run.report / 'report.json'}")
    print_summary(merged, run.report)
