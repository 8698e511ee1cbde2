"""Prometheus scrape of a node's metrics against the cheapest store query, in one process.

    python -m bench.scrape_bench [--sizes 100000 1000000] [--scrapes 20]

For each N, a fresh data dir (`DataDir.init`, real identity and keys) whose store holds:

* N phone records (`bench.data.phone`, upsert_batch, 50,000 a transaction), 1% of them
  then removed;
* a tag set of the live records for the current epoch, written with `TagSetStore.apply`
  from random bytes of the real sizes: a scrape only counts entries, and computing real
  tags would add minutes of group operations to the fill and nothing to the figure;
* `--peers` pinned peers (real certificates), each matching `--match-share` of the live
  records (sampled independently, so some records collide with several peers), with a
  budget charge, a grant and `--runs` match runs (one in seven failed, each peer's newest
  one failed so that the last-success read runs too).

The registry is made as `serve` makes it (`node.telemetry.service.start_telemetry`: the
session metrics, with a few sessions observed, and the StoreCollector over
`DataDir.open_store`), and `prometheus_client.generate_latest` is timed `--scrapes` times
after one warm-up. The warm-up and a scrape after the timed ones are checked: no scrape
error, the record count right.

Baseline: `SELECT count(*) FROM records` on an open sqlite3 connection to the same store,
the one query any scrape that reports records must pay for. Beside it, opening the store as
a scrape does (config, connection, PRAGMAs, migration check), and each statement the
collector runs, captured from one scrape (sqlite3 trace callback) and replayed on a plain
connection (best of three): the one at the top of that list dominates the scrape.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.data import phone
from node import __version__
from node.config import NodeConfig
from node.datadir import DataDir
from node.identity import generate_identity
from node.store import RecordIn, Store
from node.store.peers import PeerRecord
from node.store.runs import MatchRun
from node.store.tagsets import TagSetUpdate
from node.telemetry.collector import StoreCollector
from node.telemetry.metrics import SessionMetrics
from node.transport.events import SessionEvent

DEFAULT_SIZES = (100_000, 1_000_000)
BATCH = 50_000
KIND = "phone"
LABELS = (("fraud_ring",), ("mule",), ("chargeback", "mule"))
BASELINE_SQL = "SELECT count(*) FROM records"


def _log(message: str) -> None:
    print(message, flush=True)


# --- filling the store -----------------------------------------------------------------


def _fill_records(store: Store, n: int) -> int:
    """n distinct phone records, one in five labelled; 1% then removed. Returns live count."""
    for start in range(0, n, BATCH):
        store.records.upsert_batch(
            KIND,
            [
                RecordIn(
                    phone(i),
                    LABELS[i // 5 % len(LABELS)] if i % 5 == 0 else (),
                    "2026-01-01",
                    "2026-11-01",
                )
                for i in range(start, min(start + BATCH, n))
            ],
        )
    removed = store.records.remove(KIND, (phone(i) for i in range(0, n, 100)))
    return n - removed


def _fill_tagset(store: Store, epoch: int, rng: random.Random) -> list[int]:
    """One entry per live record, as a refresh would leave it; returns the live record ids."""
    ids = [
        int(rid)
        for (rid,) in store.conn.execute(
            "SELECT id FROM records WHERE kind = ? AND removed = 0 ORDER BY id", (KIND,)
        )
    ]
    to_seq = store.records.current_seq()
    from_seq = 0
    for start in range(0, len(ids), BATCH):
        added = [(rid, rng.randbytes(16), rng.randbytes(32)) for rid in ids[start : start + BATCH]]
        update = TagSetUpdate(KIND, epoch, from_seq, to_seq, added, (), ())
        if not store.tagsets.apply(update):
            raise RuntimeError("tag set fill raced another writer")
        from_seq = to_seq
    return ids


def _pin_peers(store: Store, count: int) -> list[PeerRecord]:
    now = dt.datetime.now(dt.UTC).isoformat()
    peers = []
    for p in range(count):
        identity = generate_identity(f"peer-{p}")
        record = PeerRecord(
            node_id=str(identity.node_id),
            name=f"peer-{p}",
            cert_pem=identity.cert_pem.decode(),
            addresses=(f"10.0.0.{p + 1}:7443",),
            kinds=None,
            labels=None,
            budget=1_000_000,
            policy_version=0,
            added_at=now,
        )
        peers.append(store.peers.add(record))
    return peers


def _runs(peer: PeerRecord, count: int, matches: int) -> list[MatchRun]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    runs = []
    for j in range(count):
        began = start + dt.timedelta(minutes=10 * j)
        failed = j % 7 == 3 or j == count - 1
        runs.append(
            MatchRun(
                peer_id=peer.node_id,
                peer_name=peer.name,
                trigger="manual" if j % 10 == 0 else "schedule",
                started_at=began.isoformat(),
                finished_at=(began + dt.timedelta(seconds=40)).isoformat(),
                status="PeerUnavailable" if failed else "OK",
                error=f"peer {peer.name!r} is unreachable" if failed else "",
                evaluated=0 if failed else 1_000,
                matches=0 if failed else matches,
                new_matches=0 if failed else j % 3,
            )
        )
    return runs


def fill(datadir: DataDir, n: int, peers: int, runs: int, match_share: float, seed: int) -> int:
    """Fill a fresh data dir's store as the module docstring says; return live records."""
    rng = random.Random(seed)
    epoch = datadir.keyring.current_epoch()
    now = dt.datetime.now(dt.UTC).isoformat()
    with datadir.open_store() as store:
        live = _fill_records(store, n)
        ids = _fill_tagset(store, epoch, rng)
        for p, peer in enumerate(_pin_peers(store, peers)):
            found = rng.sample(ids, int(len(ids) * match_share))
            store.matches.replace_matches(
                peer.node_id, KIND, [(rid, LABELS[rid % 3]) for rid in found], now
            )
            store.budget.charge(
                peer.node_id, epoch, f"batch-{p}".encode(), 1_000, 1_000_000, peer.name
            )
            store.grants.record(peer.node_id, epoch, 1_000_000, 900_000 - p, now)
            with store.transaction():
                for run in _runs(peer, runs, len(found)):
                    store.runs.record(run)
    return live


