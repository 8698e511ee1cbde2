"""Match benchmark: two real nodes over mutual TLS, the floor, and a peer baseline.

    python -m bench.run [--quick] [--n N ...] [--out DIR]

For each n: A and B each hold n phone records (10% shared), each in its own processes
(`aif-node serve`, `aif-node match`) on loopback, every byte through a counting relay.
Timed: each tag set build; (a) A's first match of B; (b) A's re-match after both sides
added 1% new records; (c) A->B and B->A at once. Beside them: the floor (the group
operations those steps need, at the cost measured here, over every core) and OpenMined's
PSI on the same data. See bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import floor, report
from bench.data import Plan
from bench.proc import ROOT, child_env
from bench.scenario import Scenario, log

QUICK_SIZES = (2_000, 10_000)
DEFAULT_SIZES = (10_000, 100_000)
BUSY_LOAD = 0.5


def _child_json(module: str, *args: str, timeout_s: float = 600.0) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout_s,
        env=child_env(),
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _import_bench(rows: int) -> dict[str, Any]:
    """bench.import_bench's own figures at one size (its printed table, as lines)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.import_bench", "--rows", str(rows)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
        env=child_env(),
    )
    return {"rows": rows, "returncode": done.returncode, "output": done.stdout.splitlines()}


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("aif-node", "grpcio", "protobuf", "openmined-psi"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"n = {QUICK_SIZES}")
    parser.add_argument("--n", type=int, action="append", help="records per side (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--work", type=Path, help="keep data dirs and logs here")
    parser.add_argument("--ops", type=int, default=2000, help="operations per cost loop")
    parser.add_argument(
        "--import-bench",
        type=int,
        metavar="ROWS",
        help="rows for bench.import_bench, whose figures are kept too (default: the largest n)",
    )
    parser.add_argument("--no-import-bench", action="store_true")
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args(argv)
    sizes = sorted(set(args.n or (QUICK_SIZES if args.quick else DEFAULT_SIZES)))
    plans = [Plan.for_n(n) for n in sizes]  # refuses a bad n before any work

    load_before = os.getloadavg()
    if load_before[0] > BUSY_LOAD:
        log(
            f"WARNING: load average {load_before[0]:.2f} > {BUSY_LOAD} before start: other "
            "work shares the CPU; times are inflated and ratios to the floor overstated"
        )
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    log(f"measuring per-operation costs ({args.ops} ops per loop)")
    costs = _child_json("bench.floor", "--ops", str(args.ops))
    log(
        f"  hash-to-group {costs['hash_to_group_us']:.1f} us, "
        f"scalar mult {costs['scalar_mult_us']:.1f} us, {floor.cores()} cores "
        f"(worth {costs['effective_cores']:.2f} on multiplications)"
    )
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": floor.cores(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "load_before": list(load_before),
        },
        "versions": _versions(),
        "costs_us": costs,
        "sizes": [],
    }
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    for plan in plans:
        log(f"n = {plan.n:,}")
        root = Path(tempfile.mkdtemp(prefix=f"aif-bench-{plan.n}-", dir=args.work))
        try:
            size = Scenario(plan, root, costs).run()
        finally:
            if args.work is None:
                shutil.rmtree(root, ignore_errors=True)
        size["load_after"] = list(os.getloadavg())
        report.add_ratios(size)
        results["sizes"].append(size)
    if not args.no_import_bench:
        rows = args.import_bench or sizes[-1]
        log(f"bench.import_bench at {rows:,} rows")
        results["import_bench"] = _import_bench(rows)
    results["machine"]["load_after"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - t0

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"results-{stamp}.json"
    report.write_json(results, json_path)
    print(
        f"per operation, one thread: hash-to-group {costs['hash_to_group_us']:.1f} us, "
        f"scalar mult {costs['scalar_mult_us']:.1f} us; floor = count x cost / "
        f"{floor.cores()} cores (the machine gives {costs['effective_cores']:.2f} on "
        "multiplications)\n"
    )
    print(report.table(results["sizes"]))
    if "import_bench" in results:
        print("\n".join(results["import_bench"]["output"]))
    if load_before[0] > BUSY_LOAD:
        print(f"WARNING: load average was {load_before[0]:.2f} before start (see JSON)")
    print(f"results: {json_path}")
    if not args.no_chart:
        title = (
            f"aif-node match vs floor vs OpenMined PSI ({floor.cores()} cores, {started:%Y-%m-%d})"
        )
        problem = report.chart(results["sizes"], args.out / "chart.png", title)
        print(f"chart: {problem or args.out / 'chart.png'}")
    failed = [c for s in results["sizes"] for c in s["checks"] if not c["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
