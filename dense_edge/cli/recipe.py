"""``dense-edge recipe``: every recipe key with its type, default, bounds and one line."""

from __future__ import annotations

import click

from dense_edge.recipe import reference


@click.command("recipe")
@click.option("--markdown", is_flag=True, help="A Markdown table (the README's reference).")
def recipe(markdown: bool) -> None:
    """List every recipe key: type, default, bounds and what it sets.

    Keys are dotted paths (train.epochs); set them in a recipe file or with --set KEY=VALUE.
    """

    click.echo(reference.markdown() if markdown else reference.text(), nl=False)