# --- the registry, as serve makes it ---------------------------------------------------


def registry_for(datadir: DataDir) -> CollectorRegistry:
    """The registry `start_telemetry` builds (without its HTTP endpoint), a few sessions in."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
    registry = CollectorRegistry()
    metrics = SessionMetrics(
        registry, version=__version__, node_id=str(datadir.identity().node_id), name="bench"
    )
    with datadir.open_store() as store:
        pinned = store.peers.list()
    for peer in pinned:
        for rpc, results in (("node_info", 0), ("sync_tags", 5_000), ("evaluate", 1_000)):
            event = SessionEvent(
                direction="served",
                rpc=rpc,
                peer_id=peer.node_id,
                peer=peer.name,
                status="OK",
                elements=results,
                results=results,
                kinds=(KIND,),
                duration_s=0.2,
                detail="",
            )
            metrics.observe_session(event)
    registry.register(StoreCollector(datadir.open_store, datadir.keyring.current_epoch))
    return registry


def _check(exposition: str, live: int) -> None:
    """A scrape that failed to read the store is fast and wrong: refuse to time it."""
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }
    if samples.get(("aif_scrape_errors_total", ())) != 0:
        raise AssertionError("the scrape could not read the store (aif_scrape_errors_total)")
    if samples.get(("aif_records", (("kind", KIND),))) != live:
        raise AssertionError(f"the scrape does not report {live} live {KIND} records")


def _times(action: Callable[[], object], count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        action()
        out.append(time.perf_counter() - start)
    return out


def _fetch(conn: sqlite3.Connection, sql: str) -> list[Any]:
    return conn.execute(sql).fetchall()


def _statements(datadir: DataDir) -> list[str]:
    """Every SQL statement one collector read runs, with its parameters filled in."""
    seen: list[str] = []

    def open_traced() -> Store:
        store = datadir.open_store()
        store.conn.set_trace_callback(seen.append)
        return store

    StoreCollector(open_traced, datadir.keyring.current_epoch).read()
    return seen


def query_times(datadir: DataDir, peers: dict[str, str]) -> list[dict[str, Any]]:
    """The collector's statements replayed on a plain connection, best of three each;
    statements that differ only by peer are grouped (`count`), slowest total first."""
    grouped: dict[str, list[float]] = {}
    conn = sqlite3.connect(datadir.db_path)
    try:
        for sql in _statements(datadir):
            times = _times(partial(_fetch, conn, sql), 3)
            shape = sql
            for node_id in peers:
                shape = shape.replace(node_id, "<peer>")
            grouped.setdefault(" ".join(shape.split()), []).append(min(times))
    finally:
        conn.close()
    out = [
        {"sql": sql, "count": len(ts), "seconds": sum(ts), "max_s": max(ts)}
        for sql, ts in grouped.items()
    ]
    return sorted(out, key=lambda q: -float(q["seconds"]))


def measure(
    n: int,
    *,
    scrapes: int = 20,
    peers: int = 3,
    runs: int = 2_000,
    match_share: float = 0.1,
    seed: int = 1,
    work: Path | None = None,
) -> dict[str, Any]:
    """Fill a store of n records in a temporary data dir and time scrapes against it."""
    with tempfile.TemporaryDirectory(prefix="aif-scrape-", dir=work) as tmp:
        datadir = DataDir(Path(tmp) / "node")
        datadir.init(NodeConfig(name="bench", listen="127.0.0.1:7443", advertise=()))
        start = time.perf_counter()
        live = fill(datadir, n, peers, runs, match_share, seed)
        fill_s = time.perf_counter() - start
        _log(f"n = {n:,}: store filled in {fill_s:.1f} s ({live:,} live records)")
        registry = registry_for(datadir)
        exposition = generate_latest(registry).decode()  # warm-up, and the check
        _check(exposition, live)
        scrape = _times(lambda: generate_latest(registry), scrapes)
        _check(generate_latest(registry).decode(), live)

        conn = sqlite3.connect(datadir.db_path)
        try:
            _fetch(conn, BASELINE_SQL)  # warm-up
            baseline = _times(partial(_fetch, conn, BASELINE_SQL), scrapes)
        finally:
            conn.close()
        open_store = _times(lambda: datadir.open_store().close(), scrapes)
        with datadir.open_store() as store:
            names = {p.node_id: p.name for p in store.peers.list()}
        queries = query_times(datadir, names)
        db_mb = sum(p.stat().st_size for p in datadir.root.glob("store.db*")) / 1e6
    base = statistics.median(baseline)
    return {
        "n": n,
        "live_records": live,
        "peers": peers,
        "runs_per_peer": runs,
        "fill_s": fill_s,
        "store_mb": db_mb,
        "scrape_bytes": len(exposition.encode()),
        "scrapes": scrapes,
        "scrape_median_s": statistics.median(scrape),
        "scrape_max_s": max(scrape),
        "baseline_median_s": base,
        "baseline_max_s": max(baseline),
        "open_store_median_s": statistics.median(open_store),
        "ratio": statistics.median(scrape) / base,
        "queries": queries,
    }


def report(result: dict[str, Any]) -> str:
    r = result
    ms = 1e3
    lines = [
        f"n = {r['n']:,} ({r['live_records']:,} live, store {r['store_mb']:.0f} MB, "
        f"{r['peers']} peers x {r['runs_per_peer']:,} runs, filled in {r['fill_s']:.1f} s); "
        f"scrape {r['scrape_bytes']:,} bytes",
        f"{'':40} {'median ms':>10} {'max ms':>9} {'x baseline':>11}",
        f"{'scrape (generate_latest)':40} {r['scrape_median_s'] * ms:10.3f} "
        f"{r['scrape_max_s'] * ms:9.3f} {r['ratio']:10.1f}x",
        f"{'baseline: ' + BASELINE_SQL:40} {r['baseline_median_s'] * ms:10.3f} "
        f"{r['baseline_max_s'] * ms:9.3f} {1:10.1f}x",
        f"{'open store (part of each scrape)':40} {r['open_store_median_s'] * ms:10.3f}",
        "the collector's statements, replayed once each (best of 3), slowest first:",
    ]
    for q in r["queries"]:
        times = f"x{q['count']}" if q["count"] > 1 else ""
        lines.append(f"  {q['seconds'] * ms:8.3f} ms {times:>3}  {q['sql'][:110]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--peers", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2_000, help="match runs per peer")
    parser.add_argument("--match-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, help="make the temporary data dirs here")
    args = parser.parse_args(argv)
    _log(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for n in args.sizes:
        result = measure(
            n,
            scrapes=args.scrapes,
            peers=args.peers,
            runs=args.runs,
            match_share=args.match_share,
            seed=args.seed,
            work=args.work,
        )
        print(report(result))
        _log(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
