"""A match outcome as `node.matching.match_peer` returns it, for the telemetry tests."""

from __future__ import annotations

from node.errors import PeerUnavailable
from node.identity import generate_identity
from node.matching import PeerOutcome
from node.store.peers import PeerRecord
from node.store.runs import MatchRun

BRAVO = generate_identity("bravo")


def outcome(*, ok: bool, duration_s: float = 2.5) -> PeerOutcome:
    peer = PeerRecord(
        node_id=str(BRAVO.node_id),
        name="bravo",
        cert_pem=BRAVO.cert_pem.decode(),
        addresses=("127.0.0.1:1",),
        kinds=None,
        labels=None,
        budget=1000,
        policy_version=0,
        added_at="2024-05-01T00:00:00+00:00",
    )
    error = None if ok else PeerUnavailable("peer 'bravo' is unreachable: 127.0.0.1:1: refused")
    run = MatchRun(
        peer_id=peer.node_id,
        peer_name=peer.name,
        trigger="schedule",
        started_at="2024-05-01T00:00:00+00:00",
        finished_at="2024-05-01T00:00:03+00:00",
        status="OK" if ok else "PeerUnavailable",
        error="" if error is None else str(error),
        evaluated=40 if ok else 0,
        matches=4 if ok else 0,
        new_matches=1 if ok else 0,
    )
    return PeerOutcome(peer, (), error, run, duration_s)
