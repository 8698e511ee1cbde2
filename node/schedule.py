"""Re-matching every pinned peer on a schedule, inside `serve`, so collisions stay current.

Each peer has its own due time. After a successful match the next is `match_interval`
later; after a failure (an unreachable peer, a refusal) the wait starts at `retry_initial`
and doubles with each further failure up to `retry_max`, never beyond `match_interval`.
Every wait is spread by up to `jitter` either way, so members started together do not call
each other in step. Due times start from each peer's last recorded run, so a restarted
server does not re-match everyone at once. Peers are matched one at a time: a match is CPU
work, and the server is answering its peers meanwhile.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from node.config import NodeConfig, ScheduleSettings
from node.errors import MatchInProgress, NodeError
from node.identity import Identity
from node.matching import PeerOutcome, match_lock, match_peer
from node.store import Store
from node.store.peers import PeerRecord
from node.store.runs import MatchRun

_log = logging.getLogger(__name__)

# The longest the loop sleeps before looking again for pinned or removed peers.
_RESCAN_S = 30.0


def next_delay(settings: ScheduleSettings, failures: int, rng: random.Random) -> float:
    """Seconds until the next match of a peer after `failures` failures in a row (0: the
    last match succeeded)."""
    if failures <= 0:
        base = settings.match_interval
    else:
        backoff = settings.retry_initial * 2 ** min(failures - 1, 62)
        base = min(backoff, settings.retry_max, settings.match_interval)
    return base * (1 + rng.uniform(-settings.jitter, settings.jitter))


def _age_s(run: MatchRun, now: datetime) -> float:
    """Seconds since `run` finished (0 if its time cannot be read or lies ahead)."""
    try:
        finished = datetime.fromisoformat(run.finished_at)
    except ValueError:
        return 0.0
    return max(0.0, (now - finished).total_seconds())


class MatchSchedule:
    """The schedule's loop; `run(stop)` returns once `stop` is set and any match has ended."""

    def __init__(
        self,
        *,
        open_store: Callable[[], Store],
        identity: Identity,
        config: NodeConfig,
        audit_key: bytes,
        lock_dir: Path,
        on_outcome: Callable[[PeerOutcome], None] | None = None,
        first_delay_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._open_store = open_store
        self._identity = identity
        self._config = config
        self._settings = config.schedule
        self._audit_key = audit_key
        self._lock_dir = lock_dir
        self._on_outcome = on_outcome
        self._first_delay_s = first_delay_s
        self._rng = rng or random.Random()  # noqa: S311 - spreading load, not a secret
        self._due: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self._settings.match_interval > 0

    def run(self, stop: threading.Event) -> None:
        if not self.enabled:
            return
        _log.info(
            "matching every peer every %s s (jitter %d%%)",
            f"{self._settings.match_interval:g}",
            round(self._settings.jitter * 100),
        )
        started = time.monotonic()
        while not stop.is_set():
            try:
                wait = self._tick(started)
            except NodeError as exc:
                _log.error("match schedule: %s", exc)
                wait = _RESCAN_S
            except Exception:
                # A bug must not end the schedule for the life of the server.
                _log.exception("match schedule: unexpected error; carrying on")
                wait = _RESCAN_S
            stop.wait(min(wait, _RESCAN_S))

    def _tick(self, started: float) -> float:
        """Match every peer that is due; return seconds until the next one is."""
        with self._open_store() as store:
            peers = {p.node_id: p for p in store.peers.list()}
            for gone in set(self._due) - set(peers):
                del self._due[gone]
            for peer_id in peers.keys() - self._due.keys():
                self._due[peer_id] = self._first_due(store, peer_id, started)
            for peer_id, due in sorted(self._due.items(), key=lambda item: item[1]):
                if due > time.monotonic():
                    continue
                self._match(store, peers[peer_id])
        return max(0.0, min(self._due.values(), default=_RESCAN_S) - time.monotonic())

    def _first_due(self, store: Store, peer_id: str, started: float) -> float:
        """A peer's first due time: from its last run if it has one, else soon after start,
        spread so that many peers do not all start at once."""
        spread = self._rng.uniform(
            0, self._settings.jitter * min(self._settings.match_interval, 300)
        )
        earliest = started + self._first_delay_s + spread
        last = store.runs.last(peer_id)
        if last is None:
            return earliest
        failures = store.runs.failures_since_success(peer_id)
        remaining = next_delay(self._settings, failures, self._rng) - _age_s(
            last, datetime.now(UTC)
        )
        return max(earliest, time.monotonic() + remaining)

    def _match(self, store: Store, peer: PeerRecord) -> None:
        try:
            with match_lock(self._lock_dir, peer):
                outcome = match_peer(
                    store,
                    peer,
                    identity=self._identity,
                    config=self._config,
                    audit_key=self._audit_key,
                    trigger="schedule",
                )
        except MatchInProgress:
            _log.info("peer %s: a match is already running; trying again later", peer.name)
            self._due[peer.node_id] = time.monotonic() + self._settings.retry_initial
            return
        failures = 0 if outcome.ok else store.runs.failures_since_success(peer.node_id)
        delay = next_delay(self._settings, failures, self._rng)
        self._due[peer.node_id] = time.monotonic() + delay
        if outcome.ok:
            _log.info(
                "scheduled match with %s: %d matches (%d new), %d evaluated in %.1f s; "
                "next in %.0f s",
                peer.name,
                outcome.run.matches,
                outcome.run.new_matches,
                outcome.run.evaluated,
                outcome.duration_s,
                delay,
            )
        else:
            _log.warning(
                "scheduled match with %s failed (%d in a row): %s; retrying in %.0f s",
                peer.name,
                failures,
                outcome.error,
                delay,
            )
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception:
                _log.exception("match outcome listener failed")
