"""Pinned peers: who may connect, what each may match, and its evaluation budget.

The server looks a peer up by the node ID of its TLS certificate on every RPC
(`get_by_id`, a primary-key read), so pinning and removal take effect without a restart.
The operator names a peer by its name or by its node ID in any spelling (`find`).
"""

from __future__ import annotations

import enum
import json
import re
import sqlite3
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from node.errors import InputError, StoreError, UnknownPeer
from node.store.connection import write_scope

MIN_ID_PREFIX = 7
"""The shortest node ID prefix `find` accepts: one group, as the CLI shows it in logs."""

PEER_TABLES = (
    "budget_usage",
    "budget_batches",
    "match_cache",
    "peer_tagsets",
    "peer_tags",
    "matches",
    "peer_grants",
)
"""Tables whose rows (column `peer_id`) belong to one peer and go with it; the audit stays."""

_CANONICAL_ID = re.compile(r"[A-Z2-7]{7}(?:-[A-Z2-7]{7}){7}")
_POLICY_SEQ_KEY = "peer_policy_seq"
_COLUMNS = "node_id, name, cert_pem, addresses, kinds, labels, budget, policy_version, added_at"


@dataclass(frozen=True)
class PeerRecord:
    """A pinned peer. `kinds` and `labels` are sorted; None means every kind or label."""

    node_id: str
    name: str
    cert_pem: str
    addresses: tuple[str, ...]
    kinds: tuple[str, ...] | None
    labels: tuple[str, ...] | None
    budget: int
    policy_version: int
    added_at: str


class Unchanged(enum.Enum):
    """Marks a policy field that `update_policy` leaves as it is (None means "all")."""

    UNCHANGED = enum.auto()


UNCHANGED = Unchanged.UNCHANGED


def normalise_id(text: str) -> str:
    """A node ID (or prefix) in any spelling, reduced to compare: no spaces or dashes, upper."""
    return re.sub(r"[\s-]", "", text).upper()


