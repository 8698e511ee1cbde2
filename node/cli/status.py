"""The node at a glance: identity, epoch, records, and per peer its reachability, matches and
budgets both ways."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from node.cli.app import format_option, main, out, pass_datadir
from node.datadir import DataDir
from node.store import Store
from node.store.peers import PeerRecord
from node.store.runs import MatchRun
from node.transport.probe import DEFAULT_TIMEOUT_S, Reachability, probe_peers


@main.command()
@format_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for each peer's health check.",
)
@click.option("--no-probe", is_flag=True, help="Do not check whether peers are reachable.")
@pass_datadir
def status(datadir: DataDir, fmt: str, timeout: float, no_probe: bool) -> None:
    """This node: identity, epoch, records, and per peer its reachability, matches and
    budgets.

    Reachability is one health check per peer address, all at once, over mutual TLS: it
    costs no budget on either side.

    \b
    --format json gives one object:
      name, node_id, listen, epoch   this node
      records                        {kind: live records}
      peers                          a list, one object per pinned peer:
        name, node_id, addresses
        reachability                 null with --no-probe, else {reachable, address,
                                     latency_ms, error}
        budget, used_this_epoch      what we grant it and what it used this epoch
        grant                        null until matched, else what it grants us as it last
                                     said: {epoch, budget_total, budget_remaining, seen_at}
        matches                      our records it holds too
        last_match                   null, or the newest match we started: {trigger,
                                     started_at, finished_at, status, error, evaluated,
                                     matches, new_matches} (times UTC ISO 8601)
        last_successful_match        null, or the same for the newest that succeeded
    """
    config = datadir.config()
    epoch = datadir.keyring.current_epoch()
    with datadir.open_store() as store:
        counts = dict(sorted(store.records.live_counts().items()))
        pinned = store.peers.list()
        peers_ = [_peer_status(store, p, epoch) for p in pinned]
    reach = {} if no_probe else probe_peers(pinned, datadir.identity(), timeout)
    for p in peers_:
        found = reach.get(p["node_id"])
        p["reachability"] = None if found is None else _reachability(found)
    info = {
        "name": config.name,
        "node_id": str(datadir.identity().node_id),
        "listen": config.listen,
        "epoch": epoch,
        "records": counts,
        "peers": peers_,
    }
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    records = ", ".join(f"{k}: {n:,}" for k, n in counts.items())
    out.print(f"node      {info['name']}  {info['node_id']}", markup=False)
    out.print(f"listen    {config.listen}    epoch {epoch}", markup=False)
    out.print("records   " + (records or "none"), markup=False)
    table = Table(
        "peer",
        "reachability",
        "last match (UTC)",
        "last success (UTC)",
        "matches",
        "we grant them",
        "they used",
        "they grant us",
        "we have left",
    )
    for p, peer in zip(peers_, pinned, strict=True):
        grant = p["grant"]
        found = reach.get(peer.node_id)
        table.add_row(
            str(p["name"]),
            "not probed" if found is None else str(found),
            _run_cell(p["last_match"], detail=True),
            _run_cell(p["last_successful_match"], detail=False),
            f"{p['matches']:,}",
            f"{p['budget']:,}",
            f"{p['used_this_epoch']:,}",
            f"{grant['budget_total']:,}" if grant else "not yet matched",
            f"{grant['budget_remaining']:,} (their epoch {grant['epoch']}, {grant['seen_at'][:16]})"
            if grant
            else "-",
        )
    out.print(table)


def _peer_status(store: Store, peer: PeerRecord, epoch: int) -> dict[str, Any]:
    """Both sides of the budget, and how our matches with the peer went."""
    grant = store.grants.get(peer.node_id)
    last = store.runs.last(peer.node_id)
    last_ok = last if last is None or last.ok else store.runs.last(peer.node_id, ok_only=True)
    return {
        "name": peer.name,
        "node_id": peer.node_id,
        "addresses": list(peer.addresses),
        "reachability": None,
        "budget": peer.budget,
        "used_this_epoch": store.budget.used(peer.node_id, epoch),
        "grant": None
        if grant is None
        else {
            "epoch": grant.epoch,
            "budget_total": grant.budget_total,
            "budget_remaining": grant.budget_remaining,
            "seen_at": grant.seen_at,
        },
        "matches": store.matches.match_count(peer.node_id),
        "last_match": _run(last),
        "last_successful_match": _run(last_ok),
    }


def _run(run: MatchRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "trigger": run.trigger,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": run.status,
        "error": run.error,
        "evaluated": run.evaluated,
        "matches": run.matches,
        "new_matches": run.new_matches,
    }


def _reachability(found: Reachability) -> dict[str, Any]:
    latency = None if found.latency_ms is None else round(found.latency_ms, 1)
    return {
        "reachable": found.reachable,
        "address": found.address,
        "latency_ms": latency,
        "error": found.error,
    }


def _run_cell(run: dict[str, Any] | None, *, detail: bool) -> str:
    if run is None:
        return "never"
    when = f"{run['finished_at'][:16].replace('T', ' ')} {run['trigger']}"
    if not detail:
        return when
    if run["status"] == "OK":
        return f"{when} OK"
    return f"{when} {run['status']}: {run['error']}"
