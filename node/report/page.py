"""The HTML report: one self-contained page an investigator can open, keep and print.

The page loads nothing: styles are inline, the chart is inline SVG, there is no script, and
its Content-Security-Policy forbids every fetch, so opening it leaks nothing about the
investigation to any server. Every value and label comes from a peer or an import and is
escaped. It is built in one pass of string joins: 50,000 collisions render in about half a
second (some 20 MB of HTML).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from node import __version__
from node.report import chart
from node.report.since import first_matched, is_new
from node.report.summary import Summary, summarise
from node.store.matches import Collision

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
:root { --ink: #1d2430; --muted: #5b6675; --line: #d9dee5; --band: #f4f6f9;
  --accent: #1f4e8c; --accent-soft: #e6eef8; --new: #a3431a; --new-soft: #fbeadf; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
header.masthead { background: var(--accent); color: #fff; padding: 24px 40px 20px; }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: 12px; opacity: .8; }
h1 { margin: 4px 0 12px; font-size: 26px; font-weight: 600; }
.meta { display: flex; flex-wrap: wrap; gap: 8px 32px; margin: 0; }
.meta div { display: flex; gap: 8px; }
.meta dt { opacity: .75; }
.meta dd { margin: 0; font-weight: 600; }
.confidential { margin: 14px 0 0; font-size: 12px; opacity: .85; }
main { padding: 8px 40px 40px; max-width: 1400px; }
section { margin-top: 28px; }
h2 { font-size: 18px; font-weight: 600; margin: 0 0 10px; padding-bottom: 6px;
  border-bottom: 2px solid var(--line); }
.note { color: var(--muted); margin: 0 0 10px; }
.empty { padding: 16px; background: var(--band); border-radius: 6px; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
  gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
  background: var(--band); }
.card .figure { display: block; font-size: 28px; font-weight: 600; color: var(--accent);
  font-variant-numeric: tabular-nums; }
.card.new .figure { color: var(--new); }
.cards.kinds { margin-top: 12px; }
.card.kind { background: #fff; padding: 8px 16px; }
.card.kind .figure { font-size: 20px; }
.card .what { color: var(--muted); font-size: 13px; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr));
  gap: 0 32px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px;
  border-bottom: 1px solid var(--line); }
thead th { background: var(--band); font-weight: 600; color: var(--muted);
  font-size: 12px; border-bottom: 2px solid var(--line); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.value { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  white-space: nowrap; }
td.date { white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.is-new td:first-child { box-shadow: inset 3px 0 0 var(--new); }
.peer { margin: 1px 0; }
.peer .name { font-weight: 600; }
.tag { display: inline-block; padding: 0 6px; margin: 1px 2px; border-radius: 10px;
  background: var(--accent-soft); color: var(--accent); font-size: 12px; }
.tag.none { background: none; color: var(--muted); }
.badge { display: inline-block; padding: 0 5px; margin-left: 4px; border-radius: 3px;
  background: var(--new-soft); color: var(--new); font-size: 11px; font-weight: 600;
  text-transform: uppercase; }
svg.chart { width: 100%; max-width: 960px; height: auto; display: block; }
svg.chart .bar { fill: var(--accent); }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .axis { stroke: var(--muted); stroke-width: 1; }
svg.chart .tick { fill: var(--muted); font-size: 12px; }
svg.chart .axis-title { fill: var(--ink); font-size: 13px; font-weight: 600; }
footer { color: var(--muted); font-size: 12px; padding: 0 40px 32px; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { font-size: 10pt; }
  header.masthead { background: none; color: var(--ink); padding: 0 0 8px;
    border-bottom: 2px solid var(--ink); }
  main, footer { padding-left: 0; padding-right: 0; max-width: none; }
  .card, svg.chart, tr, .pair > div { break-inside: avoid; }
  h2 { break-after: avoid; }
  thead { display: table-header-group; }
  tbody tr:nth-child(even) { background: none; }
}
"""


@dataclass(frozen=True)
class Scope:
    """What the report was asked for, stated in its header."""

    min_peers: int = 1
    kind: str | None = None
    since: dt.datetime | None = None

    def describe(self) -> str:
        parts = [
            f"held by at least {self.min_peers} other member{'s' if self.min_peers > 1 else ''}",
            f"kind {self.kind}" if self.kind else "all kinds",
        ]
        if self.since is not None:
            parts.append(f"new since {_since(self.since)}")
        return "; ".join(parts)


