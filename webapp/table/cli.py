"""Command-line use of the table."""

import click

from ..errors import ValidationError
from . import bp, services


@bp.cli.command("add-row", context_settings={"ignore_unknown_options": True})
@click.argument("a")
@click.argument("b")
def add_row_command(a: str, b: str) -> None:
    """Add a row A + B and push it to every open browser."""
    try:
        row = services.add_row(a, b)
    except ValidationError as error:
        raise click.BadParameter(str(error)) from error
    click.echo(f"Added row {row.id}: {row.a} + {row.b} = {row.sum}")
