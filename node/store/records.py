"""The records table: the operator's clues, merged on import, tombstoned on removal.

Every change to a record (insert, new label, wider dates, removal, revival) gives it a
fresh `seq` from one store-wide counter, so a later layer can ask what changed since a
sequence number it saw. Sequence numbers are unique and increasing, not dense.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from node.errors import InputError, StoreError
from node.store.connection import write_scope


@dataclass(frozen=True)
class RecordIn:
    """One row to merge into the store; `value` is already canonical for its kind.

    Dates are ISO `YYYY-MM-DD` with `first_seen <= last_seen`; an empty `ref` means none.
    """

    value: str
    labels: tuple[str, ...]
    first_seen: str
    last_seen: str
    ref: str | None = None


@dataclass(frozen=True)
class Record:
    kind: str
    value: str
    labels: tuple[str, ...]
    first_seen: str
    last_seen: str
    ref: str | None
    seq: int
    removed: bool


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    """Rows that created a live record: new ones, and tombstones revived."""
    merged: int
    """Rows whose record was already live, whether or not they changed it."""
    changed: int
    """Of the merged rows, those that changed the stored record."""


_SEQ_KEY = "records_seq"
_CONTROL = frozenset({"Cc", "Zl", "Zp"})

# The label union runs in SQL so that a merge is one statement per row; the cheap cases
# (no new labels, or the same labels again) skip the JSON work.
_LABELS = (
    "CASE WHEN excluded.labels = '[]' OR excluded.labels = records.labels THEN records.labels"
    " ELSE (SELECT json_group_array(value) FROM ("
    "SELECT value FROM json_each(records.labels)"
    " UNION SELECT value FROM json_each(excluded.labels) ORDER BY value)) END"
)
# A removed record imported again comes back as if new: its old labels and dates were
# withdrawn with it. Only the constant above is interpolated.
_UPSERT = f"""
INSERT INTO records (kind, value, labels, first_seen, last_seen, ref, seq)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (kind, value) DO UPDATE SET
    labels = CASE WHEN records.removed THEN excluded.labels ELSE {_LABELS} END,
    first_seen = CASE WHEN records.removed THEN excluded.first_seen
                      ELSE min(records.first_seen, excluded.first_seen) END,
    last_seen = CASE WHEN records.removed THEN excluded.last_seen
                     ELSE max(records.last_seen, excluded.last_seen) END,
    ref = CASE WHEN records.removed THEN excluded.ref
               ELSE coalesce(records.ref, excluded.ref) END,
    seq = excluded.seq,
    removed = 0
WHERE records.removed
    OR excluded.first_seen < records.first_seen
    OR excluded.last_seen > records.last_seen
    OR (records.ref IS NULL AND excluded.ref IS NOT NULL)
    OR ({_LABELS}) <> records.labels
