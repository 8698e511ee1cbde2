"""SIGKILL at random moments during an import, while serving a peer's match, and during a
match; after every kill the stores are sound and nothing acknowledged is lost.

After each kill: SQLite's integrity check and the foreign keys pass, the audit chain
verifies, an import is all there or not there at all, a match's results are the complete
previous or the complete new ones (against the ground truth, per peer and kind), a server's
budget counts no more than it charged, and the next operation succeeds.

Kill delays are drawn uniformly within the operation's measured duration, from the seeded
random stream (the seed is printed; AIF_CRASH_SEED=N replays it).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.datadir import DataDir
from node.errors import PeerUnavailable
from node.ingest import import_file
from node.psi.matcher import WINDOW
from node.sampledata import phone
from tests.integration.conftest import TIMEOUT, Member

from .harness import SEED, Duration, Tally, checked, kill_at, run_lanes, serving, timed
from .pair import BATCH, KINDS, Pair, open_store

pytestmark = pytest.mark.slow

IMPORT_KILLS = 70
SERVE_KILLS = 60
MATCH_KILLS = 72
# Lanes per phase: imports keep both cores busy with two; a lane of the other phases often
# waits for a server to start or a process to get going.
IMPORT_LANES, SERVE_LANES, MATCH_LANES = 2, 3, 3
POOL_ROWS = 19_000
"""Rows every import merges again (each time with a later last_seen)."""
FRESH_ROWS = 1_000
"""Rows new to the store in each import."""
DAY0 = dt.date(2024, 1, 1)
IN_FLIGHT = WINDOW * BATCH
"""The most a match can have sent and not yet stored the answers of: what a kill on either
side can leave charged but undelivered."""


@pytest.fixture(autouse=True)
def _quiet_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPC_VERBOSITY", os.environ.get("GRPC_VERBOSITY", "NONE"))


@pytest.fixture(autouse=True)
def _keep_umask() -> Iterator[None]:
    """Lanes open stores from several threads at once, and `open_connection` sets and resets
    the process-wide umask around each open: a race may leave 077 behind. Restore it."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


