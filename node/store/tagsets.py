"""The server side of matching: this node's published tag sets, per kind and epoch.

A tag set entry is one own record's tag and label key under one epoch's key. Entries are never
deleted within an epoch: a removed record keeps its entry with `removed = 1`, so that a peer
pulling the changes since its last version learns the removal. Every change gets the set's
next `version`; `tagset_state.record_seq` is how far into the records' change sequence the
set is current. Whole epochs are dropped after a key rotation.

Only SQL lives here; computing tags is `node.psi.tagset`'s work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from node.store.connection import write_scope


@dataclass(frozen=True)
class TagSetState:
    kind: str
    epoch: int
    version: int
    """The newest version of the set: every entry has a version at most this."""
    record_seq: int
    """The records' change sequence number up to which the set is current."""


@dataclass(frozen=True)
class ChangedRecord:
    """A record changed since the set's `record_seq`, with what the set holds for it."""

    record_id: int
    value: str
    seq: int
    removed: bool
    entry: bool
    """The set has an entry for the record (live or removed) in this epoch."""
    entry_removed: bool


@dataclass(frozen=True)
class TagEntry:
    """One entry as a sync sends it; `labels` is the record's current label JSON."""

    record_id: int
    tag: bytes
    label_key: bytes
    version: int
    removed: bool
    labels: str


@dataclass(frozen=True)
class TagSetUpdate:
    """What one refresh chunk changes: written all together, or not at all."""

    kind: str
    epoch: int
    from_seq: int
    """The record_seq the chunk was computed from; the write is refused if it moved."""
    to_seq: int
    added: Sequence[tuple[int, bytes, bytes]]
    """(record_id, tag, label_key) of records new to the set."""
    touched: Sequence[int]
    """Records with an entry whose labels or dates changed, or that came back to life."""
    removed: Sequence[int]
    """Records whose live entry must become a removal."""


