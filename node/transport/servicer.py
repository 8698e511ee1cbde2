"""The Federation service: authenticate, call the Evaluator, report; nothing else.

Each call is one session: it opens its own store connection (SQLite connections stay on the
thread that made them, and gRPC runs each call on one pool thread), looks its caller up again,
and ends with one audit entry, one log line and one SessionEvent to the listeners, whatever
the outcome. Errors become status
codes in `node.transport.status`, the one place that maps them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from node.config import ServeLimits
from node.errors import TooManyCalls
from node.identity import NodeID
from node.psi.evaluator import Evaluator
from node.psi.types import ELEMENT_SIZE
from node.store import Store
from node.store.peers import PeerRecord
from node.transport import serde
from node.transport.auth import Authenticator, caller_id
from node.transport.events import SessionEvent, SessionListener, publish
from node.transport.status import INTERNAL_MESSAGE, TOO_MANY_CALLS, peer_message, status_of

_log = logging.getLogger(__name__)

_CANCELLED = ("CANCELLED", "the caller cancelled")

EvaluatorFactory = Callable[[Store], Evaluator]
"""Makes the Evaluator of one call, over that call's store connection."""


@dataclass
class _Session:
    """What one call did, for its audit entry and log line; counts only, never a value."""

    action: str
    node_id: NodeID | None = None
    peer: PeerRecord | None = None
    evaluator: Evaluator | None = None
    kinds: set[str] = field(default_factory=set)
    elements: int = 0
    """Elements the peer sent to be evaluated."""
    results: int = 0
    """Elements evaluated, or tag-set entries sent."""
    detail: str = ""
    # The request being served when an error came: lets the status say what went wrong.
    kind: str | None = None
    epoch: int | None = None
    expired: bool = False
    """Set when the server ended the stream for running past ServeLimits.stream_timeout_s."""
    idle: bool = False
    """Set when the server ended the stream for waiting past stream_idle_timeout_s."""

    @property
    def caller(self) -> PeerRecord:
        if self.peer is None:  # pragma: no cover - set before the behaviour runs
            raise RuntimeError("session without a peer")
        return self.peer

    @property
    def psi(self) -> Evaluator:
        if self.evaluator is None:  # pragma: no cover - set before the behaviour runs
            raise RuntimeError("session without an evaluator")
        return self.evaluator


