"""Rendering the collision report: a terminal table, CSV, JSON, or a self-contained HTML page.

The JSON form is the machine-readable contract: an array of objects with `kind`, `value`,
`peers` (peer names), `labels` (peer name -> list of labels), plus our own labels and dates.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from typing import Any

from node.store.matches import Collision

FORMATS = ("table", "csv", "json", "html")


def as_dicts(collisions: Sequence[Collision]) -> list[dict[str, Any]]:
    return [
        {
            "kind": c.kind,
            "value": c.value,
            "peers": [p.peer for p in c.peers],
            "labels": {p.peer: list(p.labels) for p in c.peers},
            "own_labels": list(c.own_labels),
            "first_seen": c.first_seen,
            "last_seen": c.last_seen,
            "matched_at": max(p.matched_at for p in c.peers),
        }
        for c in collisions
    ]


def to_json(collisions: Sequence[Collision]) -> str:
    return json.dumps(as_dicts(collisions), ensure_ascii=False, indent=2)


def to_csv(collisions: Sequence[Collision]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["kind", "value", "peer_count", "peers", "peer_labels", "own_labels"])
    for c in collisions:
        writer.writerow(
            [
                c.kind,
                c.value,
                len(c.peers),
                ";".join(p.peer for p in c.peers),
                ";".join(f"{p.peer}={'|'.join(p.labels)}" for p in c.peers),
                "|".join(c.own_labels),
            ]
        )
    return out.getvalue()


def rows(collisions: Sequence[Collision]) -> list[tuple[str, str, str, str]]:
    """(kind, value, peers, labels by peer) for a table."""
    return [
        (
            c.kind,
            c.value,
            str(len(c.peers)),
            "; ".join(f"{p.peer}: {', '.join(p.labels) or '-'}" for p in c.peers),
        )
        for c in collisions
    ]


def to_html(collisions: Sequence[Collision], node_name: str) -> str:
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows(collisions)
    )
    title = html.escape(f"Clue collisions at {node_name}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }}
th {{ background: #f3f3f3; }}
</style></head><body>
<h1>{title}</h1>
<p>{len(collisions)} of our clues are held by other members too.</p>
<table><thead><tr><th>kind</th><th>value</th><th>peers</th><th>their labels</th></tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""
