"""The chart of new collisions over time: bucketing and the SVG it draws."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import xml.etree.ElementTree as ET

from node.report import chart

D = dt.date


def test_days_with_empty_days_drawn_as_zero() -> None:
    days = [D(2026, 3, 10), D(2026, 3, 1), D(2026, 3, 10), D(2026, 3, 3)]
    unit, buckets = chart.bucket(days)
    assert unit == "day"
    assert [b.start for b in buckets] == [D(2026, 3, n) for n in range(1, 11)]
    assert [b.count for b in buckets] == [1, 0, 1, 0, 0, 0, 0, 0, 0, 2]


def test_a_short_range_is_padded_before_so_a_first_match_has_context() -> None:
    unit, buckets = chart.bucket([D(2026, 3, 2), D(2026, 3, 1)])
    assert unit == "day" and len(buckets) == chart.MIN_BARS
    assert buckets[0].start == D(2026, 2, 24) and buckets[-1] == chart.Bucket(D(2026, 3, 2), 1)
    assert [b.count for b in buckets] == [0, 0, 0, 0, 0, 1, 1]


def test_days_up_to_the_limit_then_weeks_from_monday() -> None:
    first = D(2026, 1, 1)  # a Thursday
    last = first + dt.timedelta(days=chart.DAY_LIMIT - 1)
    assert chart.bucket([first, last])[0] == "day"
    unit, buckets = chart.bucket([first, last + dt.timedelta(days=1)])
    assert unit == "week"
    assert buckets[0] == chart.Bucket(D(2025, 12, 29), 1)  # the Monday of that week
    assert all(b.start.weekday() == 0 for b in buckets)
    assert [b.start - a.start for a, b in itertools.pairwise(buckets)] == [dt.timedelta(days=7)] * (
        len(buckets) - 1
    )
    assert sum(b.count for b in buckets) == 2


def test_months_for_long_ranges_across_a_year_end() -> None:
    days = [D(2024, 11, 30), D(2024, 12, 1), D(2025, 1, 31), D(2027, 2, 1)]
    unit, buckets = chart.bucket(days)
    assert unit == "month"
    assert buckets[:3] == [
        chart.Bucket(D(2024, 11, 1), 1),
        chart.Bucket(D(2024, 12, 1), 1),
        chart.Bucket(D(2025, 1, 1), 1),
    ]
    assert buckets[-1] == chart.Bucket(D(2027, 2, 1), 1)
    assert len(buckets) == 28 and sum(b.count for b in buckets) == 4


def test_no_days_no_buckets() -> None:
    assert chart.bucket([]) == ("day", [])


def test_axis_scale_is_round() -> None:
    assert chart._scale_max(0) == (1, 1)
    assert chart._scale_max(5) == (5, 1)
    assert chart._scale_max(7) == (8, 2)
    assert chart._scale_max(23) == (25, 5)
    assert chart._scale_max(49_999) == (50_000, 10_000)


def test_svg_is_well_formed_titled_and_has_one_bar_per_non_empty_bucket() -> None:
    unit, buckets = chart.bucket([D(2026, 3, 1)] * 3 + [D(2026, 3, 4)])
    svg = chart.svg(unit, buckets)
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and root.get("aria-labelledby") == "chart-title chart-desc"
    assert root.find("title").text == "New collisions per day"  # type: ignore[union-attr]
    bars = root.findall("rect")
    assert len(bars) == 2
    heights = sorted(float(b.get("height", "0")) for b in bars)
    assert heights[1] == 3 * heights[0]
    assert [b.find("title").text for b in bars] == ["2026-03-01: 3", "2026-03-04: 1"]  # type: ignore[union-attr]
    texts = [t.text for t in root.iter("text")]
    assert "New collisions" in texts and any("Date first matched" in (t or "") for t in texts)
    assert not re.search(r"nan|inf", svg)
