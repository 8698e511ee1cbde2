"""Match runs: when we last matched each peer, how it went and what it found.

One row per peer per `match` (by hand or on the schedule). `status`, the scheduler's
back-off and the metrics endpoint read the newest rows; the audit log stays the record of
what crossed the wire.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from node.store.connection import write_scope

SCHEMA_V5 = """
CREATE TABLE match_runs (
    id INTEGER PRIMARY KEY,
    peer_id TEXT NOT NULL,
    peer_name TEXT NOT NULL,
    trigger TEXT NOT NULL,            -- 'manual' or 'schedule'
    started_at TEXT NOT NULL,         -- UTC ISO time
    finished_at TEXT NOT NULL,
    status TEXT NOT NULL,             -- 'OK' or the error's class name
    error TEXT NOT NULL DEFAULT '',   -- the error's message; never a value or a secret
    evaluated INTEGER NOT NULL DEFAULT 0,
    matches INTEGER NOT NULL DEFAULT 0,
    new_matches INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX match_runs_peer ON match_runs (peer_id, id);
"""

TRIGGERS = ("manual", "schedule")


@dataclass(frozen=True)
class MatchRun:
    peer_id: str
    peer_name: str
    trigger: str
    started_at: str
    finished_at: str
    status: str
    error: str = ""
    evaluated: int = 0
    matches: int = 0
    new_matches: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "OK"


class MatchRunStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def record(self, run: MatchRun) -> None:
        if run.trigger not in TRIGGERS:
            raise ValueError(f"unknown match trigger {run.trigger!r}")
        with write_scope(self._conn) as conn:
            conn.execute(
                "INSERT INTO match_runs (peer_id, peer_name, trigger, started_at, finished_at, "
                "status, error, evaluated, matches, new_matches) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.peer_id,
                    run.peer_name,
                    run.trigger,
                    run.started_at,
                    run.finished_at,
                    run.status,
                    run.error,
                    run.evaluated,
                    run.matches,
                    run.new_matches,
                ),
            )

    def last(self, peer_id: str, *, ok_only: bool = False) -> MatchRun | None:
        """The peer's newest run (or newest successful one)."""
        row = self._conn.execute(
            "SELECT peer_id, peer_name, trigger, started_at, finished_at, status, error, "
            "evaluated, matches, new_matches FROM match_runs "
            "WHERE peer_id = ? AND (status = 'OK' OR NOT ?) ORDER BY id DESC LIMIT 1",
            (peer_id, ok_only),
        ).fetchone()
        return MatchRun(*row) if row else None

    def failures_since_success(self, peer_id: str) -> int:
        """Failed runs since the peer's last successful one: the scheduler's back-off step."""
        row = self._conn.execute(
            "SELECT COUNT(*) FROM match_runs WHERE peer_id = ? AND status != 'OK' AND id > "
            "COALESCE((SELECT MAX(id) FROM match_runs WHERE peer_id = ? AND status = 'OK'), 0)",
            (peer_id, peer_id),
        ).fetchone()
        return int(row[0])

    def counts(self) -> list[tuple[str, str, str, int]]:
        """(peer_id, trigger, status, runs) for every combination recorded."""
        rows = self._conn.execute(
            "SELECT peer_id, trigger, status, count(*) FROM match_runs "
            "GROUP BY peer_id, trigger, status ORDER BY 1, 2, 3"
        )
        return [(str(p), str(t), str(s), int(n)) for p, t, s, n in rows]

    def recent(self, limit: int = 50) -> list[MatchRun]:
        rows = self._conn.execute(
            "SELECT peer_id, peer_name, trigger, started_at, finished_at, status, error, "
            "evaluated, matches, new_matches FROM match_runs ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [MatchRun(*row) for row in rows]
