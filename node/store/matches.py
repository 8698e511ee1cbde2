"""The client side of matching, per peer: OPRF results cache, tag set copies and matches.

- `match_cache` holds, per (peer, kind, record), the tag and label key of our record under
  the peer's key of one epoch; rows of any other epoch are stale and are dropped, so a
  repeated match evaluates only records without a row.
- `peer_tagsets` / `peer_tags` are our copy of the peer's tag set, brought up to the
  version in `peer_tagsets` by the last sync. A full sync first sets the version to 0, so
  one interrupted half way is redone in full rather than continued as a delta.
- `matches` are our live records the peer holds too, with the labels it shared; they are
  replaced per (peer, kind) in one transaction by the matcher.

Only SQL lives here; tags and labels are computed and opened by `node.psi.matcher`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from node.store.connection import write_scope


@dataclass(frozen=True)
class PeerTagSet:
    """How far our copy of a peer's tag set of one kind is."""

    kind: str
    epoch: int
    version: int
    policy_token: str


@dataclass(frozen=True)
class MatchCandidate:
    """A live record of ours whose tag under the peer's key is in the peer's tag set."""

    record_id: int
    tag: bytes
    label_key: bytes
    sealed: bytes


@dataclass(frozen=True)
class PeerMatch:
    peer: str
    """The peer's name."""
    labels: tuple[str, ...]
    matched_at: str


@dataclass(frozen=True)
class Collision:
    """One of our live records that peers hold too, with what each shared."""

    kind: str
    value: str
    own_labels: tuple[str, ...]
    first_seen: str
    last_seen: str
    peers: tuple[PeerMatch, ...]
    """Sorted by peer name."""


def _labels_json(labels: Sequence[str]) -> str:
    return json.dumps(sorted(set(labels)), ensure_ascii=False, separators=(",", ":"))


