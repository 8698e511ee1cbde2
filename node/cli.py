"""The operator's command line: a thin layer over the library.

Errors are turned into one line on stderr and an exit code in exactly one place
(`_exit_code`): 2 for bad input, 3 for a bad data dir or config, 4 for a store problem,
1 for anything that went wrong with a peer. No traceback reaches an operator for an error
the node raised on purpose.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from node import __version__, report
from node.config import NodeConfig
from node.datadir import DataDir
from node.errors import (
    ConfigError,
    ImportRejected,
    InputError,
    NodeError,
    PeerError,
    StoreError,
)
from node.identity import MemberCard
from node.ingest import import_file
from node.psi import tagset
from node.psi.matcher import Matcher
from node.psi.types import KindSummary, MatchProgress
from node.store import Store
from node.store.peers import PeerRecord
from node.transport.client import PeerClient, health_check
from node.transport.server import NodeServer

ENV_DATA_DIR = "AIF_NODE_DATA_DIR"


def _console(stderr: bool) -> Console:
    """Lines are never broken for width (output is grepped and logged); tables get room."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


_err = _console(stderr=True)
_out = _console(stderr=False)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "aif-node"


def _exit_code(exc: NodeError) -> int:
    if isinstance(exc, InputError):
        return 2
    if isinstance(exc, ConfigError):
        return 3
    if isinstance(exc, StoreError):
        return 4
    if isinstance(exc, PeerError):
        return 1
    return 1


def _fail(message: str, code: int) -> NoReturn:
    _err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    raise SystemExit(code)


class _NodeGroup(click.Group):
    """Runs subcommands with the node's error mapping."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImportRejected as exc:
            for line, reason in exc.problems:
                _err.print(f"{exc.path}:{line}: {reason}", markup=False, soft_wrap=True)
            more = exc.total_bad - len(exc.problems)
            if more > 0:
                _err.print(f"... and {more} more invalid row(s)", markup=False)
            _fail(
                f"{exc.path}: {exc.total_bad} invalid row(s); nothing was imported "
                "(fix them, or pass --skip-invalid to import the valid rows)",
                2,
            )
        except NodeError as exc:
            _fail(str(exc), _exit_code(exc))
        except KeyboardInterrupt:
            _fail("interrupted", 130)


@click.group(cls=_NodeGroup)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=ENV_DATA_DIR,
    default=_default_data_dir,
    show_default=f"${ENV_DATA_DIR} or $XDG_DATA_HOME/aif-node",
    help="The node's data directory.",
)
@click.version_option(__version__, prog_name="aif-node")
@click.pass_context
def main(ctx: click.Context, data_dir: Path) -> None:
    """aif-node: find, privately, which clues other alliance members hold too."""
    ctx.obj = DataDir(data_dir)


pass_datadir = click.make_pass_decorator(DataDir)
_format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


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
    _out.print(f"created node {name!r} in {datadir.root}", markup=False)
    _out.print(f"node ID: {identity.node_id}", markup=False)
    _out.print("share your member card with peers: aif-node card > card.json", markup=False)


@main.command()
@pass_datadir
def card(datadir: DataDir) -> None:
    """Print this node's member card (JSON) for peers to pin."""
    click.echo(datadir.card().to_json())


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress display on a terminal; nothing when output is piped or logged."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done: bar.update(task, completed=done)


@main.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", required=True, help="The kind of every value in FILE.")
@click.option("--column", help="Column (CSV) or key (JSON Lines) holding the value.")
@click.option("--label", "labels", multiple=True, help="Label added to every row (repeatable).")
@click.option("--skip-invalid", is_flag=True, help="Import valid rows, report the others.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of FILE.")
@pass_datadir
def import_(
    datadir: DataDir,
    file: Path,
    kind: str,
    column: str | None,
    labels: tuple[str, ...],
    skip_invalid: bool,
    encoding: str,
) -> None:
    """Import clues from CSV or JSON Lines, all or nothing."""
    registry = datadir.kinds()
    with datadir.open_store() as store, _progress(f"importing {file.name}") as progress:
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
        )
    _out.print(
        f"{file}: {result.rows_read} row(s) read, {result.inserted} new, "
        f"{result.merged} merged with existing records",
        markup=False,
    )
    if result.skipped:
        _err.print(f"{file}: skipped {result.skipped} invalid row(s):", markup=False)
        for reason, count in result.skipped_reasons.most_common():
            _err.print(f"  {count:>8}  {reason}", markup=False)