"""  # noqa: S608


def check_label(label: str) -> str:
    """A label as stored, or InputError: non-empty, trimmed, no control characters."""
    text = label.strip()
    if not text:
        raise InputError("empty label")
    if any(unicodedata.category(ch) in _CONTROL for ch in text):
        raise InputError(f"label {text!r} contains a control character")
    return text


@lru_cache(maxsize=4096)
def labels_json(labels: tuple[str, ...]) -> str:
    """The stored form of a label set: a sorted JSON array without duplicates or spaces.

    It must equal what SQLite's json_group_array makes of the same sorted strings, so that
    an unchanged label set compares equal as text.
    """
    clean = sorted({check_label(label) for label in labels})
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"))


class RecordStore:
    """Records of every kind in one SQLite connection.

    Writes join the caller's open transaction (an import spans many batches and must be
    all or nothing) or, when none is open, run in a transaction of their own.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def upsert_batch(self, kind: str, rows: Sequence[RecordIn]) -> UpsertResult:
        """Insert or merge `rows`: labels are united, first_seen takes the earliest date,
        last_seen the latest, and an existing ref is kept unless it is empty.

        A row that changes nothing leaves the record's seq alone.
        """
        if not rows:
            return UpsertResult(0, 0, 0)
        _check_dates(rows)
        conn = self._conn
        with write_scope(conn):
            base = self.current_seq()
            max_id = conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
            tombs = self._tombstones(kind)
            params = [
                (kind, r.value, labels_json(r.labels), r.first_seen, r.last_seen, r.ref or None, s)
                for s, r in enumerate(rows, base + 1)
            ]
            written = conn.executemany(_UPSERT, params).rowcount
            new = conn.execute("SELECT count(*) FROM records WHERE id > ?", (max_id,)).fetchone()[0]
            revived = tombs - self._tombstones(kind)
            if written:
                self._advance_seq(kind)
        inserted = new + revived
        return UpsertResult(inserted, len(rows) - inserted, written - inserted)

    def remove(self, kind: str, values: Iterable[str]) -> int:
        """Tombstone the live records of `kind` among `values`; return how many."""
        params = [(kind, value) for value in values]
        if not params:
            return 0
        with write_scope(self._conn):
            base = self.current_seq()
            removed = self._conn.executemany(
                "UPDATE records SET removed = 1, seq = ? WHERE kind = ? AND value = ? "
                "AND removed = 0",
                [(s, k, v) for s, (k, v) in enumerate(params, base + 1)],
            ).rowcount
            if removed:
                self._advance_seq(kind)
        return int(removed)

    def get(self, kind: str, value: str, *, include_removed: bool = False) -> Record | None:
        row = self._conn.execute(
            "SELECT kind, value, labels, first_seen, last_seen, ref, seq, removed FROM records "
            "WHERE kind = ? AND value = ?",
            (kind, value),
        ).fetchone()
        if row is None:
            return None
        record = _record(row)
        return None if record.removed and not include_removed else record

    def counts(self) -> list[tuple[str, str | None, int]]:
        """Live records per kind (label None) and per kind and label, sorted."""
        rows = self._conn.execute(
            """
            SELECT kind, NULL, count(*) FROM records WHERE removed = 0 GROUP BY kind
            UNION ALL
            SELECT r.kind, j.value, count(*) FROM records AS r, json_each(r.labels) AS j
            WHERE r.removed = 0 GROUP BY r.kind, j.value
            ORDER BY 1, 2
            """
        ).fetchall()
        return [(str(kind), label, int(n)) for kind, label, n in rows]

    def live_counts(self) -> dict[str, int]:
        """Live records per kind, from the indexes alone: cheap enough for every metrics scrape."""
        counts = {
            str(kind): int(n)
            for kind, n in self._conn.execute("SELECT kind, count(*) FROM records GROUP BY kind")
        }
        for kind, n in self._conn.execute(
            "SELECT kind, count(*) FROM records WHERE removed = 1 GROUP BY kind"
        ):
            counts[str(kind)] -= int(n)
        return counts

    def iter_changed(self, kind: str, since_seq: int, batch: int = 1000) -> Iterator[list[Record]]:
        """Records of `kind` (tombstones included) changed after `since_seq`, in seq order,
        `batch` at a time. Each batch is read afresh, so a record changed meanwhile shows
        up again later with its new seq.
        """
        if batch < 1:
            raise ValueError("batch must be positive")
        after = since_seq
        while True:
            rows = self._conn.execute(
                "SELECT kind, value, labels, first_seen, last_seen, ref, seq, removed FROM records "
                "WHERE kind = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (kind, after, batch),
            ).fetchall()
            if not rows:
                return
            records = [_record(row) for row in rows]
            yield records
            after = records[-1].seq

    def current_seq(self) -> int:
        """The highest sequence number handed out so far (0 for a new store)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (_SEQ_KEY,)).fetchone()
        if row is None:
            raise StoreError("the store has no record sequence counter; is it migrated?")
        return int(row[0])

    def _tombstones(self, kind: str) -> int:
        return int(
            self._conn.execute(
                "SELECT count(*) FROM records WHERE kind = ? AND removed = 1", (kind,)
            ).fetchone()[0]
        )

    def _advance_seq(self, kind: str) -> None:
        # Unused numbers of the reserved range above the highest one written are handed out
        # again; they were never stored, so sequence numbers stay unique.
        top = self._conn.execute(
            "SELECT seq FROM records WHERE kind = ? ORDER BY seq DESC LIMIT 1", (kind,)
        ).fetchone()[0]
        self._conn.execute(
            "UPDATE meta SET value = ? WHERE key = ? AND CAST(value AS INTEGER) < ?",
            (str(top), _SEQ_KEY, top),
        )


def _record(row: tuple[Any, ...]) -> Record:
    kind, value, labels, first_seen, last_seen, ref, seq, removed = row
    return Record(
        kind=str(kind),
        value=str(value),
        labels=tuple(json.loads(str(labels))),
        first_seen=str(first_seen),
        last_seen=str(last_seen),
        ref=None if ref is None else str(ref),
        seq=int(seq),
        removed=bool(removed),
    )


def _check_dates(rows: Sequence[RecordIn]) -> None:
    """Dates are compared as text in SQL, so anything but ISO dates would merge wrongly."""
    for date in {r.first_seen for r in rows} | {r.last_seen for r in rows}:
        if not _is_iso_date(date):
            raise InputError(f"not an ISO date (YYYY-MM-DD): {date!r}")
    for r in rows:
        if r.first_seen > r.last_seen:
            raise InputError(
                f"{r.value}: first_seen {r.first_seen} is after last_seen {r.last_seen}"
            )


@lru_cache(maxsize=8192)
def _is_iso_date(text: str) -> bool:
    try:
        return len(text) == 10 and dt.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False
