"""Killing real aif-node processes with SIGKILL at random moments, and the checks every kill
must pass.

All randomness comes from one seed, printed by each test; `AIF_CRASH_SEED=N` replays the
same data and kill delays (where a kill lands still depends on the machine's timing).
Each phase runs in a few independent lanes (own data dirs, own ports, own random stream)
at once, so that both cores work while one lane waits for a process to start.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from node.datadir import DataDir
from node.errors import NodeError
from node.store import Store
from node.transport.client import health_check
from tests.integration.conftest import TIMEOUT, Member

SEED = int(os.environ.get("AIF_CRASH_SEED") or secrets.randbelow(2**31))


def lane_rng(phase: str, lane: int) -> random.Random:
    return random.Random(f"{SEED}:{phase}:{lane}")


@dataclass
class Tally:
    """What a phase did: kills that hit a process at work, and how each ended."""

    kills: int = 0
    late: int = 0
    """Kills that came after the operation had finished (not counted as kill points)."""
    outcomes: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.kills += other.kills
        self.late += other.late
        self.outcomes.update(other.outcomes)
        self.notes.update(other.notes)

    def line(self, phase: str, seconds: float) -> str:
        parts = [f"{k} {n}" for k, n in sorted(self.outcomes.items())]
        parts += [f"{k} {n}" for k, n in sorted(self.notes.items())]
        return (
            f"crash {phase}: {self.kills} kill points ({self.late} late kills not counted) "
            f"in {seconds:.1f} s, seed {SEED}: " + ", ".join(parts)
        )


class Duration:
    """How long an operation takes here, from the last runs that completed: kill delays are
    drawn uniformly within it. Recent runs only, as other work on the machine comes and goes
    (a kill that comes too late wastes a run but adds a sample)."""

    WINDOW = 5

    def __init__(self) -> None:
        self._samples: list[float] = []

    def add(self, seconds: float) -> None:
        self._samples = [*self._samples, seconds][-self.WINDOW :]

    def draw(self, rng: random.Random) -> float:
        assert self._samples, "measure the operation before drawing a kill delay"
        return rng.uniform(0.0, sum(self._samples) / len(self._samples))


def timed(run: Callable[[], object]) -> float:
    started = time.monotonic()
    run()
    return time.monotonic() - started


def kill_at(proc: subprocess.Popen[bytes], delay: float) -> bool:
    """SIGKILL `proc` after `delay` seconds unless it exits first; True if the kill hit it."""
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.kill()
    return proc.wait(timeout=TIMEOUT) == -signal.SIGKILL


def run_lanes(
    phase: str, lanes: int, body: Callable[[int, random.Random, threading.Event], Tally]
) -> Tally:
    """Run `body(lane, rng, stop)` in `lanes` threads; the first failure stops the others."""
    print(f"crash {phase}: seed {SEED} (replay with AIF_CRASH_SEED={SEED})")
    stop = threading.Event()

    def guarded(lane: int) -> Tally:
        try:
            return body(lane, lane_rng(phase, lane), stop)
        except BaseException:
            stop.set()
            raise

    total = Tally()
    with ThreadPoolExecutor(lanes, thread_name_prefix=f"crash-{phase}") as pool:
        for future in [pool.submit(guarded, lane) for lane in range(lanes)]:
            total.add(future.result())
    return total


@contextmanager
def checked(data_dir: Path, context: str) -> Iterator[Store]:
    """The member's store, opened afresh (SQLite recovers the WAL of a killed writer here),
    after `PRAGMA integrity_check`, the foreign keys and the audit chain passed."""
    datadir = DataDir(data_dir)
    with Store.open(datadir.db_path) as store:
        problems = store.check_integrity()
        assert problems == [], f"{context}: store damaged: {problems}"
        verdict = store.audit.verify(datadir.audit_key())
        assert verdict.ok, f"{context}: audit chain broken at {verdict.first_broken}: {verdict}"
        yield store


def serving(member: Member) -> bool:
    """The member's server answers SERVING: an in-process probe, far cheaper than a CLI run
    (and cheaper still while the port does not even accept a connection)."""
    try:
        socket.create_connection(("127.0.0.1", member.port), timeout=1).close()
        status = health_check(
            f"127.0.0.1:{member.port}", DataDir(member.data_dir).identity(), timeout_s=5
        )
    except (OSError, NodeError):
        return False
    return status == "SERVING"