class TagSetStore:
    """Tag sets in one SQLite connection; writes join the caller's transaction, if any."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def state(self, kind: str, epoch: int) -> TagSetState | None:
        row = self._conn.execute(
            "SELECT version, record_seq FROM tagset_state WHERE kind = ? AND epoch = ?",
            (kind, epoch),
        ).fetchone()
        return None if row is None else TagSetState(kind, epoch, int(row[0]), int(row[1]))

    def record_kinds(self) -> list[str]:
        """Every kind that has records, live or removed (a removal must still propagate)."""
        rows = self._conn.execute("SELECT DISTINCT kind FROM records ORDER BY kind")
        return [str(kind) for (kind,) in rows]

    def live_size(self, kind: str) -> int:
        """Live records of `kind`: the set size a peer is told, whether or not it is built."""
        row = self._conn.execute(
            "SELECT count(*) FROM records WHERE kind = ? AND removed = 0", (kind,)
        ).fetchone()
        return int(row[0])

    def live_sizes(self, epoch: int) -> dict[str, int]:
        """Live entries per kind in `epoch`: what a peer's full sync would receive."""
        rows = self._conn.execute(
            "SELECT kind, count(*) FROM tagset_entries WHERE epoch = ? AND removed = 0 "
            "GROUP BY kind",
            (epoch,),
        )
        return {str(kind): int(n) for kind, n in rows}

    def changed_records(
        self, kind: str, epoch: int, since_seq: int, limit: int
    ) -> list[ChangedRecord]:
        """Up to `limit` records of `kind` changed after `since_seq`, in seq order."""
        rows = self._conn.execute(
            "SELECT r.id, r.value, r.seq, r.removed, e.removed FROM records AS r "
            "LEFT JOIN tagset_entries AS e "
            "ON e.kind = r.kind AND e.epoch = ? AND e.record_id = r.id "
            "WHERE r.kind = ? AND r.seq > ? ORDER BY r.seq LIMIT ?",
            (epoch, kind, since_seq, limit),
        ).fetchall()
        return [
            ChangedRecord(
                record_id=int(rid),
                value=str(value),
                seq=int(seq),
                removed=bool(removed),
                entry=entry_removed is not None,
                entry_removed=bool(entry_removed),
            )
            for rid, value, seq, removed, entry_removed in rows
        ]

    def apply(self, update: TagSetUpdate) -> bool:
        """Write one refresh chunk and advance the set's record_seq, unless another writer
        advanced it from `update.from_seq` meanwhile: then write nothing and return False."""
        conn = self._conn
        with write_scope(conn):
            state = self.state(update.kind, update.epoch)
            current_seq = 0 if state is None else state.record_seq
            if current_seq != update.from_seq:
                return False
            version = 0 if state is None else state.version
            if update.added or update.touched or update.removed:
                version += 1
            key = (update.kind, update.epoch)
            conn.executemany(
                "INSERT INTO tagset_entries "
                "(kind, epoch, record_id, tag, label_key, version, removed) "
                "VALUES (?, ?, ?, ?, ?, ?, 0)",
                [(*key, rid, tag, lkey, version) for rid, tag, lkey in update.added],
            )
            conn.executemany(
                "UPDATE tagset_entries SET version = ?, removed = 0 "
                "WHERE kind = ? AND epoch = ? AND record_id = ?",
                [(version, *key, rid) for rid in update.touched],
            )
            conn.executemany(
                "UPDATE tagset_entries SET version = ?, removed = 1 "
                "WHERE kind = ? AND epoch = ? AND record_id = ?",
                [(version, *key, rid) for rid in update.removed],
            )
            conn.execute(
                "INSERT INTO tagset_state (kind, epoch, version, record_seq) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, epoch) DO UPDATE SET "
                "version = excluded.version, record_seq = excluded.record_seq",
                (*key, version, update.to_seq),
            )
        return True

    def drop_epochs_before(self, epoch: int) -> int:
        """Delete every kind's entries and state of epochs before `epoch`; return entries."""
        conn = self._conn
        if conn.execute("SELECT 1 FROM tagset_state WHERE epoch < ? LIMIT 1", (epoch,)).fetchone():
            with write_scope(conn):
                n = conn.execute("DELETE FROM tagset_entries WHERE epoch < ?", (epoch,)).rowcount
                conn.execute("DELETE FROM tagset_state WHERE epoch < ?", (epoch,))
            return int(n)
        return 0

    def entries(
        self,
        kind: str,
        epoch: int,
        *,
        since_version: int,
        upto_version: int,
        after: tuple[int, int],
        include_removed: bool,
        limit: int,
    ) -> list[TagEntry]:
        """Entries with since_version < version <= upto_version, in (version, record_id)
        order starting after the key `after`; removals only when `include_removed`.

        Bounding the version from above keeps a paged read consistent while refreshes run:
        an entry changed after the read began moves above `upto_version` and is sent by the
        next delta instead.
        """
        # The index range starts at the page's own version: with only `version > since`
        # there, SQLite walked every earlier entry again on each page, and a full sync of a
        # million entries cost minutes instead of seconds.
        lowest = max(since_version + 1, after[0])
        rows = self._conn.execute(
            "SELECT e.record_id, e.tag, e.label_key, e.version, e.removed, r.labels "
            "FROM tagset_entries AS e JOIN records AS r ON r.id = e.record_id "
            "WHERE e.kind = ? AND e.epoch = ? AND e.version >= ? AND e.version <= ? "
            "AND (e.version, e.record_id) > (?, ?) AND (? OR e.removed = 0) "
            "ORDER BY e.version, e.record_id LIMIT ?",
            (kind, epoch, lowest, upto_version, *after, include_removed, limit),
        ).fetchall()
        return [
            TagEntry(int(rid), bytes(tag), bytes(lkey), int(ver), bool(rem), str(labels))
            for rid, tag, lkey, ver, rem, labels in rows
        ]