def _per_lane(total: int, lanes: int) -> int:
    return -(-total // lanes)


def _report(phase: str, tally: Tally, started: float, target: int) -> None:
    print(tally.line(phase, time.monotonic() - started))
    assert tally.kills >= target


# --- (a) import ---------------------------------------------------------------------------------


def _phones(rng: random.Random, taken: set[str], n: int) -> list[str]:
    found: list[str] = []
    while len(found) < n:
        value = phone(rng)
        if value not in taken:
            taken.add(value)
            found.append(value)
    return found


def _import_file(path: Path, day: str, pool: list[str], fresh: list[str]) -> None:
    """The pool and the fresh values, all seen on `day`, as national numbers (the import's
    normaliser is not what this test is about, and plain digits keep each import short)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["phone", "labels", "first_seen", "last_seen"])
        out.writerows([v[3:], "fraud_ring", day, day] for v in pool)
        out.writerows([v[3:], "mule_account", day, day] for v in fresh)


def _groups(data_dir: Path, context: str, fresh: list[str]) -> tuple[Counter[tuple[str, str]], int]:
    """Live records per (first_seen, last_seen), and how many of `fresh` are present."""
    with checked(data_dir, context) as store:
        rows = store.conn.execute(
            "SELECT first_seen, last_seen, count(*) FROM records "
            "WHERE kind = 'phone' AND removed = 0 GROUP BY 1, 2"
        ).fetchall()
        (present,) = store.conn.execute(
            "SELECT count(*) FROM records WHERE kind = 'phone' AND removed = 0 "
            "AND value IN (SELECT value FROM json_each(?))",
            (json.dumps(fresh),),
        ).fetchone()
    return Counter({(str(f), str(last)): int(n) for f, last, n in rows}), int(present)


def _import_lane(
    root: Path, target: int, lane: int, rng: random.Random, stop: threading.Event
) -> Tally:
    member = Member("importer", root / f"import-{lane}")
    member.root.mkdir()
    member.init()
    registry = DataDir(member.data_dir).kinds()
    taken: set[str] = set()
    pool = _phones(rng, taken, POOL_ROWS)
    # The model: every pool record has first_seen DAY0 and the last acknowledged import's
    # day as last_seen; the fresh records of import i have day i as both.
    model: Counter[tuple[str, str]] = Counter()
    first = last_day = DAY0.isoformat()
    duration = Duration()
    tally = Tally()
    log = member.root / "import.log"
    iteration = 0
    while tally.kills < target and not stop.is_set():
        assert iteration < 3 * target + 2, "too many imports ended before their kill"
        day = (DAY0 + dt.timedelta(days=iteration)).isoformat()
        fresh = _phones(rng, taken, FRESH_ROWS) if iteration else []
        path = member.root / f"import-{iteration}.csv"
        _import_file(path, day, pool, fresh)
        after = model.copy()
        del after[(first, last_day)]
        after[(first, day)] = POOL_ROWS
        if fresh:
            after[(day, day)] = FRESH_ROWS
        context = f"seed {SEED} import lane {lane} #{iteration}"
        with log.open("ab") as err:
            started = time.monotonic()
            proc = subprocess.Popen(
                member.command("import", str(path), "--kind", "phone"),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            # The first two imports run to the end: they measure how long one takes.
            hit = kill_at(proc, duration.draw(rng) if iteration >= 2 else TIMEOUT)
        assert proc.returncode in (0, -9), f"{context}: exited {proc.returncode}: {log.read_text()}"
        groups, present = _groups(member.data_dir, context, fresh)
        if proc.returncode == 0:
            duration.add(time.monotonic() - started)
            assert groups == after, f"{context}: an acknowledged import is not all there"
            outcome = "late, not counted"
        else:
            assert groups in (model, after), f"{context}: half an import: {groups} / {after}"
            assert present == (len(fresh) if groups == after else 0), f"{context}: {present}"
            outcome = (
                "committed, all rows there" if groups == after else "rolled back, no row there"
            )
            # The operator runs the killed import again: it succeeds, and adds exactly what
            # is missing.
            with DataDir(member.data_dir).open_store() as store:
                again = import_file(store, path, "phone", registry)
            assert (again.inserted, again.merged) == (
                (0, len(pool) + len(fresh)) if groups == after else (len(fresh), len(pool))
            ), f"{context}: re-run {again}"
        if iteration >= 2:
            tally.outcomes[outcome] += 1
            tally.kills += hit
            tally.late += not hit
        model, last_day = after, day
        path.unlink()
        iteration += 1
    assert member.cli("audit", "verify").returncode == 0
    return tally


def test_sigkill_during_import_keeps_imports_all_or_nothing(tmp_path: Path) -> None:
    started = time.monotonic()
    target = _per_lane(IMPORT_KILLS, IMPORT_LANES)
    tally = run_lanes(
        "import",
        IMPORT_LANES,
        lambda lane, rng, stop: _import_lane(tmp_path, target, lane, rng, stop),
    )
    _report("import", tally, started, IMPORT_KILLS)


# --- (b) serve ----------------------------------------------------------------------------------


class _MatchThread(threading.Thread):
    """a's match in this process, while the test kills b's server under it."""

    def __init__(self, pair: Pair) -> None:
        super().__init__(daemon=True)
        self._pair = pair
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self._pair.match()
        except BaseException as exc:  # reported by the test, never lost in a thread
            self.error = exc
        self.seconds = time.monotonic() - started


@dataclass(frozen=True)
class _Round:
    """One match under a kill, with the state before it that the state after is judged by."""

    context: str
    full: bool
    """After a key rotation at b: everything is evaluated and synced again."""
    epoch: int
    answered_before: dict[str, int]
    to_send: dict[str, int]
    used_before: int

    @property
    def sending(self) -> int:
        return sum(self.to_send.values())


def _prepare(pair: Pair, rng: random.Random, context: str) -> _Round:
    pair.mutate()
    full = rng.random() < 0.5
    if full:
        pair.rotate()
    epoch = pair.epoch()
    with open_store(pair.a) as store:
        answered, to_send = pair.answered(store, epoch), pair.unanswered(store, epoch)
    with open_store(pair.b) as store:
        used = pair.charged(store, epoch)
    return _Round(context, full, epoch, answered, to_send, used)


def _after_kill(pair: Pair, rnd: _Round, tally: Tally, hit: bool) -> int:
    """Check a's store after the kill and count the kill by how far the match got; return
    how many evaluations the killed match got answered."""
    with checked(pair.a.data_dir, rnd.context) as store:
        now = pair.answered(store, rnd.epoch)
        pair.check_matches(store, rnd.context, complete=not hit)
    answered = {kind: now[kind] - rnd.answered_before[kind] for kind in KINDS}
    stage = pair.stage(answered, rnd.to_send) if hit else "late, not counted"
    tally.outcomes[f"{'full' if rnd.full else 'delta'} match, {stage}"] += 1
    tally.kills += hit
    tally.late += not hit
    return sum(answered.values())


def _next_match(pair: Pair, rnd: _Round, answered: int) -> int:
    """The next match succeeds, evaluates only what was never answered, and stores exactly
    the expected matches; return how many it evaluated."""
    evaluated = sum(s.evaluated for s in pair.match())
    assert evaluated == rnd.sending - answered, f"{rnd.context}: evaluated {evaluated}"
    with open_store(pair.a) as store:
        pair.check_matches(store, rnd.context, complete=True)
    return evaluated


class _Pairs(dict[int, Pair]):
    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def take(self, lane: int, rng: random.Random) -> Pair:
        """The lane's pair (made on first use) with b serving; its changes now come from
        `rng`."""
        if lane not in self:
            (self.root / f"lane-{lane}").mkdir()
            self[lane] = Pair.create(self.root / f"lane-{lane}", rng)
        pair = self[lane]
        pair.rng = rng
        if pair.b.proc is None or pair.b.proc.poll() is not None:
            pair.b.start(serving, poll_s=0.02)
        return pair


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Pairs]:
    """One pair per lane, shared by the serve and the match test (setting up members costs
    more than a dozen kills); the truth about their data carries over with them. Every
    server is killed at the end."""
    made = _Pairs(tmp_path_factory.mktemp("pairs"))
    yield made
    for pair in made.values():
        pair.a.kill()
        pair.b.kill()


def _measure(pair: Pair, run: Callable[[], object], rounds: int) -> dict[bool, Duration]:
    """Time a full match (after a key rotation) and a delta match, `rounds` times each."""
    durations = {True: Duration(), False: Duration()}
    for _ in range(rounds):
        for full in (True, False):
            pair.mutate()
            if full:
                pair.rotate()
            durations[full].add(timed(run))
            with open_store(pair.a) as store:
                pair.check_matches(store, "measuring", complete=True)
    return durations


def _serve_lane(
    pairs: _Pairs, target: int, lane: int, rng: random.Random, stop: threading.Event
) -> Tally:
    pair = pairs.take(lane, rng)
    durations = _measure(pair, pair.match, rounds=2)
    tally = Tally()
    iteration = 0
    while tally.kills < target and not stop.is_set():
        assert iteration < 3 * target, "too many matches ended before their server's kill"
        rnd = _prepare(pair, rng, f"seed {SEED} serve lane {lane} #{iteration}")
        context = rnd.context
        runner = _MatchThread(pair)
        runner.start()
        runner.join(durations[rnd.full].draw(rng))
        pair.b.kill()
        runner.join(TIMEOUT)
        assert not runner.is_alive(), f"{context}: the match hangs after its server died"
        hit = runner.error is not None
        assert not hit or isinstance(runner.error, PeerUnavailable), f"{context}: {runner.error!r}"
        if not hit:
            durations[rnd.full].add(runner.seconds)
        # b, dead: sound, and it charged every evaluation it answered, and no more than a sent.
        with checked(pair.b.data_dir, context) as store:
            used = pair.charged(store, rnd.epoch) - rnd.used_before
        answered = _after_kill(pair, rnd, tally, hit)
        assert answered <= used <= min(rnd.sending, answered + IN_FLIGHT), (
            f"{context}: charged {used} for {answered} answered of {rnd.sending} sent"
        )
        # b restarts, answers health, and the restart charged nothing.
        pair.b.start(serving, poll_s=0.02)
        with open_store(pair.b) as store:
            assert pair.charged(store, rnd.epoch) - rnd.used_before == used, context
        evaluated = _next_match(pair, rnd, answered)
        # Each evaluation of the next match is charged once; what the killed server charged
        # for answers it never delivered stays charged.
        with open_store(pair.b) as store:
            assert pair.charged(store, rnd.epoch) - rnd.used_before == used + evaluated, context
        tally.notes["kills that kept a charge for an undelivered answer"] += used > answered
        tally.notes["evaluations charged but never delivered"] += used - answered
        iteration += 1
    pair.b.kill()
    for member in (pair.a, pair.b):
        assert member.cli("audit", "verify").returncode == 0
    return tally


def test_sigkill_server_during_a_peers_match(pairs: _Pairs) -> None:
    started = time.monotonic()
    target = _per_lane(SERVE_KILLS, SERVE_LANES)
    tally = run_lanes(
        "serve",
        SERVE_LANES,
        lambda lane, rng, stop: _serve_lane(pairs, target, lane, rng, stop),
    )
    _report("serve", tally, started, SERVE_KILLS)


# --- (c) match ----------------------------------------------------------------------------------


def _match_lane(
    pairs: _Pairs, target: int, lane: int, rng: random.Random, stop: threading.Event
) -> Tally:
    pair = pairs.take(lane, rng)
    log = pair.a.root / "match.log"
    durations = _measure(pair, lambda: pair.a.cli("match", "--format", "json"), rounds=1)
    tally = Tally()
    iteration = 0
    while tally.kills < target and not stop.is_set():
        assert iteration < 3 * target, "too many matches ended before their kill"
        rnd = _prepare(pair, rng, f"seed {SEED} match lane {lane} #{iteration}")
        context = rnd.context
        with log.open("ab") as err:
            started = time.monotonic()
            proc = subprocess.Popen(
                pair.a.command("match", "--format", "json"), stdout=subprocess.DEVNULL, stderr=err
            )
            hit = kill_at(proc, durations[rnd.full].draw(rng))
        assert proc.returncode in (0, -9), f"{context}: exited {proc.returncode}: {log.read_text()}"
        if not hit:
            durations[rnd.full].add(time.monotonic() - started)
        _next_match(pair, rnd, _after_kill(pair, rnd, tally, hit))
        # b served on throughout: sound, still serving, and every element a sent is charged
        # at least once (answers lost with the killed match were charged too).
        with checked(pair.b.data_dir, context) as store:
            used = pair.charged(store, rnd.epoch) - rnd.used_before
        assert rnd.sending <= used <= rnd.sending + IN_FLIGHT, (
            f"{context}: charged {used} for {rnd.sending} evaluated"
        )
        assert serving(pair.b), f"{context}: b stopped serving"
        tally.notes["evaluations charged twice after a killed match"] += used - rnd.sending
        iteration += 1
    pair.b.kill()
    for member in (pair.a, pair.b):
        assert member.cli("audit", "verify").returncode == 0
    return tally


def test_sigkill_during_a_match(pairs: _Pairs) -> None:
    started = time.monotonic()
    target = _per_lane(MATCH_KILLS, MATCH_LANES)
    tally = run_lanes(
        "match",
        MATCH_LANES,
        lambda lane, rng, stop: _match_lane(pairs, target, lane, rng, stop),
    )
    _report("match", tally, started, MATCH_KILLS)