@main.command()
@_format_option
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
    _out.print(table)


# --- peers -----------------------------------------------------------------------------------


def _split_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(sorted({v.strip() for v in value.split(",") if v.strip()}))
    if not items:
        raise InputError("expected a comma-separated list, got nothing")
    return items


def _audit_local(datadir: DataDir, action: str, peer: PeerRecord | None, detail: str) -> None:
    with datadir.open_store() as store:
        store.audit.append(
            datadir.audit_key(),
            "local",
            peer.node_id if peer else None,
            peer.name if peer else None,
            action,
            (),
            0,
            0,
            "OK",
            detail,
        )


@main.group()
def peers() -> None:
    """Pin, list and remove peers (takes effect on a running server at once)."""


@peers.command(name="add")
@click.argument("card_file", metavar="CARD.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kinds", help="Kinds the peer may match (comma-separated); default all.")
@click.option("--labels", help="Labels the peer may see (comma-separated); default all.")
@click.option("--budget", type=click.IntRange(min=0), help="Evaluations per epoch.")
@pass_datadir
def peers_add(
    datadir: DataDir,
    card_file: Path,
    kinds: str | None,
    labels: str | None,
    budget: int | None,
) -> None:
    """Pin the peer described by a member card."""
    config = datadir.config()
    card = MemberCard.load(card_file)
    if card.node_id == datadir.identity().node_id:
        raise InputError(f"{card_file}: this is this node's own card; pin other members' cards")
    kind_list = _split_list(kinds)
    registry = datadir.kinds()
    for kind in kind_list or ():
        registry.check(kind)
    record = PeerRecord(
        node_id=str(card.node_id),
        name=card.name,
        cert_pem=card.cert_pem.decode(),
        addresses=card.addresses,
        kinds=kind_list,
        labels=_split_list(labels),
        budget=config.default_peer_budget if budget is None else budget,
        policy_version=0,
        added_at="",
    )
    with datadir.open_store() as store:
        stored = store.peers.add(record)
    _audit_local(datadir, "peers.add", stored, f"budget {stored.budget}")
    _out.print(f"pinned {stored.name!r} ({stored.node_id})", markup=False)


@peers.command(name="list")
@_format_option
@pass_datadir
def peers_list(datadir: DataDir, fmt: str) -> None:
    """List pinned peers and their policies."""
    with datadir.open_store() as store:
        pinned = store.peers.list()
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "node_id": p.node_id,
                        "addresses": list(p.addresses),
                        "kinds": list(p.kinds) if p.kinds is not None else None,
                        "labels": list(p.labels) if p.labels is not None else None,
                        "budget": p.budget,
                    }
                    for p in pinned
                ],
                indent=2,
            )
        )
        return
    table = Table("name", "node ID", "addresses", "kinds", "labels", "budget/epoch")
    for p in pinned:
        table.add_row(
            p.name,
            p.node_id,
            ", ".join(p.addresses),
            ", ".join(p.kinds) if p.kinds is not None else "all",
            ", ".join(p.labels) if p.labels is not None else "all",
            f"{p.budget:,}",
        )
    _out.print(table)


@peers.command(name="remove")
@click.argument("peer", metavar="NAME|ID")
@pass_datadir
def peers_remove(datadir: DataDir, peer: str) -> None:
    """Unpin a peer: its next call is refused; its matches are forgotten."""
    with datadir.open_store() as store:
        removed = store.peers.remove(peer)
    _audit_local(datadir, "peers.remove", removed, "")
    _out.print(f"removed {removed.name!r} ({removed.node_id})", markup=False)


