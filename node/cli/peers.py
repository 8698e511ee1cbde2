"""Pinning, listing and removing peers."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from node.cli.app import audit_local, format_option, main, out, pass_datadir, split_list
from node.datadir import DataDir
from node.errors import InputError
from node.identity import MemberCard
from node.store.peers import UNCHANGED, PeerRecord, Unchanged


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
    datadir: DataDir, card_file: Path, kinds: str | None, labels: str | None, budget: int | None
) -> None:
    """Pin the peer described by a member card."""
    config = datadir.config()
    card = MemberCard.load(card_file)
    if card.node_id == datadir.identity().node_id:
        raise InputError(f"{card_file}: this is this node's own card; pin other members' cards")
    kind_list = split_list(kinds)
    registry = datadir.kinds()
    for kind in kind_list or ():
        registry.check(kind)
    record = PeerRecord(
        node_id=str(card.node_id),
        name=card.name,
        cert_pem=card.cert_pem.decode(),
        addresses=card.addresses,
        kinds=kind_list,
        labels=split_list(labels),
        budget=config.default_peer_budget if budget is None else budget,
        policy_version=0,
        added_at="",
    )
    with datadir.open_store() as store:
        stored = store.peers.add(record)
    audit_local(datadir, "peers.add", stored, f"budget {stored.budget}")
    out.print(f"pinned {stored.name!r} ({stored.node_id})", markup=False)


@peers.command(name="list")
@format_option
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
    out.print(table)


def _policy_list(value: str | None) -> tuple[str, ...] | None | Unchanged:
    """An option of `peers update`: absent keeps the list, `all` lifts the restriction."""
    if value is None:
        return UNCHANGED
    if value.strip().lower() == "all":
        return None
    return split_list(value)


@peers.command(name="update")
@click.argument("peer", metavar="NAME|ID")
@click.option("--kinds", help="Kinds the peer may match (comma-separated), or `all`.")
@click.option("--labels", help="Labels the peer may see (comma-separated), or `all`.")
@click.option("--budget", type=click.IntRange(min=0), help="Evaluations per epoch.")
@click.option(
    "--card",
    "card_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The peer's new member card: new addresses, or its certificate re-issued.",
)
@pass_datadir
def peers_update(
    datadir: DataDir,
    peer: str,
    kinds: str | None,
    labels: str | None,
    budget: int | None,
    card_file: Path | None,
) -> None:
    """Change a pinned peer's policy or take its new card, keeping its matches and cache.

    A changed policy makes the peer's next sync a full one; the card must carry the node ID
    already pinned (a new key is a new node: remove the peer and add its new card).
    """
    kind_list = _policy_list(kinds)
    if isinstance(kind_list, tuple):
        registry = datadir.kinds()
        for kind in kind_list:
            registry.check(kind)
    with datadir.open_store() as store:
        current = store.peers.find(peer)
        changes: list[str] = []
        if card_file is not None:
            card = MemberCard.load(card_file)
            if str(card.node_id) != current.node_id:
                raise InputError(
                    f"{card_file}: this card is for node {card.node_id}, not {current.name!r} "
                    f"({current.node_id}); a new key is a new node: remove {current.name!r} "
                    "and add the new card"
                )
            current = store.peers.update_card(
                current.node_id, card.cert_pem.decode(), card.addresses
            )
            changes.append(f"card: {', '.join(card.addresses)}")
        updated = store.peers.update_policy(
            current.node_id,
            kinds=kind_list,
            labels=_policy_list(labels),
            budget=UNCHANGED if budget is None else budget,
        )
    if updated.policy_version != current.policy_version:
        changes.append(
            f"kinds {_describe(updated.kinds)}, labels {_describe(updated.labels)}, "
            f"budget {updated.budget:,}"
        )
    if not changes:
        out.print(f"{updated.name!r}: nothing to change", markup=False)
        return
    audit_local(datadir, "peers.update", updated, "; ".join(changes))
    out.print(f"updated {updated.name!r}: {'; '.join(changes)}", markup=False)


def _describe(items: tuple[str, ...] | None) -> str:
    return "all" if items is None else ",".join(items)


@peers.command(name="remove")
@click.argument("peer", metavar="NAME|ID")
@pass_datadir
def peers_remove(datadir: DataDir, peer: str) -> None:
    """Unpin a peer: its next call is refused; its matches are forgotten."""
    with datadir.open_store() as store:
        removed = store.peers.remove(peer)
    audit_local(datadir, "peers.remove", removed, "")
    out.print(f"removed {removed.name!r} ({removed.node_id})", markup=False)
