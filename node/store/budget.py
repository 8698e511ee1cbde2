"""Evaluation budgets: how many OPRF evaluations each peer has had in each epoch.

Identifiers are low-entropy, so an unmetered evaluation oracle would let a peer enumerate
our list; the budget is what stops it, and must hold exactly however many server threads
and processes charge at once. A charge is one BEGIN IMMEDIATE transaction that reads the
counter, refuses or adds, and records the batch, so concurrent charges are serialised by
SQLite's write lock and no evaluation goes uncounted.

A batch is charged once: a retry of a charged batch is free, which lets a client resend a
batch whose answer it lost. Because a free retry is also a free evaluation, the batch key
must bind the elements, not only the ID the peer chose: callers pass
`batch_key(peer_batch_id, blinded)`, so that a peer who reuses a batch ID with other
elements is charged again.
"""

from __future__ import annotations

import hashlib
import sqlite3

from node.errors import BudgetExhausted, ProtocolViolation, UnknownPeer
from node.store.connection import write_scope

_BATCH_DOMAIN = b"aif-node budget batch v1\x00"


def batch_key(batch_id: bytes, blinded: bytes) -> bytes:
    """The key a batch is charged under: a digest of the peer's batch ID and its elements.

    A retry with the same elements re-evaluates nothing new (same blinded points, same
    answers) and is free; anything else is a new batch.
    """
    digest = hashlib.sha256(_BATCH_DOMAIN)
    digest.update(len(batch_id).to_bytes(4, "big"))
    digest.update(batch_id)
    digest.update(blinded)
    return digest.digest()


class BudgetStore:
    """`budget_usage` and `budget_batches`, per peer (canonical node ID) and epoch."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def charge(
        self, peer_id: str, epoch: int, batch_id: bytes, n: int, budget: int, peer_name: str
    ) -> int:
        """Charge `n` evaluations to the peer in `epoch`; return what is left of `budget`.

        All or nothing: a batch that does not fit raises BudgetExhausted and charges
        nothing. A `batch_id` already charged for (peer, epoch) is not charged again and
        returns the current remainder; the same ID with another `n` is a ProtocolViolation.
        A peer that is no longer pinned raises UnknownPeer (removal may race a stream).
        """
        if n < 1:
            raise ValueError(f"a batch must have at least one element, not {n}")
        if budget < 0 or epoch < 0:
            raise ValueError(f"budget ({budget}) and epoch ({epoch}) must not be negative")
        with write_scope(self._conn) as conn:
            pinned = conn.execute("SELECT 1 FROM peers WHERE node_id = ?", (peer_id,)).fetchone()
            if pinned is None:
                raise UnknownPeer(f"node ID {peer_id} is not a pinned peer")
            used = self.used(peer_id, epoch)
            row = conn.execute(
                "SELECT n FROM budget_batches WHERE peer_id = ? AND epoch = ? AND batch_id = ?",
                (peer_id, epoch, batch_id),
            ).fetchone()
            if row is not None:
                if int(row[0]) != n:
                    raise ProtocolViolation(
                        f"batch {batch_id.hex()} was charged for {int(row[0]):,} evaluations; "
                        f"a retry of it has {n:,}"
                    )
                return max(budget - used, 0)
            left = max(budget - used, 0)
            if n > left:
                raise BudgetExhausted(
                    f"budget exhausted for peer {peer_name!r}: a batch of {n:,} evaluations, "
                    f"{left:,} of {budget:,} left in epoch {epoch}"
                )
            conn.execute(
                "INSERT INTO budget_usage (peer_id, epoch, used) VALUES (?, ?, ?) "
                "ON CONFLICT (peer_id, epoch) DO UPDATE SET used = used + excluded.used",
                (peer_id, epoch, n),
            )
            conn.execute(
                "INSERT INTO budget_batches (peer_id, epoch, batch_id, n) VALUES (?, ?, ?, ?)",
                (peer_id, epoch, batch_id, n),
            )
        return left - n

    def used(self, peer_id: str, epoch: int) -> int:
        """Evaluations charged to the peer in `epoch` (0 if none)."""
        row = self._conn.execute(
            "SELECT used FROM budget_usage WHERE peer_id = ? AND epoch = ?", (peer_id, epoch)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def remaining(self, peer_id: str, epoch: int, budget: int) -> int:
        """What is left of `budget` in `epoch`; 0, not negative, after the budget was cut."""
        return max(budget - self.used(peer_id, epoch), 0)

    def forget_before(self, epoch: int) -> int:
        """Drop the counters of epochs older than `epoch` (their keys are gone); return how
        many (peer, epoch) counters went.
        """
        with write_scope(self._conn) as conn:
            conn.execute("DELETE FROM budget_batches WHERE epoch < ?", (epoch,))
            return int(conn.execute("DELETE FROM budget_usage WHERE epoch < ?", (epoch,)).rowcount)
