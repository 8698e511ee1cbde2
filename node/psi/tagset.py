"""Keeping this node's published tag sets up to date with its records.

`refresh` evaluates only the records changed since the set's `record_seq`, a chunk at a time,
and writes each chunk in one transaction together with the new `record_seq`: a crash loses
at most the chunk under way, and the next refresh resumes after the last one written.

Concurrency: refreshes of one kind in one process queue on a lock, so they never evaluate
the same records twice; across processes each chunk is written only if `record_seq` is
still the one it was computed from (checked under BEGIN IMMEDIATE), so a second process
at worst discards its own chunk and re-reads, and never corrupts the set.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass

from node.crypto import labels, oprf
from node.identifiers import oprf_input
from node.keys import EpochKeyring
from node.store import Store
from node.store.tagsets import TagSetUpdate

REFRESH_CHUNK = 4096
"""Records per transaction; evaluate_batch spreads each chunk over every core."""

_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class RefreshResult:
    kind: str
    epoch: int
    version: int
    evaluated: int
    """Records new to the set, evaluated under the epoch's key for the kind."""
    updated: int
    """Entries whose labels or dates changed, or whose record came back."""
    removed: int


def refresh(
    store: Store,
    keyring: EpochKeyring,
    kind: str | None = None,
    *,
    chunk: int = REFRESH_CHUNK,
    progress: Callable[[str, int], None] | None = None,
) -> list[RefreshResult]:
    """Bring the current epoch's tag set of `kind` (or of every kind with records) up to
    date, after dropping the sets of older epochs. `progress(kind, records)` is called
    after each chunk with the records processed so far for that kind.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be positive, not {chunk}")
    epoch = keyring.current_epoch()
    store.tagsets.drop_epochs_before(epoch)
    kinds = [kind] if kind is not None else store.tagsets.record_kinds()
    results = []
    for k in kinds:
        with _lock(store.conn, k):
            results.append(_refresh_kind(store, keyring, k, epoch, chunk, progress))
    return results


def _refresh_kind(
    store: Store,
    keyring: EpochKeyring,
    kind: str,
    epoch: int,
    chunk: int,
    progress: Callable[[str, int], None] | None,
) -> RefreshResult:
    tagsets = store.tagsets
    secret = keyring.kind_key(epoch, kind).secret
    evaluated = updated = removed = processed = 0
    while True:
        state = tagsets.state(kind, epoch)
        since = 0 if state is None else state.record_seq
        changed = tagsets.changed_records(kind, epoch, since, chunk)
        if not changed:
            version = 0 if state is None else state.version
            return RefreshResult(kind, epoch, version, evaluated, updated, removed)
        new = [c for c in changed if not c.removed and not c.entry]
        outputs = oprf.evaluate_batch(secret, [oprf_input(kind, c.value) for c in new])
        update = TagSetUpdate(
            kind=kind,
            epoch=epoch,
            from_seq=since,
            to_seq=changed[-1].seq,
            added=[
                (c.record_id, *labels.tag_and_key(out)) for c, out in zip(new, outputs, strict=True)
            ],
            touched=[c.record_id for c in changed if not c.removed and c.entry],
            removed=[c.record_id for c in changed if c.removed and c.entry and not c.entry_removed],
        )
        if not tagsets.apply(update):
            continue  # another process wrote this chunk first: read on from where it got
        evaluated += len(update.added)
        updated += len(update.touched)
        removed += len(update.removed)
        processed += len(changed)
        if progress is not None:
            progress(kind, processed)


def _lock(conn: sqlite3.Connection, kind: str) -> threading.Lock:
    """One lock per database file and kind, shared by every connection of the process."""
    path = next(
        (str(file) for _seq, name, file in conn.execute("PRAGMA database_list") if name == "main"),
        "",
    )
    key = (path or f"memory:{id(conn)}", kind)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())
