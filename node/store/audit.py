"""The audit log: every session with a peer, and every operator action, in a keyed hash chain.

Entry n carries `mac_n = HMAC-SHA256(key, mac_{n-1} || canonical JSON of its fields)`,
with `mac_0` 32 zero bytes; canonical JSON has sorted keys, no whitespace and ASCII only,
and covers every field of `AuditEntry`, `id` and `at` included. Ids run 1, 2, 3, ... so a
deleted entry shows as a gap. A chain alone cannot show that its newest entries were cut
off, so the `audit_head` row keeps the entry count and the last mac, under its own HMAC,
and is updated in the transaction of every append.

The key is a 32-byte secret the caller holds (the data dir's keys/audit.key); without it
nobody can rewrite an entry or the head so that `verify` passes. What the chain cannot
show: the whole log and its head replaced by a copy taken earlier, or both wiped (an
empty log verifies). Keep a copy of a recent head mac elsewhere to catch those.

The log never holds a clue value, in clear or hashed (a hash of a phone number is the
phone number, given 10^9 guesses). Callers pass counts only; `detail` is for reasons and
figures, never for identifiers from the records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

from node.errors import StoreError
from node.store.connection import write_scope

KEY_SIZE = 32
MAC_SIZE = 32
GENESIS_MAC = bytes(MAC_SIZE)
DIRECTIONS = ("served", "initiated", "local")
Direction = Literal["served", "initiated", "local"]

_HEAD_DOMAIN = b"aif-node audit head v1"
_FIELDS = "id, at, direction, peer_id, peer_name, action, kinds, elements, results, status, detail"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    """UTC, ISO-8601 with microseconds."""
    direction: str
    """'served' (a peer asked us), 'initiated' (we asked a peer) or 'local' (an operator)."""
    peer_id: str | None
    peer_name: str | None
    action: str
    kinds: tuple[str, ...]
    elements: int
    results: int
    status: str
    """'OK' or the gRPC status name of a refusal or failure."""
    detail: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    """Entries present in the log."""
    first_broken: int | None
    """Id of the first entry missing, altered or out of place; None if none is (the log is
    sound, or only its head was damaged)."""
    reason: str
    """Why the log fails, for an operator; empty when it is sound."""


def entry_mac(key: bytes, prev_mac: bytes, entry: AuditEntry) -> bytes:
    """The chain mac of `entry` after an entry whose mac is `prev_mac`."""
    return _mac(key, prev_mac, _canonical(asdict(entry)))


class AuditLog:
    """The `audit` and `audit_head` tables. Appends join the caller's transaction (an
    operator action and its entry commit together), or run in their own.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def append(
        self,
        key: bytes,
        direction: Direction,
        peer_id: str | None,
        peer_name: str | None,
        action: str,
        kinds: Sequence[str],
        elements: int,
        results: int,
        status: str,
        detail: str,
    ) -> AuditEntry:
        """Add an entry at the end of the chain and return it.

        The last mac is read inside the write transaction, so appenders in several
        processes still make one chain.
        """
        _check_key(key)
        if direction not in DIRECTIONS:
            raise ValueError(f"audit direction must be one of {DIRECTIONS}, not {direction!r}")
        if elements < 0 or results < 0:
            raise ValueError("audit counts must not be negative")
        with write_scope(self._conn) as conn:
            count, last_mac = _head(conn)[:2]
            entry = AuditEntry(
                id=count + 1,
                at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
                direction=direction,
                peer_id=peer_id,
                peer_name=peer_name,
                action=action,
                kinds=tuple(kinds),
                elements=elements,
                results=results,
                status=status,
                detail=detail,
            )
            mac = entry_mac(key, last_mac, entry)
            try:
                conn.execute(
                    f"INSERT INTO audit ({_FIELDS}, prev_mac, mac) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.id,
                        entry.at,
                        entry.direction,
                        entry.peer_id,
                        entry.peer_name,
                        entry.action,
                        _kinds_json(entry.kinds),
                        entry.elements,
                        entry.results,
                        entry.status,
                        entry.detail,
                        last_mac,
                        mac,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"the audit log does not match its head (entry {entry.id} exists already); "
                    "run: aif-node audit verify"
                ) from exc
            conn.execute(
                "UPDATE audit_head SET entries = ?, last_mac = ?, mac = ? WHERE one = 1",
                (entry.id, mac, _head_mac(key, entry.id, mac)),
            )
        return entry

    def verify(self, key: bytes) -> VerifyResult:
        """Check the whole chain and its head; name the first broken entry and why.

        Chain and head are read in one snapshot, so appends meanwhile do not look like
        tampering.
        """
        _check_key(key)
        with _snapshot(self._conn) as conn:
            total = int(conn.execute("SELECT count(*) FROM audit").fetchone()[0])
            prev_mac, expected = GENESIS_MAC, 1
            rows = conn.execute(f"SELECT {_FIELDS}, prev_mac, mac FROM audit ORDER BY id")  # noqa: S608
            for row in rows:
                fields = dict(zip(_FIELDS.split(", "), row[:-2], strict=True))
                stored_prev, stored_mac = row[-2], row[-1]
                broken = _check_entry(key, fields, stored_prev, stored_mac, prev_mac, expected)
                if broken is not None:
                    return VerifyResult(False, total, min(int(fields["id"]), expected), broken)
                prev_mac, expected = bytes(stored_mac), expected + 1
            return _check_head(key, _head(conn), total, prev_mac)

    def iterate(
        self, limit: int | None = None, peer: str | None = None, since: dt.datetime | None = None
    ) -> Iterator[AuditEntry]:
        """Entries newest first: at most `limit`, only those with the peer `peer` (name, or
        node ID in any spelling), only those at or after `since` (an aware datetime).
        """
        where: list[str] = []
        params: list[Any] = []
        if peer is not None:
            where.append("(peer_name = ? OR replace(peer_id, '-', '') = ?)")
            params += [peer, re.sub(r"[\s-]", "", peer).upper()]
        if since is not None:
            if since.tzinfo is None:
                raise ValueError("`since` must be an aware datetime")
            where.append("at >= ?")
            params.append(since.astimezone(dt.UTC).isoformat(timespec="microseconds"))
        sql = f"SELECT {_FIELDS} FROM audit"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        # Read at once: a cursor left open would hold a read snapshot while the caller works.
        return iter([_entry(row) for row in self._conn.execute(sql, params).fetchall()])


