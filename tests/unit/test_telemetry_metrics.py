"""In-process metrics: sessions served and matches initiated, counted with bounded labels."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from telemetry_outcomes import outcome

from node.telemetry.metrics import SessionMetrics
from node.transport.events import SessionEvent


def _event(peer: str | None, rpc: str, status: str, results: int, seconds: float) -> SessionEvent:
    return SessionEvent("served", rpc, "ID", peer, status, results, results, (), seconds, "")


def test_sessions_are_counted_by_peer_and_timed_by_rpc() -> None:
    registry = CollectorRegistry()
    metrics = SessionMetrics(registry, version="9.9", node_id="NODE-ID", name="alpha")
    metrics.observe_session(_event("bravo", "evaluate", "OK", 100, 0.2))
    metrics.observe_session(_event("bravo", "evaluate", "OK", 20, 0.002))
    metrics.observe_session(_event("bravo", "sync_tags", "OK", 500, 0.05))
    metrics.observe_session(_event(None, "evaluate", "PERMISSION_DENIED", 0, 0.001))
    metrics.observe_match(outcome(ok=True, duration_s=2.5))
    metrics.observe_match(outcome(ok=False, duration_s=3.0))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    served = {"direction": "served"}
    assert value("aif_sessions_total", peer="bravo", rpc="evaluate", status="OK", **served) == 2
    assert value("aif_sessions_total", peer="bravo", rpc="sync_tags", status="OK", **served) == 1
    assert (
        value(
            "aif_sessions_total",
            peer="unauthenticated",
            rpc="evaluate",
            status="PERMISSION_DENIED",
            **served,
        )
        == 1
    )
    # Only evaluations count as elements evaluated; tag entries sent do not.
    assert value("aif_elements_evaluated_total", peer="bravo") == 120
    assert value("aif_elements_evaluated_total", peer="unauthenticated") is None
    assert value("aif_session_duration_seconds_count", rpc="evaluate", **served) == 3
    assert value("aif_session_duration_seconds_bucket", rpc="evaluate", le="0.001", **served) == 1
    assert value("aif_session_duration_seconds_bucket", rpc="evaluate", le="0.005", **served) == 2
    assert value("aif_session_duration_seconds_sum", rpc="evaluate", **served) == pytest.approx(
        0.203
    )

    initiated = {"peer": "bravo", "direction": "initiated", "rpc": "match"}
    assert value("aif_sessions_total", status="OK", **initiated) == 1
    assert value("aif_sessions_total", status="PeerUnavailable", **initiated) == 1
    assert value("aif_match_duration_seconds_count", peer="bravo") == 2
    assert value("aif_match_duration_seconds_sum", peer="bravo") == 5.5
    assert value("aif_match_duration_seconds_bucket", peer="bravo", le="3600.0") == 2
    info = {"version": "9.9", "node_id": "NODE-ID", "name": "alpha"}
    assert registry.get_sample_value("aif_node_info", info) == 1
