"""The chart of new collisions over time, as inline SVG (the page may load nothing).

A collision is counted on the day its first member match was found. Days become weeks
(starting Monday) past `DAY_LIMIT` days and months past `WEEK_LIMIT` weeks, so the chart keeps
a readable number of bars; empty periods are drawn as zero, so gaps show.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DAY_LIMIT = 92
WEEK_LIMIT = 104
MIN_BARS = 7
"""A chart starts at least this many periods before its last, so a first match has context."""

WIDTH, HEIGHT = 960, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 20, 64
MAX_X_LABELS = 8
MAX_BAR = 48


@dataclass(frozen=True)
class Bucket:
    start: dt.date
    count: int


def _week(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def bucket(days: Sequence[dt.date]) -> tuple[str, list[Bucket]]:
    """(unit, buckets): counts of `days` per day, week or month, every period from the
    first (or `MIN_BARS` periods before the last, if earlier) to the last, in order."""
    if not days:
        return "day", []
    first, last = min(days), max(days)
    span = (last - first).days + 1
    key: Callable[[dt.date], dt.date]
    step: Callable[[dt.date], dt.date]
    if span <= DAY_LIMIT:
        unit, key, step = "day", (lambda d: d), (lambda d: d + dt.timedelta(days=1))
    elif span <= WEEK_LIMIT * 7:
        unit, key, step = "week", _week, (lambda d: d + dt.timedelta(days=7))
    else:
        unit, key, step = "month", _month, _next_month
    counts = Counter(key(d) for d in days)
    buckets = []
    start, end = key(first), key(last)
    while start <= end:
        buckets.append(Bucket(start, counts.get(start, 0)))
        start = step(start)
    if len(buckets) < MIN_BARS:  # only ever days: weeks and months span more than that
        pad = [
            buckets[0].start - dt.timedelta(days=n) for n in range(MIN_BARS - len(buckets), 0, -1)
        ]
        buckets[:0] = [Bucket(d, 0) for d in pad]
    return unit, buckets


def _label(start: dt.date, unit: str) -> str:
    return start.strftime("%Y-%m") if unit == "month" else start.isoformat()


def _scale_max(peak: int) -> tuple[int, int]:
    """(axis maximum, tick step): a 1-2-5 step giving at most five ticks above zero."""
    step = 1
    for magnitude in (10**e for e in range(12)):
        for m in (1, 2, 5):
            step = m * magnitude
            if math.ceil(peak / step) <= 5:
                return max(step, math.ceil(peak / step) * step), step
    return peak, step


def svg(unit: str, buckets: Sequence[Bucket]) -> str:
    """The chart with an accessible title and description, axes and axis titles; each bar
    carries a tooltip with its period and count."""
    total = sum(b.count for b in buckets)
    top, step = _scale_max(max((b.count for b in buckets), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(buckets), 1)
    bar_w = min(max(slot * 0.8, 1.0), MAX_BAR)
    base = TOP + plot_h
    per = {"day": "per day", "week": "per week (from Monday)", "month": "per month"}[unit]
    title = f"New collisions {per}"
    span = f"{_label(buckets[0].start, unit)} to {_label(buckets[-1].start, unit)}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-labelledby="chart-title chart-desc">',
        f'<title id="chart-title">{title}</title>',
        f'<desc id="chart-desc">{total:,} collision(s) by the date the first member was '
        f"found holding the clue, {span}, in {len(buckets)} bar(s).</desc>",
    ]
    for tick in range(0, top + 1, step):
        y = base - plot_h * tick / top
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>'
        )
    for i, b in enumerate(buckets):
        if b.count:
            h = plot_h * b.count / top
            x = LEFT + i * slot + (slot - bar_w) / 2
            parts.append(
                f'<rect class="bar" x="{x:.2f}" y="{base - h:.2f}" width="{bar_w:.2f}" '
                f'height="{h:.2f}"><title>{_label(b.start, unit)}: {b.count:,}</title></rect>'
            )
    every = max(1, math.ceil(len(buckets) / MAX_X_LABELS))
    for i in range(0, len(buckets), every):
        x = LEFT + (i + 0.5) * slot
        parts.append(
            f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 5}"/>'
            f'<text class="tick" x="{x:.1f}" y="{base + 20}" text-anchor="middle">'
            f"{_label(buckets[i].start, unit)}</text>"
        )
    parts += [
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>',
        f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}"/>',
        f'<text class="axis-title" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 12}" '
        f'text-anchor="middle">Date first matched (UTC), {html.escape(per)}</text>',
        f'<text class="axis-title" transform="translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">New collisions</text>',
        "</svg>",
    ]
    return "\n".join(parts)