class MatchStore:
    """Per-peer matching state in one SQLite connection; writes join the caller's
    transaction, if any."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # --- the OPRF results cache --------------------------------------------------------

    def drop_stale_cache(self, peer_id: str, epoch: int) -> int:
        """Delete the peer's cache rows of any epoch but `epoch`; return how many."""
        with write_scope(self._conn) as conn:
            n = conn.execute(
                "DELETE FROM match_cache WHERE peer_id = ? AND epoch <> ?", (peer_id, epoch)
            ).rowcount
        return int(n)

    def pending(
        self, peer_id: str, kind: str, epoch: int, after_id: int, limit: int
    ) -> list[tuple[int, str]]:
        """Up to `limit` (id, value) of our live records of `kind` after `after_id`, in id
        order, that have no cache row for the peer in `epoch`."""
        rows = self._conn.execute(
            # The pages walk the table itself in id order. Through the (kind, seq) index
            # every page sorted the whole kind (quadratic: minutes at 10^6); an index on
            # kind alone would do, but it made SQLite plan the import's upserts through it
            # and cut import speed to a third.
            "SELECT r.id, r.value FROM records AS r NOT INDEXED "
            "WHERE r.kind = ? AND r.removed = 0 "
            "AND r.id > ? AND NOT EXISTS (SELECT 1 FROM match_cache AS c "
            "WHERE c.peer_id = ? AND c.kind = r.kind AND c.record_id = r.id AND c.epoch = ?) "
            "ORDER BY r.id LIMIT ?",
            (kind, after_id, peer_id, epoch, limit),
        ).fetchall()
        return [(int(rid), str(value)) for rid, value in rows]

    def cached_count(self, peer_id: str, kind: str, epoch: int) -> int:
        """Our live records of `kind` with a cache row for the peer in `epoch`."""
        row = self._conn.execute(
            "SELECT count(*) FROM match_cache AS c JOIN records AS r ON r.id = c.record_id "
            "WHERE c.peer_id = ? AND c.kind = ? AND c.epoch = ? AND r.removed = 0",
            (peer_id, kind, epoch),
        ).fetchone()
        return int(row[0])

    def put_cache(
        self, peer_id: str, epoch: int, kind: str, rows: Sequence[tuple[int, bytes, bytes]]
    ) -> None:
        """Store (record_id, tag, label_key) rows for the peer in `epoch`."""
        with write_scope(self._conn) as conn:
            conn.executemany(
                "INSERT INTO match_cache (peer_id, epoch, kind, record_id, tag, label_key) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (peer_id, kind, record_id) DO UPDATE "
                "SET epoch = excluded.epoch, tag = excluded.tag, label_key = excluded.label_key",
                [(peer_id, epoch, kind, rid, tag, key) for rid, tag, key in rows],
            )

    # --- our copy of the peer's tag sets -----------------------------------------------

    def tagset(self, peer_id: str, kind: str) -> PeerTagSet | None:
        row = self._conn.execute(
            "SELECT epoch, version, policy_token FROM peer_tagsets WHERE peer_id = ? AND kind = ?",
            (peer_id, kind),
        ).fetchone()
        return None if row is None else PeerTagSet(kind, int(row[0]), int(row[1]), str(row[2]))

    def start_full_sync(self, peer_id: str, kind: str, epoch: int, policy_token: str) -> None:
        """Empty our copy and mark it version 0 until `finish_sync`."""
        with write_scope(self._conn) as conn:
            conn.execute("DELETE FROM peer_tags WHERE peer_id = ? AND kind = ?", (peer_id, kind))
            self._set_tagset(conn, peer_id, PeerTagSet(kind, epoch, 0, policy_token))

    def apply_tags(
        self,
        peer_id: str,
        kind: str,
        added: Sequence[tuple[bytes, bytes]],
        removed: Sequence[bytes],
    ) -> None:
        """Upsert (tag, sealed) pairs and drop `removed` tags; both are idempotent, so a
        delta applied twice leaves the same copy."""
        with write_scope(self._conn) as conn:
            conn.executemany(
                "DELETE FROM peer_tags WHERE peer_id = ? AND kind = ? AND tag = ?",
                [(peer_id, kind, tag) for tag in removed],
            )
            conn.executemany(
                "INSERT INTO peer_tags (peer_id, kind, tag, sealed) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (peer_id, kind, tag) DO UPDATE SET sealed = excluded.sealed",
                [(peer_id, kind, tag, sealed) for tag, sealed in added],
            )

    def finish_sync(self, peer_id: str, state: PeerTagSet) -> None:
        with write_scope(self._conn) as conn:
            self._set_tagset(conn, peer_id, state)

    def peer_tag_count(self, peer_id: str, kind: str) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM peer_tags WHERE peer_id = ? AND kind = ?", (peer_id, kind)
        ).fetchone()
        return int(row[0])

    def drop_kind(self, peer_id: str, kind: str) -> int:
        """Forget the peer's tag set and matches of `kind` (it no longer offers the kind);
        return how many matches went. The OPRF cache stays: it is still valid."""
        with write_scope(self._conn) as conn:
            conn.execute("DELETE FROM peer_tags WHERE peer_id = ? AND kind = ?", (peer_id, kind))
            conn.execute("DELETE FROM peer_tagsets WHERE peer_id = ? AND kind = ?", (peer_id, kind))
            n = conn.execute(
                "DELETE FROM matches WHERE peer_id = ? AND kind = ?", (peer_id, kind)
            ).rowcount
        return int(n)

    def known_kinds(self, peer_id: str) -> set[str]:
        """Kinds we hold a tag set copy or matches of for the peer."""
        rows = self._conn.execute(
            "SELECT kind FROM peer_tagsets WHERE peer_id = ? "
            "UNION SELECT DISTINCT kind FROM matches WHERE peer_id = ?",
            (peer_id, peer_id),
        )
        return {str(kind) for (kind,) in rows}

    # --- matches --------------------------------------------------------------------------

    def candidates(self, peer_id: str, kind: str, epoch: int) -> list[MatchCandidate]:
        """Our live records of `kind` whose cached tag (for `epoch`) the peer's copy holds."""
        rows = self._conn.execute(
            "SELECT c.record_id, c.tag, c.label_key, t.sealed FROM match_cache AS c "
            "JOIN peer_tags AS t ON t.peer_id = c.peer_id AND t.kind = c.kind AND t.tag = c.tag "
            "JOIN records AS r ON r.id = c.record_id AND r.removed = 0 "
            "WHERE c.peer_id = ? AND c.kind = ? AND c.epoch = ? ORDER BY c.record_id",
            (peer_id, kind, epoch),
        ).fetchall()
        return [
            MatchCandidate(int(rid), bytes(tag), bytes(key), bytes(sealed))
            for rid, tag, key, sealed in rows
        ]

    def replace_matches(
        self,
        peer_id: str,
        kind: str,
        found: Sequence[tuple[int, Sequence[str]]],
        now: str,
    ) -> int:
        """Make (record_id, labels) pairs the peer's whole set of matches of `kind`.

        A match found before keeps its `matched_at`; new ones get `now`. Returns how many
        matches were new.
        """
        with write_scope(self._conn) as conn:
            before = {
                int(rid): str(at)
                for rid, at in conn.execute(
                    "SELECT record_id, matched_at FROM matches WHERE peer_id = ? AND kind = ?",
                    (peer_id, kind),
                )
            }
            conn.execute("DELETE FROM matches WHERE peer_id = ? AND kind = ?", (peer_id, kind))
            conn.executemany(
                "INSERT INTO matches (peer_id, record_id, kind, labels, matched_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (peer_id, rid, kind, _labels_json(labels), before.get(rid, now))
                    for rid, labels in found
                ],
            )
        return sum(1 for rid, _ in found if rid not in before)

    def match_count(self, peer_id: str, kind: str | None = None) -> int:
        if kind is None:
            row = self._conn.execute(
                "SELECT count(*) FROM matches WHERE peer_id = ?", (peer_id,)
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT count(*) FROM matches WHERE peer_id = ? AND kind = ?", (peer_id, kind)
            ).fetchone()
        return int(row[0])

    def collisions(self, min_peers: int = 1, kind: str | None = None) -> list[Collision]:
        """Our live records that at least `min_peers` pinned peers hold too, by kind and
        value, each with the labels every such peer shared."""
        if min_peers < 1:
            raise ValueError(f"min_peers must be at least 1, not {min_peers}")
        rows = self._conn.execute(
            "SELECT r.id, r.kind, r.value, r.labels, r.first_seen, r.last_seen, "
            "p.name, m.labels, m.matched_at "
            "FROM matches AS m JOIN records AS r ON r.id = m.record_id AND r.removed = 0 "
            "JOIN peers AS p ON p.node_id = m.peer_id "
            "WHERE (? IS NULL OR r.kind = ?) AND m.record_id IN "
            "(SELECT record_id FROM matches GROUP BY record_id HAVING count(*) >= ?) "
            "ORDER BY r.kind, r.value, p.name",
            (kind, kind, min_peers),
        ).fetchall()
        grouped: dict[int, tuple[tuple[Any, ...], list[PeerMatch]]] = {}
        for row in rows:
            rid = int(row[0])
            entry = grouped.setdefault(rid, (row, []))
            entry[1].append(PeerMatch(str(row[6]), _tuple(row[7]), str(row[8])))
        return [
            Collision(
                kind=str(row[1]),
                value=str(row[2]),
                own_labels=_tuple(row[3]),
                first_seen=str(row[4]),
                last_seen=str(row[5]),
                peers=tuple(peers),
            )
            for row, peers in grouped.values()
            if len(peers) >= min_peers
        ]

    @staticmethod
    def _set_tagset(conn: sqlite3.Connection, peer_id: str, state: PeerTagSet) -> None:
        conn.execute(
            "INSERT INTO peer_tagsets (peer_id, kind, epoch, version, policy_token) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (peer_id, kind) DO UPDATE SET "
            "epoch = excluded.epoch, version = excluded.version, "
            "policy_token = excluded.policy_token",
            (peer_id, state.kind, state.epoch, state.version, state.policy_token),
        )


def _tuple(text: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in json.loads(str(text)))