# --- serve and health --------------------------------------------------------------------------


def _refresh_loop(datadir: DataDir, stop: threading.Event, interval: float) -> None:
    """Keep the tag sets current in the background, so a peer's sync finds them ready."""
    log = logging.getLogger("node.serve")
    while not stop.is_set():
        try:
            with datadir.open_store() as store:
                for result in tagset.refresh(store, datadir.keyring):
                    if result.evaluated or result.updated or result.removed:
                        log.info(
                            "tag set %s epoch %d: %d new, %d changed, %d removed (version %d)",
                            result.kind,
                            result.epoch,
                            result.evaluated,
                            result.updated,
                            result.removed,
                            result.version,
                        )
        except NodeError as exc:
            log.error("tag set refresh failed: %s", exc)
        stop.wait(interval)


@main.command()
@click.option("--listen", metavar="HOST:PORT", envvar="AIF_NODE_LISTEN", help="Override config.")
@click.option(
    "--grace",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds for calls in flight at shutdown.",
)
@pass_datadir
def serve(datadir: DataDir, listen: str | None, grace: float) -> None:
    """Serve pinned peers until SIGTERM or Ctrl-C."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = datadir.config()
    if listen:
        config = config.with_listen(listen)
    server = NodeServer(
        identity=datadir.identity(),
        name=config.name,
        listen=config.listen,
        open_store=datadir.open_store,
        keyring=datadir.keyring,
        kinds=datadir.kinds(),
        audit_key=datadir.audit_key(),
        limits=config.serve,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    refresher = threading.Thread(
        target=_refresh_loop, args=(datadir, stop, 5.0), name="tagset-refresh", daemon=True
    )
    server.start()
    refresher.start()
    try:
        stop.wait()
    finally:
        server.stop(grace)
        refresher.join(timeout=grace)


@main.command()
@click.option("--timeout", type=float, default=5.0, show_default=True)
@pass_datadir
def health(datadir: DataDir, timeout: float) -> None:
    """Exit 0 when this node's server answers SERVING (for container health checks)."""
    status = health_check(datadir.config().listen, datadir.identity(), timeout_s=timeout)
    click.echo(status)
    if status != "SERVING":
        raise SystemExit(1)


# --- match and report --------------------------------------------------------------------------


@contextmanager
def _match_progress(peer: str) -> Iterator[Callable[[MatchProgress], None] | None]:
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=_err, transient=True) as bar:
        tasks: dict[tuple[str, str], Any] = {}

        def update(p: MatchProgress) -> None:
            key = (p.kind, p.stage)
            if key not in tasks:
                tasks[key] = bar.add_task(f"{peer} {p.kind} {p.stage}", total=p.total or None)
            bar.update(tasks[key], completed=p.done, total=p.total or None)

        yield update


def _summary_dict(peer: PeerRecord, summaries: list[KindSummary]) -> dict[str, Any]:
    return {
        "peer": peer.name,
        "node_id": peer.node_id,
        "ok": True,
        "kinds": [
            {
                "kind": s.kind,
                "evaluated": s.evaluated,
                "cached": s.cached,
                "tags_received": s.tags_received,
                "tags_removed": s.tags_removed,
                "full_sync": s.full_sync,
                "peer_set_size": s.peer_set_size,
                "matches": s.matches,
                "new_matches": s.new_matches,
                "labels_undecryptable": s.labels_undecryptable,
                "skipped": s.skipped,
            }
            for s in summaries
        ],
    }