esc = lru_cache(maxsize=8192)(html.escape)
"""Peer names and labels repeat across rows; values do not, but the cache is bounded."""


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _since(at: dt.datetime) -> str:
    """`--since` as given: a bare day for `YYYY-MM-DD` (midnight UTC), else to the minute."""
    at = at.astimezone(dt.UTC)
    return at.date().isoformat() if at.time() == dt.time() else _when(at)


def _day(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).date().isoformat()


def _card(figure: int, what: str, cls: str = "card") -> str:
    return (
        f'<div class="{cls}"><span class="figure">{figure:,}</span>'
        f'<span class="what">{what}</span></div>'
    )


def _summary(s: Summary, scope: Scope) -> str:
    cards = [
        _card(s.clues, "of our clues are held by other members"),
        _card(s.matches, "matches (clue and member pairs)"),
        _card(s.peers, "members hold at least one"),
        _card(s.shared_widely, "clues held by two or more members"),
    ]
    if scope.since is not None:
        when = esc(_since(scope.since))
        cards.append(_card(s.new_clues or 0, f"new clues since {when}", "card new"))
        cards.append(_card(s.new_matches or 0, f"new matches since {when}", "card new"))
    kinds = "".join(_card(k.clues, f"{esc(k.kind)} clues", "card kind") for k in s.by_kind)
    return f'<div class="cards">{"".join(cards)}</div><div class="cards kinds">{kinds}</div>'


def _table(head: Sequence[tuple[str, str]], body: Sequence[str], cls: str = "") -> str:
    ths = "".join(f'<th class="{c}">{h}</th>' if c else f"<th>{h}</th>" for h, c in head)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _by_kind(s: Summary, since: bool) -> str:
    head = [("Kind", ""), ("Clues", "num"), ("Matches", "num"), ("Held by 2+", "num")]
    head += [("New clues", "num")] if since else []
    head += [("First matched", ""), ("Last matched", "")]
    body = [
        f"<tr><td>{esc(k.kind)}</td><td class=num>{k.clues:,}</td>"
        f"<td class=num>{k.matches:,}</td><td class=num>{k.shared_widely:,}</td>"
        + (f"<td class=num>{k.new_clues:,}</td>" if since else "")
        + f"<td class=date>{_day(k.first_matched)}</td>"
        f"<td class=date>{_day(k.last_matched)}</td></tr>"
        for k in s.by_kind
    ]
    return _table(head, body, "figures")


def _by_peer(s: Summary, since: bool) -> str:
    kinds = [k.kind for k in s.by_kind]
    head = [("Member", ""), ("Clues", "num")] + [(esc(k), "num") for k in kinds]
    head += [("New matches", "num")] if since else []
    head += [("First matched", ""), ("Last matched", "")]
    body = []
    for p in s.by_peer:
        held = dict(p.by_kind)
        body.append(
            f'<tr><td><span class="peer name">{esc(p.peer)}</span></td>'
            f"<td class=num>{p.clues:,}</td>"
            + "".join(f"<td class=num>{held.get(k, 0):,}</td>" for k in kinds)
            + (f"<td class=num>{p.new_matches:,}</td>" if since else "")
            + f"<td class=date>{_day(p.first_matched)}</td>"
            f"<td class=date>{_day(p.last_matched)}</td></tr>"
        )
    return _table(head, body, "figures")


def _tags(labels: Sequence[str]) -> str:
    if not labels:
        return '<span class="tag none">no labels</span>'
    return " ".join(f'<span class="tag">{esc(label)}</span>' for label in labels)


