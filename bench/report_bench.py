"""Collision report rendering (CSV, JSON, HTML) against plain csv.writer, in one process.

    python -m bench.report_bench [--sizes 5000 50000] [--repeat 3]

For each N: N synthetic collisions shaped like the store's (`Collision`: three kinds,
one to three peers each with up to two labels, dates), sorted by kind and value as
`collisions()` returns them. Each contender renders the whole report to a string:

* baseline: the rows of our own CSV, already as strings, written by `csv.writer` into a
  StringIO and nothing else: the floor for any text report of these rows (its output is
  checked to equal ours byte for byte, so it is the same rows);
* csv, json, html: `node.report.to_csv`, `to_json`, `to_html` as the CLI calls them.

Seconds are the best of `--repeat` renders; MB is the UTF-8 output (10^6 bytes); peak MB
is the most Python memory the render held at once (tracemalloc, output included), taken
in a separate, untimed render because tracing slows allocation several-fold.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import io
import os
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench.data import phone
from node.report import to_csv, to_html, to_json
from node.store.matches import Collision, PeerMatch

DEFAULT_SIZES = (5_000, 50_000)
GENERATED_AT = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
PEERS = ("bank-north", "lender-east", "pay-south", "platform-west", "telco-central")
LABELS = (
    "fraud_ring",
    "mule",
    "chargeback",
    "account_takeover",
    "synthetic_id",
    "R&D <review>",  # one label that HTML must escape
)
KINDS = ("phone", "id_card", "email")
KIND_WEIGHTS = (70, 20, 10)
BASELINE = "baseline"


def _value(rng: random.Random, kind: str, i: int) -> str:
    if kind == "phone":
        return phone(i)
    if kind == "id_card":
        return f"{rng.randrange(110000, 660000)}19{rng.randrange(60, 100)}0101{i % 10_000:04d}"
    return f"user{i}@example{rng.randrange(50)}.com"


def _at(rng: random.Random) -> str:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(300 * 86400))
    return at.isoformat()


def synthetic(n: int, seed: int = 1) -> list[Collision]:
    """n collisions, deterministic for a seed, sorted by (kind, value) like the store's."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        holders = rng.sample(PEERS, rng.choices((1, 2, 3), (70, 22, 8))[0])
        peers = tuple(
            PeerMatch(name, tuple(rng.sample(LABELS, rng.randrange(3))), _at(rng))
            for name in sorted(holders)
        )
        first = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(600))
        last = first + dt.timedelta(days=rng.randrange(60))
        own = tuple(rng.sample(LABELS[:3], rng.randrange(2)))
        out.append(
            Collision(kind, _value(rng, kind, i), own, first.isoformat(), last.isoformat(), peers)
        )
    out.sort(key=lambda c: (c.kind, c.value))
    return out


def _write_rows(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _best_seconds(render: Callable[[], str], repeat: int) -> tuple[float, str]:
    best, text = float("inf"), ""
    for _ in range(repeat):
        text = ""  # let the previous output go before the next render
        gc.collect()
        start = time.perf_counter()
        text = render()
        best = min(best, time.perf_counter() - start)
    return best, text


def _traced_peak_bytes(render: Callable[[], str]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        render()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def measure(n: int, repeat: int = 3, seed: int = 1) -> list[dict[str, Any]]:
    """One dict per contender (baseline first): format, n, seconds, mb, peak_mb and the
    ratios of seconds and size to the baseline's."""
    collisions = synthetic(n, seed)
    ours_csv = to_csv(collisions)
    rows = list(csv.reader(io.StringIO(ours_csv)))
    if _write_rows(rows) != ours_csv:
        raise AssertionError("the baseline does not write the same rows as to_csv")
    contenders: dict[str, Callable[[], str]] = {
        BASELINE: lambda: _write_rows(rows),
        "csv": lambda: to_csv(collisions),
        "json": lambda: to_json(collisions),
        "html": lambda: to_html(collisions, "bench-node", GENERATED_AT),
    }
    figures: list[dict[str, Any]] = []
    for name, render in contenders.items():
        seconds, text = _best_seconds(render, repeat)
        size = len(text.encode("utf-8"))
        del text
        figures.append(
            {
                "format": name,
                "n": n,
                "seconds": seconds,
                "mb": size / 1e6,
                "peak_mb": _traced_peak_bytes(render) / 1e6,
            }
        )
    base_s, base_mb = figures[0]["seconds"], figures[0]["mb"]
    for f in figures:
        f["x_seconds"] = f["seconds"] / base_s
        f["x_mb"] = f["mb"] / base_mb
    return figures


def table(figures: list[dict[str, Any]]) -> str:
    lines = [
        f"{'format':9} {'N':>8} {'seconds':>8} {'MB':>7} {'x base s':>8} {'x base MB':>9} "
        f"{'peak MB':>8}"
    ]
    for f in figures:
        lines.append(
            f"{f['format']:9} {f['n']:8,} {f['seconds']:8.3f} {f['mb']:7.2f} "
            f"{f['x_seconds']:7.1f}x {f['x_mb']:8.2f}x {f['peak_mb']:8.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeat", type=int, default=3, help="renders per timing (best)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    figures = [f for n in args.sizes for f in measure(n, args.repeat, args.seed)]
    print(table(figures))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