@main.command()
@click.option("--peer", "peer_names", multiple=True, metavar="NAME|ID", help="Default: all.")
@click.option("--kind", "kinds", multiple=True, help="Default: every kind held.")
@_format_option
@pass_datadir
def match(datadir: DataDir, peer_names: tuple[str, ...], kinds: tuple[str, ...], fmt: str) -> None:
    """Match our clues against peers; exit 1 if any peer failed."""
    config = datadir.config()
    identity = datadir.identity()
    audit_key = datadir.audit_key()
    registry = datadir.kinds()
    for kind in kinds:
        registry.check(kind)
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    with datadir.open_store() as store:
        targets = [store.peers.find(n) for n in peer_names] if peer_names else store.peers.list()
        if not targets:
            raise InputError("no peers pinned; pin one with: aif-node peers add CARD.json")
        for peer in targets:
            client = PeerClient(
                peer, identity, config.match, max_message_bytes=config.serve.max_message_bytes
            )
            matcher = Matcher(store, peer, client, batch_elements=config.match.batch_elements)
            try:
                with _match_progress(peer.name) as progress:
                    summaries = matcher.match(list(kinds) or None, progress)
            except NodeError as exc:
                failures.append(f"peer {peer.name!r}: {exc}")
                results.append(
                    {"peer": peer.name, "node_id": peer.node_id, "ok": False, "error": str(exc)}
                )
                store.audit.append(
                    audit_key,
                    "initiated",
                    peer.node_id,
                    peer.name,
                    "match",
                    list(kinds),
                    0,
                    0,
                    type(exc).__name__,
                    str(exc),
                )
                continue
            finally:
                client.close()
            results.append(_summary_dict(peer, summaries))
            store.audit.append(
                audit_key,
                "initiated",
                peer.node_id,
                peer.name,
                "match",
                [s.kind for s in summaries if s.skipped is None],
                sum(s.evaluated for s in summaries),
                sum(s.matches for s in summaries),
                "OK",
                f"{sum(s.cached for s in summaries)} cached, "
                f"{sum(s.tags_received for s in summaries)} tags received",
            )
    if fmt == "json":
        click.echo(json.dumps(results, indent=2))
    else:
        table = Table("peer", "kind", "evaluated", "cached", "peer set", "matches", "note")
        for r in results:
            if not r["ok"]:
                table.add_row(r["peer"], "-", "-", "-", "-", "-", "FAILED")
                continue
            for k in r["kinds"]:
                note = k["skipped"] or (
                    f"labels unreadable: {k['labels_undecryptable']}"
                    if k["labels_undecryptable"]
                    else ""
                )
                table.add_row(
                    r["peer"],
                    k["kind"],
                    f"{k['evaluated']:,}",
                    f"{k['cached']:,}",
                    f"{k['peer_set_size']:,}",
                    f"{k['matches']:,}",
                    note,
                )
        _out.print(table)
    for line in failures:
        _err.print(f"match failed: {line}", markup=False, soft_wrap=True)
    if failures:
        raise SystemExit(1)


@main.command(name="report")
@click.option("--format", "fmt", type=click.Choice(report.FORMATS), default="table")
@click.option("--min-peers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--kind", help="Only this kind.")
@pass_datadir
def report_(datadir: DataDir, fmt: str, min_peers: int, kind: str | None) -> None:
    """Our clues that peers hold too, with the labels they shared."""
    if kind is not None:
        datadir.kinds().check(kind)
    with datadir.open_store() as store:
        collisions = store.matches.collisions(min_peers, kind)
    if fmt == "json":
        click.echo(report.to_json(collisions))
    elif fmt == "csv":
        click.echo(report.to_csv(collisions), nl=False)
    elif fmt == "html":
        click.echo(report.to_html(collisions, datadir.config().name), nl=False)
    else:
        table = Table(
            "kind", "value", "peers", "their labels", title=f"{len(collisions)} collision(s)"
        )
        for row in report.rows(collisions):
            table.add_row(*row)
        _out.print(table)


# --- status, keys, audit -----------------------------------------------------------------------


