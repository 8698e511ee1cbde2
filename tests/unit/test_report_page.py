"""The HTML report as text: self-contained, escaped, complete; the browser test renders it."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

from report_data import HOSTILE, QUOTES, collision, sample

from node import report

NOW = dt.datetime(2026, 3, 5, 12, 0, tzinfo=dt.UTC)
MARCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


class _Page(HTMLParser):
    """Elements by tag, the attributes that could fetch, and the text of the clue rows."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.clue_rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr" and "clue" in (dict(attrs).get("class") or ""):
            self.clue_rows.append([])
        if tag == "td" and self.clue_rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self.clue_rows:
            self.clue_rows[-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        if tag == "table":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    return p


def test_the_page_loads_nothing_and_forbids_fetches() -> None:
    page = report.to_html(sample(), "bank", NOW)
    tags = parse(page).tags
    assert not [t for t, _ in tags if t in {"script", "link", "img", "iframe", "object"}]
    assert not [(t, a) for t, a in tags for k in ("src", "href", "action") if a.get(k)], (
        "a page that loads nothing needs no src or href"
    )
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", page, re.IGNORECASE)
    assert not re.search(r"url\(|@import", page)
    csp = [a for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0]["content"] == report.page.CSP
    assert "default-src 'none'" in report.page.CSP


def test_every_value_label_and_name_is_escaped() -> None:
    hostile = collision(
        "phone",
        f"+86{QUOTES}",
        (HOSTILE, "2026-03-02T00:00:00+00:00", (HOSTILE, QUOTES)),
        own=(HOSTILE,),
    )
    page = report.to_html([hostile], f"bank {HOSTILE} {QUOTES}", NOW)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;double&quot; &amp; &#x27;single&#x27;" in page
    row = parse(page).clue_rows[0]
    assert row[2] == f"+86{QUOTES}"
    assert row[4] == f"{HOSTILE} {HOSTILE} {QUOTES}"  # the member, then its labels


def test_clues_are_listed_by_the_number_of_members_then_kind_and_value() -> None:
    rows = parse(report.to_html(sample(), "bank", NOW)).clue_rows
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("1", "phone", "+8613800138000", "2"),
        ("2", "id_card", "110101199003070000", "1"),
        ("3", "phone", "+8613900139000", "1"),
    ]
    phone = rows[0]
    assert phone[4] == f"lender fraud_ring platform mule {HOSTILE}"
    assert phone[5:] == ["chargeback", "2026-01-01", "2026-02-01", "2026-01-05 09:00 UTC"]
    assert rows[1][4] == "lender no labels"


def test_header_summary_and_sections() -> None:
    page = report.to_html(sample(), "bank", NOW, report.Scope(min_peers=1, kind="phone"))
    ids = {a.get("id") for _, a in parse(page).tags}
    assert {"summary", "timeline", "by-kind", "by-peer", "clues"} <= ids
    assert "<title>Clue collisions at bank</title>" in page
    assert "2026-03-05 12:00 UTC" in page
    assert "held by at least 1 other member; kind phone" in page
    assert '<h2 id="h-clues">Clues (3)</h2>' in page
    figures = re.findall(r'class="figure">([\d,]+)</span><span class="what">([^<]+)<', page)
    assert figures[:4] == [
        ("3", "of our clues are held by other members"),
        ("4", "matches (clue and member pairs)"),
        ("2", "members hold at least one"),
        ("1", "clues held by two or more members"),
    ]
    assert "new since" not in page and 'class="badge"' not in page


def test_since_marks_new_rows_and_members() -> None:
    collisions = report.new_since(sample(), MARCH)
    page = report.to_html(collisions, "bank", NOW, report.Scope(since=MARCH))
    assert "new since 2026-03-01" in page
    assert page.count('<tr class="clue is-new">') == 2
    # The old member of an old clue is not new; the one that joined later is.
    assert '<span class="name">lender</span> ' in page
    assert page.count('</span><span class="badge">new</span>') == 2
    assert re.search(r'class="figure">1</span><span class="what">new clues since', page)
    assert re.search(r'class="figure">2</span><span class="what">new matches since', page)


def test_an_empty_report_still_renders_and_says_so() -> None:
    page = report.to_html([], "bank", NOW, report.Scope(since=MARCH))
    p = parse(page)
    assert p.clue_rows == []
    assert "No collisions since 2026-03-01" in page
    assert "<svg" not in page and 'id="by-kind"' not in page
    assert page.rstrip().endswith("</html>")
    assert "No collisions:" in report.to_html([], "bank", NOW)
    later = MARCH.replace(hour=9, minute=30)
    assert "No collisions since 2026-03-01 09:30 UTC" in report.to_html(
        [], "bank", NOW, report.Scope(since=later)
    )
