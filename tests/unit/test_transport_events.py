"""Session events: one per audited session, served or refused, matching its audit entry; a
listener that fails is logged and breaks nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from transport_nodes import make_node

from node.errors import PermissionDenied
from node.identifiers import KindRegistry
from node.transport.client import PeerClient
from node.transport.events import SessionEvent, publish
from node.transport.server import NodeServer


def _event(**changes: object) -> SessionEvent:
    fields: dict[str, object] = {
        "direction": "served",
        "rpc": "evaluate",
        "peer_id": "ID",
        "peer": "bravo",
        "status": "OK",
        "elements": 3,
        "results": 3,
        "kinds": ("phone",),
        "duration_s": 0.0125,
        "detail": "1 batch(es)",
    }
    fields.update(changes)
    return SessionEvent(**fields)  # type: ignore[arg-type]


def test_a_failing_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[SessionEvent] = []

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("listener bug")

    with caplog.at_level(logging.ERROR, logger="node.transport.events"):
        publish((broken, seen.append), _event())
    assert seen == [_event()]
    assert "a session listener failed on evaluate OK" in caplog.text
    assert "listener bug" in caplog.text


def test_log_fields_are_counts_and_names() -> None:
    assert _event().log_fields() == {
        "event": "session",
        "direction": "served",
        "rpc": "evaluate",
        "peer": "bravo",
        "peer_id": "ID",
        "status": "OK",
        "elements": 3,
        "results": 3,
        "kinds": ["phone"],
        "duration_ms": 12.5,
        "detail": "1 batch(es)",
    }


def test_every_audited_session_is_one_event_even_with_a_broken_listener(tmp_path: Path) -> None:
    alpha, bravo = make_node(tmp_path, "alpha"), make_node(tmp_path, "bravo")
    seen: list[SessionEvent] = []

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("listener bug")

    server = NodeServer(
        identity=alpha.identity,
        name="alpha",
        listen="127.0.0.1:0",
        open_store=alpha.open_store,
        keyring=alpha.keyring,
        kinds=KindRegistry(),
        audit_key=alpha.audit_key,
        listeners=(broken, seen.append),
    )
    alpha.address = server.address
    alpha.pin(bravo)
    server.start()
    try:
        with PeerClient(bravo.record_of(alpha), bravo.identity) as client:
            client.info()
            alpha.unpin(bravo)
            with pytest.raises(PermissionDenied):
                client.info()
    finally:
        server.stop(0)
    audit = alpha.audit()
    assert [(e.rpc, e.peer, e.status) for e in seen] == [
        ("node_info", "bravo", "OK"),
        ("node_info", None, "PERMISSION_DENIED"),
    ]
    assert [(a.direction, a.action, a.peer_id, a.peer_name, a.status, a.detail) for a in audit] == [
        (e.direction, e.rpc, e.peer_id, e.peer, e.status, e.detail) for e in seen
    ]
    assert all(e.peer_id == str(bravo.node_id) and e.duration_s >= 0 for e in seen)
