"""The machine-readable forms (CSV, JSON) and the rows of the terminal table.

CSV and JSON are loaded by case-management systems, so they are a contract
(docs/report-formats.md, docs/schemas/): columns and keys are only ever added at the end,
never renamed, removed or reordered. Both list collisions by kind, then value.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from node.report.since import at_utc, is_new
from node.store.matches import Collision

CSV_COLUMNS = (
    "kind",
    "value",
    "peer_count",
    "peers",
    "peer_labels",
    "own_labels",
    # Added to the first six: dates, and what is new since --since. New columns go last.
    "first_seen",
    "last_seen",
    "first_matched_at",
    "matched_at",
    "peer_matched_at",
    "new_peers",
)


def _first_matched_at(c: Collision) -> str:
    return min(c.peers, key=lambda p: at_utc(p.matched_at)).matched_at


def _new_peers(c: Collision, since: dt.datetime | None) -> list[str]:
    return [p.peer for p in c.peers if is_new(p, since)]


def as_dicts(
    collisions: Sequence[Collision], since: dt.datetime | None = None
) -> Iterator[dict[str, Any]]:
    """The JSON form's objects, one at a time (a report may hold a million)."""
    return (
        {
            "kind": c.kind,
            "value": c.value,
            "peers": [p.peer for p in c.peers],
            "labels": {p.peer: list(p.labels) for p in c.peers},
            "own_labels": list(c.own_labels),
            "first_seen": c.first_seen,
            "last_seen": c.last_seen,
            "matched_at": max(p.matched_at for p in c.peers),
            "peer_count": len(c.peers),
            "first_matched_at": _first_matched_at(c),
            "peer_matched_at": {p.peer: p.matched_at for p in c.peers},
            "new_peers": None if since is None else _new_peers(c, since),
        }
        for c in collisions
    )


def to_json(collisions: Sequence[Collision], since: dt.datetime | None = None) -> str:
    """A JSON array with one collision object per line: `indent` would switch json to its
    pure-Python encoder, which took 9x the CSV's time and 8x its output in memory."""
    rows = (json.dumps(row, ensure_ascii=False) for row in as_dicts(collisions, since))
    body = ",\n".join(rows)
    return f"[\n{body}\n]\n" if body else "[]\n"


def to_csv(collisions: Sequence[Collision], since: dt.datetime | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in collisions:
        writer.writerow(
            [
                c.kind,
                c.value,
                len(c.peers),
                ";".join(p.peer for p in c.peers),
                ";".join(f"{p.peer}={'|'.join(p.labels)}" for p in c.peers),
                "|".join(c.own_labels),
                c.first_seen,
                c.last_seen,
                _first_matched_at(c),
                max(p.matched_at for p in c.peers),
                ";".join(f"{p.peer}={p.matched_at}" for p in c.peers),
                ";".join(_new_peers(c, since)),
            ]
        )
    return out.getvalue()


def rows(
    collisions: Sequence[Collision], since: dt.datetime | None = None
) -> list[tuple[str, str, str, str]]:
    """(kind, value, peers, labels by peer) for a table; a peer new since `since` is starred."""
    return [
        (
            c.kind,
            c.value,
            str(len(c.peers)),
            "; ".join(
                f"{p.peer}{' *' if is_new(p, since) else ''}: {', '.join(p.labels) or '-'}"
                for p in c.peers
            ),
        )
        for c in collisions
    ]
