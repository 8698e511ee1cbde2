"""The collision report investigators read."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from node import report
from node.cli.app import err, main, out, pass_datadir
from node.datadir import DataDir
from node.errors import InputError
from node.secretfile import write_private
from node.store.matches import Collision


def _table(collisions: Sequence[Collision], since: dt.datetime | None) -> Table:
    title = f"{len(collisions)} collision(s)"
    if since is not None:
        title += f" with a member match at or after {since.isoformat()} (new: *)"
    table = Table("kind", "value", "peers", "their labels", title=title)
    for row in report.rows(collisions, since):
        table.add_row(*row)
    return table


def _write(path: Path, text: str) -> None:
    """Replace `path` atomically, readable by its owner only: the report holds clue values."""
    try:
        write_private(path, text.encode("utf-8"), overwrite=True)
    except OSError as exc:
        raise InputError(f"--output {path}: cannot write: {exc.strerror or exc}") from exc


@main.command(name="report")
@click.option("--format", "fmt", type=click.Choice(report.FORMATS), default="table")
@click.option("--min-peers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--kind", help="Only this kind.")
@click.option(
    "--since",
    metavar="DATE",
    help="Only collisions with a member match at or after DATE (new clues, or a new member "
    "holding a known one): YYYY-MM-DD (midnight UTC) or an ISO 8601 date-time (UTC unless "
    "it has an offset).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE (mode 0600, replaced atomically) instead of standard output.",
)
@pass_datadir
def report_(
    datadir: DataDir,
    fmt: str,
    min_peers: int,
    kind: str | None,
    since: str | None,
    output: Path | None,
) -> None:
    """Our clues that peers hold too, with the labels they shared."""
    when = None if since is None else report.parse_since(since)
    if kind is not None:
        datadir.kinds().check(kind)
    with datadir.open_store() as store:
        collisions = store.matches.collisions(min_peers, kind)
    if when is not None:
        collisions = report.new_since(collisions, when)
    if fmt == "json":
        text = report.to_json(collisions, when)
    elif fmt == "csv":
        text = report.to_csv(collisions, when)
    elif fmt == "html":
        scope = report.Scope(min_peers, kind, when)
        now = dt.datetime.now(dt.UTC)
        text = report.to_html(collisions, datadir.config().name, now, scope)
    elif output is None:
        out.print(_table(collisions, when))
        return
    else:
        buffer = io.StringIO()
        Console(file=buffer, width=200, highlight=False, soft_wrap=True).print(
            _table(collisions, when)
        )
        text = buffer.getvalue()
    if output is None:
        click.echo(text, nl=False)
    else:
        _write(output, text)
        err.print(f"{output}: {len(collisions)} collision(s)", markup=False)