def _clue_rows(collisions: Sequence[Collision], since: dt.datetime | None) -> list[str]:
    ordered = sorted(collisions, key=lambda c: (-len(c.peers), c.kind, c.value))
    out = []
    for n, c in enumerate(ordered, 1):
        held = []
        any_new = False
        for p in c.peers:
            new = is_new(p, since)
            any_new = any_new or new
            badge = '<span class="badge">new</span>' if new else ""
            held.append(
                f'<div class="peer"><span class="name">{esc(p.peer)}</span>{badge} '
                f"{_tags(p.labels)}</div>"
            )
        out.append(
            f'<tr class="clue{" is-new" if any_new else ""}"><td class=num>{n:,}</td>'
            f"<td>{esc(c.kind)}</td><td class=value>{html.escape(c.value)}</td>"
            f"<td class=num>{len(c.peers)}</td><td>{''.join(held)}</td>"
            f"<td>{_tags(c.own_labels)}</td><td class=date>{esc(c.first_seen)}</td>"
            f"<td class=date>{esc(c.last_seen)}</td>"
            f"<td class=date>{_when(first_matched(c))}</td></tr>"
        )
    return out


def _timeline(collisions: Sequence[Collision]) -> str:
    unit, buckets = chart.bucket([first_matched(c).date() for c in collisions])
    return (
        '<section id="timeline" aria-labelledby="h-timeline">'
        '<h2 id="h-timeline">New collisions over time</h2>'
        '<p class="note">Each clue is counted once, on the day the first member was '
        f"found holding it.</p>{chart.svg(unit, buckets)}</section>"
    )


def _tables(s: Summary, since: bool) -> str:
    return (
        '<div class="pair"><div><section id="by-kind" aria-labelledby="h-kind">'
        f'<h2 id="h-kind">By kind</h2>{_by_kind(s, since)}</section></div>'
        '<div><section id="by-peer" aria-labelledby="h-peer"><h2 id="h-peer">By member</h2>'
        f"{_by_peer(s, since)}</section></div></div>"
    )


CLUE_COLUMNS = (
    ("#", "num"),
    ("Kind", ""),
    ("Value", ""),
    ("Members", "num"),
    ("Held by, with the labels each shared", ""),
    ("Our labels", ""),
    ("First seen", ""),
    ("Last seen", ""),
    ("First matched", ""),
)


def _clues(collisions: Sequence[Collision], scope: Scope) -> str:
    marker = (
        ' Rows marked at the left and members marked <span class="badge">new</span> '
        f"were matched at or after {esc(_since(scope.since))}."
        if scope.since is not None
        else ""
    )
    note = (
        '<p class="note">Held by the most members first, then by kind and value. '
        f"First and last seen are from our own records.{marker}</p>"
    )
    table = _table(CLUE_COLUMNS, _clue_rows(collisions, scope.since), "clues")
    return _clue_section(len(collisions), note + table)


def _clue_section(count: int, body: str) -> str:
    return (
        '<section id="clues" aria-labelledby="h-clues">'
        f'<h2 id="h-clues">Clues ({count:,})</h2>{body}</section>'
    )


def _empty(scope: Scope) -> str:
    since = f" since {_since(scope.since)}" if scope.since is not None else ""
    return (
        f'<p class="empty">No collisions{esc(since)}: none of our clues in this report\'s scope '
        "is held by another member.</p>"
    )


def to_html(
    collisions: Sequence[Collision],
    node_name: str,
    generated_at: dt.datetime,
    scope: Scope | None = None,
) -> str:
    """The whole page. `collisions` are those in `scope` (already filtered by it)."""
    scope = scope or Scope()
    s = summarise(collisions, scope.since)
    title = esc(f"Clue collisions at {node_name}")
    if collisions:
        sections = (
            _timeline(collisions) + _tables(s, scope.since is not None) + _clues(collisions, scope)
        )
    else:
        sections = _clue_section(0, _empty(scope))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style></head><body>
<header class="masthead">
<div class="eyebrow">aif-node collision report</div>
<h1>{title}</h1>
<dl class="meta"><div><dt>Generated</dt><dd>{_when(generated_at)}</dd></div>
<div><dt>Scope</dt><dd>{esc(scope.describe())}</dd></div></dl>
<p class="confidential">Confidential: this report holds clue values and what other members
said about them. Keep it within the investigation.</p>
</header>
<main>
<section id="summary" aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2>
{_summary(s, scope)}</section>
{sections}
</main>
<footer>aif-node {__version__}. Dates and times are UTC; first and last seen are as our
own records have them.</footer>
</body></html>
"""
