"""One size of the benchmark: two real nodes, a relay in front of each, three timed matches.

Order of events (each member runs in its own processes, all through the real CLI):

1. Both members are made (`init`, cards advertising the relays, each pins the other with a
   budget that covers the run) and import their n records.
2. B's server starts and builds its tag set; then A's. Each build is timed alone, from
   the server's "serving" line to its "tag set ... new" line, so neither shares the CPU.
3. (a) first: A matches B with both tag sets ready.
4. (b) rematch: each side imports 1% new records, both servers extend their tag sets
   (CPU measured), then A matches B again.
5. (c) both: A->B and B->A start together; B->A is B's first match.
6. Servers stop; the baseline runs alone on A's and B's initial sets.

Every match's summary is checked against the planted overlaps; a mismatch is reported as
a failed check, and the run's exit status says so.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import floor
from bench.data import Plan, write_csv
from bench.nodes import LONG_S, SERVING_LINE, TAGSET_LINE, Member, free_port, match_summary
from bench.proc import Finished, Running, Server, run
from bench.relay import CountingRelay, Traffic

ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _harness_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _usage(done: Finished) -> dict[str, float]:
    return {
        "wall_s": done.usage.wall_s,
        "cpu_s": done.usage.cpu_s,
        "peak_rss_mib": done.usage.peak_rss_mib,
    }


def _traffic(t: Traffic) -> dict[str, int]:
    return {"up": t.up, "down": t.down, "total": t.total}


@dataclass
class _Side:
    member: Member
    relay: CountingRelay
    server: Server | None = None

    @property
    def name(self) -> str:
        return self.member.name

    def running(self) -> Server:
        if self.server is None:
            raise RuntimeError(f"{self.name} is not serving")
        return self.server


class Scenario:
    def __init__(self, plan: Plan, root: Path, costs: dict[str, float]) -> None:
        self.plan = plan
        self.root = root
        self.costs = costs
        self.cores = floor.cores()
        self.checks: list[dict[str, Any]] = []
        self.csv = {
            name: root / f"{name}.csv" for name in ("a_base", "b_base", "a_added", "b_added")
        }

    # --- checks ------------------------------------------------------------------------------

    def _check(self, what: str, got: int, expected: int) -> None:
        self.checks.append({"what": what, "got": got, "expected": expected, "ok": got == expected})
        if got != expected:
            log(f"CHECK FAILED: {what}: got {got:,}, expected {expected:,}")

    def _floor(self, ops: floor.OpCount) -> dict[str, Any]:
        return {
            "hash_to_group": ops.hash_to_group,
            "scalar_mults": ops.scalar_mults,
            "seconds": ops.seconds(self.costs, self.cores),
            # The same work over the cores this machine really gives (see floor.py).
            "seconds_at_effective_cores": ops.seconds(self.costs, 1)
            / self.costs.get("effective_cores", self.cores),
        }

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        plan = self.plan
        t = time.perf_counter()
        for name in ("a", "b"):
            write_csv(self.csv[f"{name}_base"], plan.base(name))
            write_csv(self.csv[f"{name}_added"], plan.added(name))
        log(f"  data generated in {time.perf_counter() - t:.1f} s")
        ports = {s: free_port() for s in ("a", "b")}
        with (
            CountingRelay(("127.0.0.1", ports["a"])) as relay_a,
            CountingRelay(("127.0.0.1", ports["b"])) as relay_b,
        ):
            a = _Side(Member("a", self.root, ports["a"], relay_a.port), relay_a)
            b = _Side(Member("b", self.root, ports["b"], relay_b.port), relay_b)
            try:
                return self._run(a, b)
            finally:
                for side in (a, b):
                    if side.server is not None:
                        side.server.stop()

    def _run(self, a: _Side, b: _Side) -> dict[str, Any]:
        plan = self.plan
        budget = 4 * plan.total_after_change + 10_000
        for side in (a, b):
            side.member.init()
        a.member.pin(b.member, budget)
        b.member.pin(a.member, budget)
        startup = run(
            a.member.command("--version"), a.member.logs, "cli-startup", 60.0
        ).usage.wall_s
        imports = {}
        for side in (a, b):
            done = side.member.import_csv(self.csv[f"{side.name}_base"], "import-base")
            imports[side.name] = {**_usage(done), "rows_per_s": plan.n / done.usage.wall_s}
        log(f"  imported {plan.n:,} records per side ({imports['a']['wall_s']:.1f} s each)")

        tagsets = {side.name: self._start_server(side) for side in (b, a)}
        log(f"  tag sets built: B {tagsets['b']['wall_s']:.1f} s, A {tagsets['a']['wall_s']:.1f} s")

        phases: dict[str, Any] = {}
        first = self._phase({"a_to_b": (a, b)}, {a.name: a, b.name: b})
        self._check("(a) A evaluated", first["summaries"]["a_to_b"]["evaluated"], plan.n)
        self._check("(a) A's matches", first["summaries"]["a_to_b"]["matches"], plan.overlap)
        first["floor"] = self._floor(floor.match_ops(plan.n))
        phases["first"] = first
        log(f"  (a) first match A->B: {first['wall_s']:.2f} s")

        phases["tagset_update"] = self._add_records(a, b)
        rematch = self._phase({"a_to_b": (a, b)}, {a.name: a, b.name: b})
        summary = rematch["summaries"]["a_to_b"]
        self._check("(b) A evaluated", summary["evaluated"], plan.delta)
        self._check("(b) A's matches", summary["matches"], plan.expected_after_change)
        self._check("(b) tags received", summary["tags_received"], plan.delta)
        rematch["floor"] = self._floor(floor.match_ops(plan.delta))
        phases["rematch"] = rematch
        log(f"  (b) re-match after 1% change: {rematch['wall_s']:.2f} s")

        both = self._phase({"a_to_b": (a, b), "b_to_a": (b, a)}, {a.name: a, b.name: b})
        total = plan.total_after_change
        self._check("(c) A->B evaluated", both["summaries"]["a_to_b"]["evaluated"], 0)
        self._check("(c) B->A evaluated", both["summaries"]["b_to_a"]["evaluated"], total)
        for direction in ("a_to_b", "b_to_a"):
            matches = both["summaries"][direction]["matches"]
            self._check(f"(c) {direction} matches", matches, plan.expected_after_change)
        both["floor"] = self._floor(floor.match_ops(total))
        phases["both"] = both
        log(f"  (c) both directions at once: {both['wall_s']:.2f} s")

        for side in (a, b):
            side.running().stop()
            side.server = None
        baseline = self._baseline()
        return {
            "n": plan.n,
            "plan": {
                "overlap": plan.overlap,
                "added_per_side": plan.delta,
                "added_overlap": plan.delta_overlap,
                "budget": budget,
            },
            "cli_startup_s": startup,
            "import": imports,
            "tagset": tagsets,
            "phases": phases,
            "baseline": baseline,
            "checks": self.checks,
        }

    def _start_server(self, side: _Side) -> dict[str, Any]:
        """Start a member's server and wait until its tag set holds all n records."""
        server = side.member.serve()
        side.server = server
        serving_at, _, index = server.wait_for(SERVING_LINE, timeout_s=120.0)
        done_at, cpu = self._wait_tagset(server, index, self.plan.n)
        result: dict[str, Any] = {
            "wall_s": done_at - serving_at,
            "cpu_s_since_start": cpu,
            "peak_rss_mib": server.peak_rss_mib(),
            "floor": self._floor(floor.tagset_ops(self.plan.n)),
        }
        result["ratio_floor"] = result["wall_s"] / result["floor"]["seconds"]
        return result

    def _wait_tagset(self, server: Server, after: int, records: int) -> tuple[float, float]:
        """Wait for refresh lines adding up to `records` new entries; (time, server CPU)."""
        new = 0
        at = 0.0
        while new < records:
            at, found, index = server.wait_for(TAGSET_LINE, after=after, timeout_s=LONG_S)
            new += int(found.group(3))
            after = index + 1
        self._check("tag set entries added", new, records)
        return at, server.cpu_s()

    def _add_records(self, a: _Side, b: _Side) -> dict[str, Any]:
        """Import 1% new records on each side and wait until both servers published them."""
        out: dict[str, Any] = {"imports": {}, "servers": {}}
        marks = {}
        for side in (a, b):
            server = side.running()
            marks[side.name] = (server.line_count, server.cpu_s())
            server.reset_peak()
            done = side.member.import_csv(self.csv[f"{side.name}_added"], "import-added")
            out["imports"][side.name] = _usage(done)
        for side in (a, b):
            server = side.running()
            after, cpu_before = marks[side.name]
            _, cpu_after = self._wait_tagset(server, after, self.plan.delta)
            out["servers"][side.name] = {
                "cpu_s": cpu_after - cpu_before,
                "peak_rss_mib": server.peak_rss_mib(),
            }
        out["floor"] = self._floor(floor.tagset_ops(self.plan.delta))
        return out

    def _phase(
        self, directions: dict[str, tuple[_Side, _Side]], sides: dict[str, _Side]
    ) -> dict[str, Any]:
        """Run the given matches at once; measure every process and both relays."""
        before_wire = {name: side.relay.traffic() for name, side in sides.items()}
        before_cpu = {name: side.running().cpu_s() for name, side in sides.items()}
        for side in sides.values():
            side.running().reset_peak()
        harness = _harness_cpu()
        runs: dict[str, Running] = {
            key: client.member.start_match(server.member, f"match-{key}")
            for key, (client, server) in directions.items()
        }
        done = {key: running.wait() for key, running in runs.items()}
        ended = max(d.ended for d in done.values())
        started = min(d.started for d in done.values())
        summaries = {
            key: match_summary(done[key], server.name) for key, (_, server) in directions.items()
        }
        processes: dict[str, dict[str, float]] = {}
        for key, (client, _) in directions.items():
            processes[f"{client.name}.match"] = _usage(done[key])
        for name, side in sides.items():
            server = side.running()
            processes[f"{name}.serve"] = {
                "cpu_s": server.cpu_s() - before_cpu[name],
                "peak_rss_mib": server.peak_rss_mib(),
            }
        # Traffic into B's relay is A dialling B, and the other way round.
        wire = {
            f"{client.name}_to_{server.name}": _traffic(
                server.relay.traffic() - before_wire[server.name]
            )
            for client, server in directions.values()
        }
        elements = sum(s["evaluated"] for s in summaries.values())
        wall = ended - started
        return {
            "wall_s": wall,
            "elements": elements,
            "elements_per_s": elements / wall,
            "per_direction_wall_s": {key: d.usage.wall_s for key, d in done.items()},
            "wire_bytes": wire,
            "wire_total_bytes": sum(w["total"] for w in wire.values()),
            "processes": processes,
            "cpu_s_total": sum(p["cpu_s"] for p in processes.values()),
            "harness_cpu_s": _harness_cpu() - harness,
            "peak_rss_scope": next(iter(sides.values())).running().peak_scope,
            "summaries": summaries,
        }

    def _baseline(self) -> dict[str, Any]:
        cmd = [
            sys.executable,
            "-m",
            "bench.baseline",
            str(self.csv["a_base"]),
            str(self.csv["b_base"]),
        ]
        logs = self.root / "logs"
        done = Running(cmd, logs, "baseline", LONG_S).wait()
        if done.returncode != 0:
            return {"skipped": f"the baseline failed ({done.returncode}): {done.stderr[-2000:]}"}
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if "skipped" in result:
            log(f"  baseline skipped: {result['skipped']}")
            return result
        result["process"] = _usage(done)
        self._check("baseline intersection", result["intersection"], self.plan.overlap)
        log(f"  baseline ({result['library']}): {result['total_s']:.2f} s")
        return result