class PeerStore:
    """The `peers` table. Writes join the caller's transaction, or run in their own."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def add(self, record: PeerRecord) -> PeerRecord:
        """Pin `record`; return it as stored.

        The store assigns `policy_version` (the given one is ignored) from a counter that
        never repeats, so that a peer's tag-set cache from an earlier pinning is never
        taken for current.
        """
        _check_record(record)
        with write_scope(self._conn) as conn:
            clash = conn.execute(
                f"SELECT {_COLUMNS} FROM peers WHERE node_id = ? OR name = ?",  # noqa: S608
                (record.node_id, record.name),
            ).fetchone()
            if clash is not None:
                old = _peer(clash)
                hint = "" if old.node_id == record.node_id else ", or choose another name"
                raise InputError(
                    f"peer {old.name!r} is already pinned (node ID {old.node_id}); "
                    f"remove it first to re-pin{hint}"
                )
            stored = replace(
                record,
                kinds=_sorted(record.kinds),
                labels=_sorted(record.labels),
                policy_version=_next_policy_version(conn),
            )
            conn.execute(
                f"INSERT INTO peers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                (
                    stored.node_id,
                    stored.name,
                    stored.cert_pem,
                    _json(stored.addresses),
                    _json(stored.kinds),
                    _json(stored.labels),
                    stored.budget,
                    stored.policy_version,
                    stored.added_at,
                ),
            )
        return stored

    def get_by_id(self, node_id: str) -> PeerRecord | None:
        """The peer with exactly this canonical node ID, or None: the per-RPC check."""
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM peers WHERE node_id = ?",  # noqa: S608
            (node_id,),
        ).fetchone()
        return None if row is None else _peer(row)

    def find(self, name_or_id: str) -> PeerRecord:
        """The peer with this exact name, or this node ID in any spelling, or the one peer
        whose ID starts with the given prefix (at least 7 characters); else UnknownPeer.
        """
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM peers WHERE name = ?",  # noqa: S608
            (name_or_id,),
        ).fetchone()
        if row is not None:
            return _peer(row)
        query = normalise_id(name_or_id)
        if len(query) >= MIN_ID_PREFIX:
            peers = self.list()
            exact = [p for p in peers if normalise_id(p.node_id) == query]
            if exact:
                return exact[0]
            prefixed = [p for p in peers if normalise_id(p.node_id).startswith(query)]
            if len(prefixed) == 1:
                return prefixed[0]
            if prefixed:
                names = ", ".join(p.name for p in prefixed)
                raise InputError(
                    f"{name_or_id!r} starts the node IDs of {len(prefixed)} pinned peers "
                    f"({names}); give more of the ID"
                )
        raise UnknownPeer(
            f"no pinned peer named or with ID {name_or_id!r}; see: aif-node peers list"
        )

    def list(self) -> list[PeerRecord]:
        """Every pinned peer, by name."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM peers ORDER BY name"  # noqa: S608
        ).fetchall()
        return [_peer(row) for row in rows]

    def remove(self, name_or_id: str) -> PeerRecord:
        """Unpin a peer and drop, in the same transaction, every row kept for it (budget
        counters, match cache, tag copies, matches); its audit entries stay.
        """
        with write_scope(self._conn) as conn:
            peer = self.find(name_or_id)
            # Later migrations add some of these tables; a store without them has no rows.
            tables = {
                str(name)
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            for table in PEER_TABLES:
                if table in tables:
                    sql = f"DELETE FROM {table} WHERE peer_id = ?"  # noqa: S608 (a name from PEER_TABLES)
                    conn.execute(sql, (peer.node_id,))
            conn.execute("DELETE FROM peers WHERE node_id = ?", (peer.node_id,))
        return peer

    def update_policy(
        self,
        name_or_id: str,
        *,
        kinds: Sequence[str] | None | Unchanged = UNCHANGED,
        labels: Sequence[str] | None | Unchanged = UNCHANGED,
        budget: int | Unchanged = UNCHANGED,
    ) -> PeerRecord:
        """Change what a peer may match or see, or its budget; return the peer as stored.

        A change gives the peer a new, higher `policy_version` (so its next tag sync is a
        full one); a call that changes nothing leaves the version alone.
        """
        with write_scope(self._conn) as conn:
            peer = self.find(name_or_id)
            updated = replace(
                peer,
                kinds=peer.kinds if isinstance(kinds, Unchanged) else _sorted(kinds),
                labels=peer.labels if isinstance(labels, Unchanged) else _sorted(labels),
                budget=peer.budget if isinstance(budget, Unchanged) else budget,
            )
            _check_record(updated)
            if updated == peer:
                return peer
            updated = replace(updated, policy_version=_next_policy_version(conn))
            conn.execute(
                "UPDATE peers SET kinds = ?, labels = ?, budget = ?, policy_version = ? "
                "WHERE node_id = ?",
                (
                    _json(updated.kinds),
                    _json(updated.labels),
                    updated.budget,
                    updated.policy_version,
                    updated.node_id,
                ),
            )
        return updated

    def update_card(self, name_or_id: str, cert_pem: str, addresses: Sequence[str]) -> PeerRecord:
        """Take a peer's new card: its addresses, and its certificate re-issued for the same
        key (the caller checks that the card's node ID is the peer's). Policy is kept."""
        with write_scope(self._conn) as conn:
            peer = self.find(name_or_id)
            updated = replace(peer, cert_pem=cert_pem, addresses=tuple(addresses))
            _check_record(updated)
            conn.execute(
                "UPDATE peers SET cert_pem = ?, addresses = ? WHERE node_id = ?",
                (updated.cert_pem, _json(updated.addresses), updated.node_id),
            )
        return updated


def _check_record(record: PeerRecord) -> None:
    if not _CANONICAL_ID.fullmatch(record.node_id):
        raise InputError(f"node ID {record.node_id!r} is not in canonical form")
    _check_name(record.name)
    if not record.cert_pem.strip():
        raise InputError(f"peer {record.name!r}: empty certificate")
    if isinstance(record.budget, bool) or record.budget < 0:
        raise InputError(f"peer {record.name!r}: budget must be a whole number >= 0")
    for what, values in (("kind", record.kinds), ("label", record.labels)):
        for value in values or ():
            if not value or value != value.strip():
                raise InputError(f"peer {record.name!r}: bad {what} {value!r}")


def _check_name(name: str) -> None:
    if not name or name != name.strip():
        raise InputError(f"peer name {name!r}: empty, or with spaces around it")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InputError(f"peer name {name!r} contains a control character")


def _next_policy_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ? RETURNING value",
        (_POLICY_SEQ_KEY,),
    ).fetchone()
    if row is None:
        raise StoreError("the store has no peer policy counter; is it migrated?")
    return int(row[0])


def _sorted(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(sorted(set(values)))


def _json(values: tuple[str, ...] | None) -> str | None:
    if values is None:
        return None
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def _tuple(text: Any) -> tuple[str, ...] | None:
    return None if text is None else tuple(str(v) for v in json.loads(str(text)))


def _peer(row: tuple[Any, ...]) -> PeerRecord:
    node_id, name, cert_pem, addresses, kinds, labels, budget, policy_version, added_at = row
    return PeerRecord(
        node_id=str(node_id),
        name=str(name),
        cert_pem=str(cert_pem),
        addresses=_tuple(addresses) or (),
        kinds=_tuple(kinds),
        labels=_tuple(labels),
        budget=int(budget),
        policy_version=int(policy_version),
        added_at=str(added_at),
    )
