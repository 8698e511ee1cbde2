"""Matching our clues against peers by hand."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from node.cli.app import err, format_option, main, out, pass_datadir
from node.datadir import DataDir
from node.errors import InputError, MatchInProgress
from node.matching import match_lock, match_peer
from node.psi.types import KindSummary, MatchProgress
from node.store.peers import PeerRecord


@contextmanager
def _match_progress(peer: str) -> Iterator[Callable[[MatchProgress], None] | None]:
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True) as bar:
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
@format_option
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
            try:
                with match_lock(datadir.lock_dir, peer), _match_progress(peer.name) as progress:
                    outcome = match_peer(
                        store,
                        peer,
                        identity=identity,
                        config=config,
                        audit_key=audit_key,
                        kinds=kinds,
                        progress=progress,
                    )
            except MatchInProgress as exc:
                failures.append(str(exc))
                results.append(
                    {"peer": peer.name, "node_id": peer.node_id, "ok": False, "error": str(exc)}
                )
                continue
            if outcome.error is not None:
                failures.append(f"peer {peer.name!r}: {outcome.error}")
                results.append(
                    {
                        "peer": peer.name,
                        "node_id": peer.node_id,
                        "ok": False,
                        "error": str(outcome.error),
                    }
                )
            else:
                results.append(_summary_dict(peer, list(outcome.summaries)))
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
        out.print(table)
    for line in failures:
        err.print(f"match failed: {line}", markup=False, soft_wrap=True)
    if failures:
        raise SystemExit(1)
