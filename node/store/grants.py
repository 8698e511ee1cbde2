"""What each peer grants us: its evaluation budget for us, as it last told us.

A peer's budget is its to count; we keep the figures from its node info and from its last
answered batch, so `aif-node status` shows both sides of every budget without a call.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from node.store.connection import write_scope

SCHEMA_V4 = """
CREATE TABLE peer_grants (
    peer_id TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL,           -- the peer's epoch the figures belong to
    budget_total INTEGER NOT NULL,    -- evaluations per epoch it grants us
    budget_remaining INTEGER NOT NULL,
    seen_at TEXT NOT NULL             -- UTC ISO time we learned them
);
"""


@dataclass(frozen=True)
class Grant:
    peer_id: str
    epoch: int
    budget_total: int
    budget_remaining: int
    seen_at: str


class GrantStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def record(self, peer_id: str, epoch: int, total: int, remaining: int, seen_at: str) -> None:
        with write_scope(self._conn) as conn:
            conn.execute(
                "INSERT INTO peer_grants VALUES (?, ?, ?, ?, ?) ON CONFLICT (peer_id) DO UPDATE "
                "SET epoch = excluded.epoch, budget_total = excluded.budget_total, "
                "budget_remaining = excluded.budget_remaining, seen_at = excluded.seen_at",
                (peer_id, epoch, total, remaining, seen_at),
            )

    def update_remaining(self, peer_id: str, epoch: int, remaining: int, seen_at: str) -> None:
        """The remaining budget a peer reported with its last answered batch."""
        with write_scope(self._conn) as conn:
            conn.execute(
                "UPDATE peer_grants SET budget_remaining = ?, seen_at = ? "
                "WHERE peer_id = ? AND epoch = ?",
                (remaining, seen_at, peer_id, epoch),
            )

    def get(self, peer_id: str) -> Grant | None:
        row = self._conn.execute(
            "SELECT peer_id, epoch, budget_total, budget_remaining, seen_at "
            "FROM peer_grants WHERE peer_id = ?",
            (peer_id,),
        ).fetchone()
        return (
            Grant(str(row[0]), int(row[1]), int(row[2]), int(row[3]), str(row[4])) if row else None
        )
