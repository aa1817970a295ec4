"""The ``dense-edge`` command: one thin module per stage, all real work in the library."""

from __future__ import annotations

import sys

import click

from dense_edge import tempdata
from dense_edge._version import __version__
from dense_edge.cli import (
    bundle,
    calibrate,
    compile,
    doctor,
    export,
    kit,
    recipe,
    report,
    run,
    train,
    validate,
)
from dense_edge.errors import CheckFailed, UserError


class _Group(click.Group):
    """Turns known errors into one line and an exit code; bugs keep their traceback."""

    def invoke(self, ctx: click.Context) -> object:
        tempdata.sweep()  # what a killed command left in the temporary folder
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except CheckFailed as exc:
            click.secho(f"failed: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # pipeline order, not alphabetical


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dense-edge")
def cli() -> None:
    """DenseNet from PyTorch to edge engines, with proof that each engine is the same model.

    Pipeline: train -> export -> calibrate -> compile -> validate -> report.
    `dense-edge run RECIPE` runs all of it; each stage also runs alone.
    """


def _register() -> None:
    cli.add_command(train.train)
    cli.add_command(export.export)
    cli.add_command(calibrate.calibrate)
    cli.add_command(compile.compile_cmd)
    cli.add_command(validate.validate)
    cli.add_command(report.report)
    cli.add_command(run.run)
    cli.add_command(bundle.bundle)
    cli.add_command(kit.kit)
    cli.add_command(doctor.doctor)
    cli.add_command(recipe.recipe)


_register()


def main() -> None:
    cli(prog_name="dense-edge")