@main.command()
@_format_option
@pass_datadir
def status(datadir: DataDir, fmt: str) -> None:
    """This node: identity, epoch, records, peers and their budgets."""
    config = datadir.config()
    epoch = datadir.keyring.current_epoch()
    with datadir.open_store() as store:
        counts = [(k, n) for k, label, n in store.records.counts() if label is None]
        peers_ = [_peer_status(store, p, epoch) for p in store.peers.list()]
    info = {
        "name": config.name,
        "node_id": str(datadir.identity().node_id),
        "listen": config.listen,
        "epoch": epoch,
        "records": dict(counts),
        "peers": peers_,
    }
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    _out.print(f"node      {info['name']}  {info['node_id']}", markup=False)
    _out.print(f"listen    {config.listen}    epoch {epoch}", markup=False)
    _out.print("records   " + (", ".join(f"{k}: {n:,}" for k, n in counts) or "none"), markup=False)
    table = Table("peer", "we grant them", "they used", "they grant us", "we have left", "matches")
    for p in peers_:
        grant = p["grant"]
        table.add_row(
            str(p["name"]),
            f"{p['budget']:,}",
            f"{p['used_this_epoch']:,}",
            f"{grant['budget_total']:,}" if grant else "not yet matched",
            f"{grant['budget_remaining']:,} (their epoch {grant['epoch']}, {grant['seen_at'][:16]})"
            if grant
            else "-",
            f"{p['matches']:,}",
        )
    _out.print(table)


def _peer_status(store: Store, peer: PeerRecord, epoch: int) -> dict[str, Any]:
    """Both sides of the budget: what we grant the peer and what it last said it grants us."""
    grant = store.grants.get(peer.node_id)
    return {
        "name": peer.name,
        "node_id": peer.node_id,
        "budget": peer.budget,
        "used_this_epoch": store.budget.used(peer.node_id, epoch),
        "matches": store.matches.match_count(peer.node_id),
        "grant": None
        if grant is None
        else {
            "epoch": grant.epoch,
            "budget_total": grant.budget_total,
            "budget_remaining": grant.budget_remaining,
            "seen_at": grant.seen_at,
        },
    }


@main.group()
def keys() -> None:
    """OPRF key epochs."""


@keys.command(name="rotate")
@pass_datadir
def keys_rotate(datadir: DataDir) -> None:
    """Start a new epoch: peers re-evaluate in full on their next match."""
    datadir.require_node()
    new = datadir.keyring.rotate()
    with datadir.open_store() as store:
        store.budget.forget_before(new.epoch - 1)
    _audit_local(datadir, "keys.rotate", None, f"epoch {new.epoch}")
    _out.print(
        f"epoch {new.epoch} is now current; the tag sets are rebuilt by `serve`", markup=False
    )


@main.group()
def audit() -> None:
    """The keyed, hash-chained audit log."""


@audit.command(name="show")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--peer", metavar="NAME|ID")
@_format_option
@pass_datadir
def audit_show(datadir: DataDir, limit: int, peer: str | None, fmt: str) -> None:
    """The newest entries first."""
    with datadir.open_store() as store:
        entries = list(store.audit.iterate(limit=limit, peer=peer))
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "id": e.id,
                        "at": e.at,
                        "direction": e.direction,
                        "peer_id": e.peer_id,
                        "peer": e.peer_name,
                        "action": e.action,
                        "kinds": list(e.kinds),
                        "elements": e.elements,
                        "results": e.results,
                        "status": e.status,
                        "detail": e.detail,
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return
    table = Table(
        "id", "at", "dir", "peer", "action", "kinds", "elements", "results", "status", "detail"
    )
    for e in entries:
        table.add_row(
            str(e.id),
            e.at[:19],
            e.direction,
            e.peer_name or "-",
            e.action,
            ",".join(e.kinds),
            str(e.elements),
            str(e.results),
            e.status,
            e.detail,
        )
    _out.print(table)


@audit.command(name="verify")
@pass_datadir
def audit_verify(datadir: DataDir) -> None:
    """Check the whole chain; name the first broken entry."""
    with datadir.open_store() as store:
        result = store.audit.verify(datadir.audit_key())
    if result.ok:
        _out.print(f"audit log intact: {result.entries} entries", markup=False)
        return
    _fail(f"audit log broken at entry {result.first_broken}: {result.reason}", 5)
