"""The Federation service: authenticate, call the Evaluator, report; nothing else.

Each call is one session: it opens its own store connection (SQLite connections stay on the
thread that made them, and gRPC runs each call on one pool thread), looks its caller up again,
and ends with one audit entry and one log line, whatever the outcome. Errors become status
codes in `node.transport.status`, the one place that maps them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from node.identifiers import KindRegistry
from node.identity import NodeID
from node.psi.evaluator import Evaluator
from node.psi.types import ELEMENT_SIZE
from node.store import Store
from node.store.peers import PeerRecord
from node.transport import serde
from node.transport.auth import Authenticator, caller_id
from node.transport.status import peer_message, status_of

_log = logging.getLogger(__name__)

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
        kinds: KindRegistry,
        audit_key: bytes,
    ) -> None:
        self._auth = authenticator
        self._open_store = open_store
        self._make_evaluator = make_evaluator
        self._kinds = kinds
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
        with self._session(context, "evaluate") as session:
            for batches, request in enumerate(request_iterator, start=1):
                call = serde.evaluate_call_from_pb(request)
                session.kind, session.epoch = call.kind, call.epoch
                session.kinds.add(call.kind)
                session.elements += call.batch.size
                result = session.psi.evaluate(session.caller, call.epoch, call.kind, call.batch)
                session.results += len(result.evaluated) // ELEMENT_SIZE
                session.detail = f"{batches} batch(es), {result.budget_remaining} budget left"
                yield serde.eval_result_to_pb(result)

    def SyncTags(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with self._session(context, "sync_tags") as session:
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
    def _session(self, context: grpc.ServicerContext, action: str) -> Iterator[_Session]:
        """Run one call; audit and log its end; turn an error into the call's status.

        The peer cancelling (or going away) ends the session as CANCELLED: gRPC then raises
        in the request iterator, or closes the response generator at its `yield`.
        """
        started = time.monotonic()
        session = _Session(action)
        with self._open_store() as store:
            try:
                session.node_id = caller_id(context)
                session.peer = self._auth.peer(store, context)
                session.evaluator = self._make_evaluator(store)
                yield session
            except (grpc.RpcError, GeneratorExit):
                self._end(store, session, "CANCELLED", "the caller cancelled", started)
                raise
            except Exception as exc:
                code = status_of(
                    exc,
                    kind_known=session.kind is None or session.kind in self._kinds.all(),
                    epoch_current=self._epoch_current(session),
                )
                if code is grpc.StatusCode.INTERNAL:
                    _log.exception("%s from %s failed", action, _who(session))
                self._end(store, session, code.name, str(exc), started)
                context.abort(code, peer_message(exc, code))
            else:
                self._end(store, session, "OK", session.detail, started)

    @staticmethod
    def _epoch_current(session: _Session) -> bool:
        if session.epoch is None or session.evaluator is None:
            return True
        try:
            return session.epoch == session.evaluator.current_epoch()
        except Exception:  # no key to compare with: the error itself says what is wrong
            return True

    def _end(
        self, store: Store, session: _Session, status: str, detail: str, started: float
    ) -> None:
        seconds = time.monotonic() - started
        peer = session.peer
        _log.info(
            "%s %s: %s, %d element(s), %d result(s), %.3f s",
            _who(session),
            session.action,
            status,
            session.elements,
            session.results,
            seconds,
        )
        try:
            store.audit.append(
                self._audit_key,
                "served",
                None if session.node_id is None else str(session.node_id),
                None if peer is None else peer.name,
                session.action,
                sorted(session.kinds),
                session.elements,
                session.results,
                status,
                detail,
            )
        except Exception:
            _log.exception("cannot write the audit entry of %s %s", _who(session), session.action)


def _who(session: _Session) -> str:
    if session.peer is not None:
        return f"peer {session.peer.name!r}"
    if session.node_id is not None:
        return f"unpinned node {session.node_id.short}"
    return "unidentified caller"
