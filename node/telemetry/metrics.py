"""In-process metrics: what this `serve` process saw happen, counted as it happened.

Sessions come from the transport's SessionEvents (served calls and refusals) and from the
matches this process initiates. Peers are labelled by name; a caller that is not a pinned
peer is counted under `peer="unauthenticated"`, so the label's values stay bounded by the
pinned peers however many strangers knock.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, Info

from node.matching import PeerOutcome
from node.transport.events import SessionEvent

UNAUTHENTICATED = "unauthenticated"

DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
"""From a 1 ms node-info call to an hour-long first evaluation of a large set."""


class SessionMetrics:
    """Counters and histograms in `registry`, fed by `observe_session` and `observe_match`."""

    def __init__(
        self, registry: CollectorRegistry, *, version: str, node_id: str, name: str
    ) -> None:
        self._sessions = Counter(
            "aif_sessions",
            "Sessions ended, by peer, direction (served or initiated), RPC and status "
            "(a gRPC code name for served calls, OK or the error's name for matches).",
            ("peer", "direction", "rpc", "status"),
            registry=registry,
        )
        self._duration = Histogram(
            "aif_session_duration_seconds",
            "How long sessions took, from reaching the service to their audit entry.",
            ("direction", "rpc"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._evaluated = Counter(
            "aif_elements_evaluated",
            "Elements this node evaluated for each peer (served Evaluate calls).",
            ("peer",),
            registry=registry,
        )
        self._match_duration = Histogram(
            "aif_match_duration_seconds",
            "How long the matches this process initiated took, per peer.",
            ("peer",),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        Info("aif_node", "This node's software version and identity.", registry=registry).info(
            {"version": version, "node_id": node_id, "name": name}
        )

    def observe_session(self, event: SessionEvent) -> None:
        """A SessionListener: count one served session."""
        peer = event.peer or UNAUTHENTICATED
        self._sessions.labels(peer, event.direction, event.rpc, event.status).inc()
        self._duration.labels(event.direction, event.rpc).observe(event.duration_s)
        if event.rpc == "evaluate" and event.results:
            self._evaluated.labels(peer).inc(event.results)

    def observe_match(self, outcome: PeerOutcome) -> None:
        """Count one match this process initiated, successful or not."""
        peer = outcome.peer.name
        self._sessions.labels(peer, "initiated", "match", outcome.run.status).inc()
        self._duration.labels("initiated", "match").observe(outcome.duration_s)
        self._match_duration.labels(peer).observe(outcome.duration_s)
