"""Import throughput and peak memory, against raw SQLite inserts in the same run.

    python -m bench.import_bench --rows 1000000

Generates a phone CSV (mixed spellings, 5% repeated numbers) in a temporary directory,
then runs each contender in a fresh child process, so that its peak RSS (ru_maxrss) counts
neither the generator nor the other contenders:

* aif-node: `import_file` into a new store (read, normalise, merge, one transaction);
* raw SQLite: a plain `executemany` of the already-normalised values into a bare table,
  on a connection with the store's PRAGMAs (WAL, synchronous=FULL, same cache);
* raw SQLite + unique: the same into a table with UNIQUE(kind, value) and INSERT OR
  IGNORE, the least a store that merges duplicates has to do.

Target: >= 100,000 rows/s and < 300 MiB peak RSS at 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_ROWS_PER_S = 100_000
TARGET_PEAK_MIB = 300
BATCH = 5_000
# Full-width forms sit at U+FF01..U+FF5E, 0xFEE0 above their ASCII twins.
_FULLWIDTH = {ord(c): ord(c) + 0xFEE0 for c in "0123456789+-"}


def spellings(n: str) -> tuple[str, ...]:
    """One 11-digit mainland mobile number as exports write it."""
    return (
        n,
        n,
        f"+86 {n[:3]}-{n[3:7]}-{n[7:]}",
        f"+86{n}",
        f"{n[:3]} {n[3:7]} {n[7:]}",
        f"0086 {n}",
        f"86-{n}",
        f"({n[:3]}) {n[3:7]}-{n[7:]}",
    )


def generate(csv_path: Path, values_path: Path, rows: int, seed: int = 1) -> int:
    """Write the CSV and, for the baselines, each row's canonical value; return the number
    of distinct numbers. One row in 20 repeats an earlier number, usually spelt differently;
    one in 50 is written in full-width digits."""
    from node.identifiers import KindRegistry

    registry = KindRegistry(opaque=frozenset())
    rng = random.Random(seed)
    recent: list[str] = []
    seen: set[str] = set()
    with csv_path.open("w", encoding="utf-8", newline="") as out, values_path.open("w") as vals:
        out.write("phone\n")
        for _ in range(rows):
            if recent and rng.random() < 0.05:
                number = rng.choice(recent)
            else:
                number = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
                seen.add(number)
                if len(recent) < 100_000:
                    recent.append(number)
                else:
                    recent[rng.randrange(len(recent))] = number
            raw = rng.choice(spellings(number))
            if rng.random() < 0.02:
                raw = raw.translate(_FULLWIDTH)
            out.write(f"{raw}\n")
            vals.write(registry.normalize("phone", raw) + "\n")
    return len(seen)


# --- the contenders, each run in its own process -------------------------------------------


def run_import(csv_path: Path, db: Path) -> dict[str, float]:
    from node.identifiers import KindRegistry
    from node.ingest import import_file
    from node.store import Store

    registry = KindRegistry(opaque=frozenset())
    start = time.perf_counter()
    with Store.open(db) as store:
        result = import_file(store, csv_path, "phone", registry, labels=("bench",))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": result.rows_read, "records": result.inserted}


def run_baseline(values_path: Path, db: Path, unique: bool) -> dict[str, float]:
    from node.store.connection import open_connection

    start = time.perf_counter()
    conn = open_connection(db)
    if unique:
        conn.execute(
            "CREATE TABLE t (kind TEXT NOT NULL, value TEXT NOT NULL, UNIQUE (kind, value))"
        )
        sql = "INSERT OR IGNORE INTO t (kind, value) VALUES ('phone', ?)"
    else:
        conn.execute("CREATE TABLE t (kind TEXT NOT NULL, value TEXT NOT NULL)")
        sql = "INSERT INTO t (kind, value) VALUES ('phone', ?)"
    rows = 0
    conn.execute("BEGIN IMMEDIATE")
    with values_path.open() as fh:
        batch: list[tuple[str]] = []
        for line in fh:
            batch.append((line.rstrip("\n"),))
            if len(batch) == BATCH:
                conn.executemany(sql, batch)
                rows += len(batch)
                batch = []
        conn.executemany(sql, batch)
        rows += len(batch)
    conn.execute("COMMIT")
    records = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    conn.close()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": rows, "records": records}


def child(mode: str, args: list[str]) -> None:
    out: dict[str, float]
    if mode == "generate":
        csv_path, values_path, rows, seed = args
        out = {"distinct": generate(Path(csv_path), Path(values_path), int(rows), int(seed))}
    elif mode == "import":
        out = run_import(Path(args[0]), Path(args[1]))
    else:
        out = run_baseline(Path(args[0]), Path(args[1]), unique=mode == "unique")
    out["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps(out))


def in_child(mode: str, *args: object) -> dict[str, float]:
    """Run one step in a fresh interpreter. On Linux a child's ru_maxrss starts from its
    parent's RSS at fork, so the parent stays small: it only starts children."""
    cmd = [sys.executable, "-m", "bench.import_bench", "--child", mode, *map(str, args)]
    done = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the run -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1:])
        return 0

    with tempfile.TemporaryDirectory(prefix="aif-bench-") as tmp:
        folder = Path(tmp)
        csv_path, values_path = folder / "phones.csv", folder / "values.txt"
        t0 = time.perf_counter()
        distinct = int(
            in_child("generate", csv_path, values_path, args.rows, args.seed)["distinct"]
        )
        size_mib = csv_path.stat().st_size / 2**20
        print(
            f"{args.rows:,} phone rows ({size_mib:.1f} MiB, {distinct:,} distinct numbers) "
            f"generated in {time.perf_counter() - t0:.1f} s"
        )
        runs = {
            "aif-node import": in_child("import", csv_path, folder / "store.db"),
            "raw SQLite executemany": in_child("plain", values_path, folder / "plain.db"),
            "raw SQLite + unique": in_child("unique", values_path, folder / "unique.db"),
        }

    ours = runs["aif-node import"]
    if ours["records"] != distinct or runs["raw SQLite + unique"]["records"] != distinct:
        print(f"error: expected {distinct:,} records, got {ours['records']:,}", file=sys.stderr)
        return 1
    print(f"{'':24} {'seconds':>8} {'rows/s':>11} {'peak RSS':>10} {'ours/this':>10}")
    for name, run in runs.items():
        rate = run["rows"] / run["seconds"]
        peak = run["peak_kib"] / 1024
        ratio = ours["seconds"] / run["seconds"]
        print(f"{name:24} {run['seconds']:8.2f} {rate:11,.0f} {peak:7.1f} MiB {ratio:9.1f}x")
    rate = ours["rows"] / ours["seconds"]
    peak = ours["peak_kib"] / 1024
    ok = rate >= TARGET_ROWS_PER_S and peak < TARGET_PEAK_MIB
    print(
        f"target >= {TARGET_ROWS_PER_S:,} rows/s and < {TARGET_PEAK_MIB} MiB peak: "
        f"{'met' if ok else 'MISSED'} ({rate:,.0f} rows/s, {peak:.0f} MiB)"
    )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