def _check_entry(
    key: bytes,
    fields: dict[str, Any],
    stored_prev: Any,
    stored_mac: Any,
    prev_mac: bytes,
    expected: int,
) -> str | None:
    """Why this row breaks the chain after `prev_mac`, or None if it holds."""
    entry_id = int(fields["id"])
    if entry_id > expected:
        missing = (
            f"entry {expected}"
            if entry_id == expected + 1
            else f"entries {expected}-{entry_id - 1}"
        )
        return f"{missing} deleted: the log goes from entry {expected - 1} to entry {entry_id}"
    if entry_id < expected:  # ids are a primary key; only a first id below 1 gets here
        return f"entry {entry_id}: id out of range (the first entry is 1)"
    if not isinstance(stored_prev, bytes) or not hmac.compare_digest(stored_prev, prev_mac):
        where = "the start of the chain" if entry_id == 1 else f"entry {entry_id - 1}"
        return (
            f"entry {entry_id}: prev_mac does not link to {where} "
            "(entries reordered, replaced or deleted)"
        )
    try:
        fields = {**fields, "kinds": json.loads(str(fields["kinds"]))}
    except ValueError:
        return f"entry {entry_id}: kinds is not a JSON list (altered)"
    mac = _mac(key, prev_mac, _canonical(fields))
    if not isinstance(stored_mac, bytes) or not hmac.compare_digest(stored_mac, mac):
        hint = ", or the audit key is not the one it was written with" if entry_id == 1 else ""
        return f"entry {entry_id}: mac mismatch: the entry was altered{hint}"
    return None


def _check_head(
    key: bytes, head: tuple[int, bytes, bytes | None], seen: int, last_mac: bytes
) -> VerifyResult:
    count, head_last_mac, head_mac = head
    if seen == 0 and count == 0 and head_mac is None:
        return VerifyResult(True, 0, None, "")
    if head_mac is None or not hmac.compare_digest(head_mac, _head_mac(key, count, head_last_mac)):
        return VerifyResult(
            False, seen, None, "the audit head was altered (entry count or last mac)"
        )
    if count > seen:
        return VerifyResult(
            False,
            seen,
            seen + 1,
            f"the log ends at entry {seen} but the head records {count}: "
            "the last entries were deleted",
        )
    if count < seen:
        return VerifyResult(
            False,
            seen,
            count + 1,
            f"entry {count + 1} was added after the last recorded entry {count}",
        )
    if not hmac.compare_digest(head_last_mac, last_mac):
        return VerifyResult(
            False, seen, seen, f"entry {seen} is not the last entry the head recorded"
        )
    return VerifyResult(True, seen, None, "")


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Reads in the block see one state of the file (the caller's transaction, if open)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")


def _head(conn: sqlite3.Connection) -> tuple[int, bytes, bytes | None]:
    row = conn.execute("SELECT entries, last_mac, mac FROM audit_head WHERE one = 1").fetchone()
    if row is None:
        raise StoreError("the audit head is missing; run: aif-node audit verify")
    entries, last_mac, mac = row
    return int(entries), bytes(last_mac), None if mac is None else bytes(mac)


def _head_mac(key: bytes, entries: int, last_mac: bytes) -> bytes:
    head_key = hmac.new(key, _HEAD_DOMAIN, hashlib.sha256).digest()
    return hmac.new(
        head_key, _canonical({"entries": entries, "last_mac": last_mac.hex()}), hashlib.sha256
    ).digest()


def _mac(key: bytes, prev_mac: bytes, canonical: bytes) -> bytes:
    return hmac.new(key, prev_mac + canonical, hashlib.sha256).digest()


def _canonical(fields: dict[str, Any]) -> bytes:
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _kinds_json(kinds: tuple[str, ...]) -> str:
    return json.dumps(list(kinds), separators=(",", ":"), ensure_ascii=True)


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"the audit key must be {KEY_SIZE} bytes, not {len(key)}")


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    (
        entry_id,
        at,
        direction,
        peer_id,
        peer_name,
        action,
        kinds,
        elements,
        results,
        status,
        detail,
    ) = row
    try:
        return AuditEntry(
            id=int(entry_id),
            at=str(at),
            direction=str(direction),
            peer_id=None if peer_id is None else str(peer_id),
            peer_name=None if peer_name is None else str(peer_name),
            action=str(action),
            kinds=tuple(str(k) for k in json.loads(str(kinds))),
            elements=int(elements),
            results=int(results),
            status=str(status),
            detail=str(detail),
        )
    except ValueError as exc:
        raise StoreError(
            f"audit entry {entry_id} is unreadable ({exc}); run: aif-node audit verify"
        ) from exc
