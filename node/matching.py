"""Matching one peer end to end: dial, run the matcher, audit it and record the run.

`aif-node match` and the schedule in `serve` both come through here, so a match is
audited and recorded the same way whoever started it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from node.config import NodeConfig
from node.errors import MatchInProgress, NodeError
from node.identity import Identity
from node.psi.matcher import Matcher
from node.psi.types import KindSummary, MatchProgress
from node.store import Store
from node.store.peers import PeerRecord
from node.store.runs import MatchRun
from node.transport.client import PeerClient


@dataclass(frozen=True)
class PeerOutcome:
    """How matching one peer went: its summaries, or the error that stopped it."""

    peer: PeerRecord
    summaries: tuple[KindSummary, ...]
    error: NodeError | None
    run: MatchRun
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.error is None


@contextmanager
def match_lock(lock_dir: Path, peer: PeerRecord) -> Iterator[None]:
    """Hold this node's match lock for `peer`, or raise MatchInProgress at once.

    Two matches of one peer at the same time (the schedule and an operator's `match`) would
    both pay the peer's budget for the same records. The lock is an flock on a file in the
    data dir, so it is released when its holder exits, however it exits.
    """
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(lock_dir / f"match-{peer.node_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MatchInProgress(
                f"peer {peer.name!r}: a match with this peer is already running "
                "(the schedule in `serve`, or another `aif-node match`); try again when it ends"
            ) from None
        yield
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def match_peer(
    store: Store,
    peer: PeerRecord,
    *,
    identity: Identity,
    config: NodeConfig,
    audit_key: bytes,
    kinds: Sequence[str] = (),
    trigger: str = "manual",
    progress: Callable[[MatchProgress], None] | None = None,
) -> PeerOutcome:
    """Match our clues against `peer`; a peer's failure is returned, not raised."""
    started_at = _now()
    clock = time.monotonic()
    client = PeerClient(
        peer, identity, config.match, max_message_bytes=config.serve.max_message_bytes
    )
    matcher = Matcher(store, peer, client, batch_elements=config.match.batch_elements)
    summaries: list[KindSummary] = []
    error: NodeError | None = None
    try:
        summaries = matcher.match(list(kinds) or None, progress)
    except NodeError as exc:
        error = exc
    finally:
        client.close()
    duration = time.monotonic() - clock
    evaluated = sum(s.evaluated for s in summaries)
    matches = sum(s.matches for s in summaries)
    if error is None:
        matched_kinds = [s.kind for s in summaries if s.skipped is None]
        status = "OK"
        detail = (
            f"{sum(s.cached for s in summaries)} cached, "
            f"{sum(s.tags_received for s in summaries)} tags received"
        )
    else:
        matched_kinds, status, detail = list(kinds), type(error).__name__, str(error)
    store.audit.append(
        audit_key,
        "initiated",
        peer.node_id,
        peer.name,
        "match",
        matched_kinds,
        evaluated,
        matches,
        status,
        detail,
    )
    run = MatchRun(
        peer_id=peer.node_id,
        peer_name=peer.name,
        trigger=trigger,
        started_at=started_at,
        finished_at=_now(),
        status=status,
        error="" if error is None else detail,
        evaluated=evaluated,
        matches=matches,
        new_matches=sum(s.new_matches for s in summaries),
    )
    store.runs.record(run)
    return PeerOutcome(peer, tuple(summaries), error, run, duration)
