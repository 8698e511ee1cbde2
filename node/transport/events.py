"""Sessions as events: what the server tells whoever watches it, once per audited session.

The transport knows nothing of metrics or log shipping; `serve` hands the NodeServer listeners
and the transport calls each one where a session ends, beside its audit entry. An event holds
counts and names only, never a clue value, tag, label or key, so a listener may ship it
anywhere. A listener that raises is logged and otherwise ignored: watching must never break
an RPC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionEvent:
    """One session's end, as its audit entry records it."""

    direction: str
    """'served': a peer called us (the only direction the transport sees)."""
    rpc: str
    """The audit log's name for the call: 'node_info', 'evaluate', 'sync_tags', ..."""
    peer_id: str | None
    """The caller's node ID from its TLS certificate; None if it presented none usable."""
    peer: str | None
    """The pinned peer's name; None when the caller is not (or no longer) pinned."""
    status: str
    """The gRPC status code's name: 'OK', 'RESOURCE_EXHAUSTED', ..."""
    elements: int
    """Elements the peer sent to be evaluated."""
    results: int
    """Elements evaluated, or tag-set entries sent."""
    kinds: tuple[str, ...]
    duration_s: float
    detail: str
    """The audit entry's detail: counts, or the refusal's reason; never a value."""

    def log_fields(self) -> dict[str, object]:
        """The event as top-level fields of its log record (event="session")."""
        return {
            "event": "session",
            "direction": self.direction,
            "rpc": self.rpc,
            "peer": self.peer,
            "peer_id": self.peer_id,
            "status": self.status,
            "elements": self.elements,
            "results": self.results,
            "kinds": list(self.kinds),
            "duration_ms": round(self.duration_s * 1000, 3),
            "detail": self.detail,
        }


SessionListener = Callable[[SessionEvent], None]


def publish(listeners: Sequence[SessionListener], event: SessionEvent) -> None:
    """Give `event` to every listener; one that fails is logged and the rest still run."""
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            _log.exception("a session listener failed on %s %s", event.rpc, event.status)
