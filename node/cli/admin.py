"""Key epochs and the audit log."""

from __future__ import annotations

import json

import click
from rich.table import Table

from node.cli.app import audit_local, fail, format_option, main, out, pass_datadir
from node.datadir import DataDir


@main.group()
def keys() -> None:
    """OPRF key epochs."""


@keys.command(name="rotate")
@pass_datadir
def keys_rotate(datadir: DataDir) -> None:
    """Start a new epoch: peers re-evaluate in full on their next match."""
    epoch = _new_epoch(datadir)
    out.print(f"epoch {epoch} is now current; the tag sets are rebuilt by `serve`", markup=False)


def _new_epoch(datadir: DataDir) -> int:
    datadir.require_node()
    new = datadir.keyring.rotate()
    with datadir.open_store() as store:
        store.budget.forget_before(new.epoch - 1)
    audit_local(datadir, "keys.rotate", None, f"epoch {new.epoch}")
    return new.epoch


@main.group()
def identity() -> None:
    """The node's TLS key and certificate, whose public key is its node ID."""


@identity.command(name="rotate")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_datadir
def identity_rotate(datadir: DataDir, yes: bool) -> None:
    """Replace the node's key and certificate: a new node ID that every peer must pin.

    Also starts a new OPRF epoch, so that each peer's full re-evaluation after re-pinning
    has a fresh budget. Restart `serve` afterwards; the old key is kept under retired/.
    """
    datadir.require_node()
    if not yes:
        click.confirm(
            "Every member must pin this node's new card before it can match with it again. "
            "Replace the key?",
            abort=True,
        )
    old, new = datadir.rotate_identity()
    audit_local(datadir, "identity.rotate", None, f"{old.node_id} -> {new.node_id}")
    epoch = _new_epoch(datadir)
    out.print(f"new node ID: {new.node_id}", markup=False)
    out.print(f"old node ID: {old.node_id} (its key is in {datadir.retired_dir})", markup=False)
    out.print(
        f"epoch {epoch} is now current. Restart serve, send every member the new card "
        "(aif-node card) and read them the new node ID; each runs `peers remove` for the old "
        "card and `peers add` for the new one.",
        markup=False,
    )


@main.group()
def audit() -> None:
    """The keyed, hash-chained audit log."""


@audit.command(name="show")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--peer", metavar="NAME|ID")
@format_option
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
    out.print(table)


@audit.command(name="verify")
@pass_datadir
def audit_verify(datadir: DataDir) -> None:
    """Check the whole chain; name the first broken entry."""
    with datadir.open_store() as store:
        result = store.audit.verify(datadir.audit_key())
    if result.ok:
        out.print(f"audit log intact: {result.entries} entries", markup=False)
        return
    fail(f"audit log broken at entry {result.first_broken}: {result.reason}", 5)