class FederationServicer:
    """aif.federation.v1.Federation, registered with `add_FederationServicer_to_server`."""

    def __init__(
        self,
        authenticator: Authenticator,
        open_store: Callable[[], Store],
        make_evaluator: EvaluatorFactory,
        audit_key: bytes,
        limits: ServeLimits,
        listeners: Sequence[SessionListener] = (),
    ) -> None:
        self._auth = authenticator
        self._listeners = tuple(listeners)
        self._stream_limit_s = limits.stream_timeout_s
        self._idle_s = limits.stream_idle_timeout_s
        self._slots = _PeerSlots(limits.max_calls_per_peer)
        self._open_store = open_store
        self._make_evaluator = make_evaluator
        self._audit_key = audit_key

    def GetNodeInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._session(context, "node_info") as session:
            info = session.psi.node_info(session.caller)
            session.kinds.update(k.kind for k in info.kinds)
            session.detail = f"epoch {info.epoch}"
            return serde.node_info_to_pb(info)

    def Evaluate(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        with self._session(context, "evaluate", stream=True) as session:
            idle = _IdleWatch(self._idle_s, session, context)
            try:
                for batches, request in enumerate(request_iterator, start=1):
                    idle.stop()
                    call = serde.evaluate_call_from_pb(request)
                    session.kind, session.epoch = call.kind, call.epoch
                    session.kinds.add(call.kind)
                    session.elements += call.batch.size
                    result = session.psi.evaluate(session.caller, call.epoch, call.kind, call.batch)
                    session.results += len(result.evaluated) // ELEMENT_SIZE
                    session.detail = f"{batches} batch(es), {result.budget_remaining} budget left"
                    yield serde.eval_result_to_pb(result)
                    idle.start()
            finally:
                idle.stop()

    def SyncTags(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with self._session(context, "sync_tags", stream=True) as session:
            call = serde.sync_call_from_pb(request)
            session.kind = call.kind
            session.kinds.add(call.kind)
            chunks = session.psi.sync_tags(
                session.caller, call.kind, call.epoch, call.since_version, call.policy_token
            )
            for chunk in chunks:
                session.results += chunk.added_count + chunk.removed_count
                mode = "full" if chunk.full else f"delta from {call.since_version}"
                session.detail = f"{mode} to version {chunk.version} of epoch {chunk.epoch}"
                yield serde.tag_chunk_to_pb(chunk)

    @contextmanager
    def _session(
        self, context: grpc.ServicerContext, action: str, *, stream: bool = False
    ) -> Iterator[_Session]:
        """Run one call; audit and log its end; turn an error into the call's status.

        The peer cancelling (or going away) ends the session as CANCELLED. A stream is
        cancelled by the server once it has run for stream_limit_s: a peer trickling batches
        cannot hold a thread and a concurrency slot for ever.
        """
        started = time.monotonic()
        session = _Session(action)
        try:
            opened = self._open_store()
        except Exception:  # nothing to audit into: the log and the listeners have to do
            event = self._event(session, "INTERNAL", "cannot open the store", started)
            _log.exception("%s refused: cannot open the store", action, extra=event.log_fields())
            publish(self._listeners, event)
            context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
        timer = threading.Timer(self._stream_limit_s, _expire, (session, context))
        timer.daemon = True
        if stream:
            timer.start()  # a unary call is bounded by the work it asks for
        with opened as store:
            try:
                session.node_id = caller_id(context)
                session.peer = self._auth.peer(store, session.node_id)
                with self._slots.hold(session.peer):
                    session.evaluator = self._make_evaluator(store)
                    yield session
            except (grpc.RpcError, GeneratorExit):
                status, detail = self._cut_short(session, context) or _CANCELLED
                self._end(store, session, status, detail, started)
                raise
            except Exception as exc:
                code = status_of(exc)
                if code is grpc.StatusCode.INTERNAL:
                    _log.exception("%s from %s failed", action, _who(session))
                self._end(store, session, code.name, str(exc), started)
                context.abort(code, peer_message(exc, code))
            else:
                status, detail = self._cut_short(session, context) or ("OK", session.detail)
                self._end(store, session, status, detail, started)
            finally:
                timer.cancel()

    def _cut_short(
        self, session: _Session, context: grpc.ServicerContext
    ) -> tuple[str, str] | None:
        """Status and detail of a call that ended before its session did, or None.

        gRPC ends a request stream cut by a cancel or a deadline as if it were complete, and
        may tell the handler before it marks the call cancelled: a stream the caller cancels
        at the moment it ends may be recorded as OK. The counts are exact either way.
        """
        if session.expired:
            return (
                "DEADLINE_EXCEEDED",
                f"the stream ran past this node's {self._stream_limit_s:g} s",
            )
        if session.idle:
            return "DEADLINE_EXCEEDED", f"no batch for {self._idle_s:g} s"
        if context.time_remaining() <= 0:
            return "DEADLINE_EXCEEDED", "the caller's deadline passed"
        if not context.is_active():
            return _CANCELLED
        return None

    def _end(
        self, store: Store, session: _Session, status: str, detail: str, started: float
    ) -> None:
        event = self._event(session, status, detail, started)
        _log.info(
            "%s %s: %s, %d element(s), %d result(s), %.3f s",
            _who(session),
            session.action,
            status,
            session.elements,
            session.results,
            event.duration_s,
            extra=event.log_fields(),
        )
        try:
            store.audit.append(
                self._audit_key,
                "served",
                event.peer_id,
                event.peer,
                event.rpc,
                event.kinds,
                event.elements,
                event.results,
                event.status,
                event.detail,
            )
        except Exception:
            _log.exception("cannot write the audit entry of %s %s", _who(session), session.action)
        publish(self._listeners, event)

    @staticmethod
    def _event(session: _Session, status: str, detail: str, started: float) -> SessionEvent:
        return SessionEvent(
            direction="served",
            rpc=session.action,
            peer_id=None if session.node_id is None else str(session.node_id),
            peer=None if session.peer is None else session.peer.name,
            status=status,
            elements=session.elements,
            results=session.results,
            kinds=tuple(sorted(session.kinds)),
            duration_s=time.monotonic() - started,
            detail=detail,
        )


class _PeerSlots:
    """Calls in progress per peer, so that one peer holding streams open cannot take every
    slot of the server's max_concurrent_rpcs from the others."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    @contextmanager
    def hold(self, peer: PeerRecord) -> Iterator[None]:
        with self._lock:
            held = self._held.get(peer.node_id, 0)
            if held >= self._limit:
                raise TooManyCalls(
                    f"{TOO_MANY_CALLS}: peer {peer.name!r} already has {held} "
                    f"(at most {self._limit}); let them finish first"
                )
            self._held[peer.node_id] = held + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._held[peer.node_id] - 1
                if left:
                    self._held[peer.node_id] = left
                else:
                    del self._held[peer.node_id]


class _IdleWatch:
    """Cancels an Evaluate stream whose peer sends no batch for `seconds`: a peer that goes
    quiet mid-stream must not hold a thread and a slot until the stream limit."""

    def __init__(self, seconds: float, session: _Session, context: grpc.ServicerContext) -> None:
        self._seconds = seconds
        self._session = session
        self._context = context
        self._timer: threading.Timer | None = None
        self.start()

    def start(self) -> None:
        self.stop()
        self._timer = threading.Timer(self._seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._session.idle = True
        self._context.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it unannotated


def _expire(session: _Session, context: grpc.ServicerContext) -> None:
    session.expired = True
    context.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it unannotated


def _who(session: _Session) -> str:
    if session.peer is not None:
        return f"peer {session.peer.name!r}"
    if session.node_id is not None:
        return f"unpinned node {session.node_id.short}"
    return "unidentified caller"
