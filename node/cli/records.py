"""Creating a node and putting clues into it: init, card, import, import-query, records."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from node.cli.app import err, format_option, main, out, pass_datadir, progress_bar
from node.config import NodeConfig, parse_duration
from node.datadir import DataDir
from node.errors import InputError
from node.ingest import DEFAULT_STATEMENT_TIMEOUT, ImportResult, import_file, import_query


@main.command()
@click.option("--name", required=True, help="The member's name as peers will see it.")
@click.option("--listen", required=True, metavar="HOST:PORT", help="Address to serve on.")
@click.option(
    "--advertise",
    multiple=True,
    metavar="HOST:PORT",
    help="Address peers dial (repeatable); defaults to --listen.",
)
@click.option("--opaque-kind", "opaque", multiple=True, help="An operator-defined kind.")
@pass_datadir
def init(
    datadir: DataDir, name: str, listen: str, advertise: tuple[str, ...], opaque: tuple[str, ...]
) -> None:
    """Create a node: config, TLS identity and the first OPRF epoch key."""
    config = NodeConfig(name=name, listen=listen, advertise=advertise, opaque_kinds=opaque)
    identity = datadir.init(config)
    out.print(f"created node {name!r} in {datadir.root}", markup=False)
    out.print(f"node ID: {identity.node_id}", markup=False)
    out.print("share your member card with peers: aif-node card > card.json", markup=False)


@main.command()
@pass_datadir
def card(datadir: DataDir) -> None:
    """Print this node's member card (JSON) for peers to pin."""
    click.echo(datadir.card().to_json())


_LABEL_HELP = "Label added to every row (repeatable)."
_SKIP_HELP = "Import the valid rows and report the others, instead of importing nothing."


@main.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", required=True, help="The kind of every value in FILE.")
@click.option("--column", help="Column (CSV, Excel) or key (JSON Lines) holding the value.")
@click.option("--label", "labels", multiple=True, help=_LABEL_HELP)
@click.option("--skip-invalid", is_flag=True, help=_SKIP_HELP)
@click.option("--encoding", help="Text encoding of a CSV or JSON Lines FILE.  [default: utf-8]")
@click.option("--sheet", help="Worksheet of an Excel FILE.  [default: the first]")
@pass_datadir
def import_(
    datadir: DataDir,
    file: Path,
    kind: str,
    column: str | None,
    labels: tuple[str, ...],
    skip_invalid: bool,
    encoding: str | None,
    sheet: str | None,
) -> None:
    """Import clues from CSV, JSON Lines or Excel (.xlsx), all or nothing.

    The format follows the extension: .xlsx/.xlsm are Excel workbooks (the header is the
    first non-empty row), .jsonl/.ndjson JSON Lines, anything else CSV.
    """
    registry = datadir.kinds()
    with datadir.open_store() as store, progress_bar(f"importing {file.name}") as progress:
        result = import_file(
            store,
            file,
            kind,
            registry,
            column=column,
            labels=labels,
            skip_invalid=skip_invalid,
            encoding=encoding,
            progress=progress,
            sheet=sheet,
        )
    _report(result)


@main.command(name="import-query")
@click.option(
    "--dsn",
    required=True,
    envvar="AIF_NODE_IMPORT_DSN",
    help="PostgreSQL connection string, URI or 'service=NAME' (env AIF_NODE_IMPORT_DSN). "
    "Keep the password out of it: use a service file (~/.pg_service.conf) and a password "
    "file (~/.pgpass, PGPASSFILE).",
)
@click.option("--query", help="The SQL query returning the clues.")
@click.option(
    "--query-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File holding the SQL query.",
)
@click.option("--kind", required=True, help="The kind of every value the query returns.")
@click.option("--column", help="Result column holding the value.")
@click.option("--label", "labels", multiple=True, help=_LABEL_HELP)
@click.option("--skip-invalid", is_flag=True, help=_SKIP_HELP)
@click.option(
    "--statement-timeout",
    default=f"{DEFAULT_STATEMENT_TIMEOUT / 60:.0f}m",
    show_default=True,
    help="Longest each statement may run on the server (90s, 10m, 1h).",
)
@pass_datadir
def import_query_(
    datadir: DataDir,
    dsn: str,
    query: str | None,
    query_file: Path | None,
    kind: str,
    column: str | None,
    labels: tuple[str, ...],
    skip_invalid: bool,
    statement_timeout: str,
) -> None:
    """Import clues from a PostgreSQL query, all or nothing.

    The query runs in a read-only transaction, so an import can never change the database.
    Result columns are picked by name as in a CSV header: the value (named like --kind, or
    --column), and optionally labels (text or text[]), first_seen, last_seen (date) and ref.
    """
    if (query is None) == (query_file is None):
        raise InputError("give the SQL with exactly one of --query and --query-file")
    if query_file is not None:
        try:
            query = query_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{query_file}: cannot read: {exc}") from None
    assert query is not None
    try:
        timeout = parse_duration(statement_timeout)
    except ValueError as exc:
        raise InputError(f"--statement-timeout: {exc}") from None
    registry = datadir.kinds()
    with datadir.open_store() as store, progress_bar("importing query rows") as progress:
        result = import_query(
            store,
            dsn,
            query,
            kind,
            registry,
            column=column,
            labels=labels,
            skip_invalid=skip_invalid,
            statement_timeout=timeout,
            progress=progress,
        )
    _report(result)


def _report(result: ImportResult) -> None:
    out.print(
        f"{result.path}: {result.rows_read} row(s) read, {result.inserted} new, "
        f"{result.merged} merged with existing records",
        markup=False,
    )
    if result.skipped:
        err.print(f"{result.path}: skipped {result.skipped} invalid row(s):", markup=False)
        for reason, count in result.skipped_reasons.most_common():
            err.print(f"  {count:>8}  {reason}", markup=False)


@main.command()
@format_option
@pass_datadir
def records(datadir: DataDir, fmt: str) -> None:
    """Show record counts per kind and per label."""
    with datadir.open_store() as store:
        counts = store.records.counts()
    if fmt == "json":
        click.echo(
            json.dumps(
                [{"kind": k, "label": label, "count": n} for k, label, n in counts], indent=2
            )
        )
        return
    table = Table("kind", "label", "records")
    for kind, label, n in counts:
        table.add_row(kind, label if label is not None else "(all)", str(n))
    out.print(table)
