"""Who is calling: the caller's identity is its TLS client certificate, checked on every call.

TLS admits only certificates in the trust store (the pinned peers and the node itself), but a
TLS connection outlives a `peers remove`, so each call looks its caller up in the store again:
a removed peer's next call on a connection it already holds is refused with PERMISSION_DENIED
and audited. The node's own certificate is in the trust store only so that `aif-node health`
can check its own server; it is admitted to the health service and nothing else.
Every refusal is a session: audited, logged and published as a SessionEvent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import grpc
from google.protobuf.message import DecodeError

from node.errors import InputError, PeerError, PermissionDenied, ProtocolViolation, UnknownPeer
from node.identity import NodeID, node_id_of_pem
from node.store import Store
from node.store.peers import PeerRecord
from node.transport.events import SessionEvent, SessionListener, publish
from node.transport.status import INTERNAL_MESSAGE, status_of

_log = logging.getLogger(__name__)

FEDERATION_SERVICE = "aif.federation.v1.Federation"
HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICES = frozenset(
    {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
)
_ACTIONS = {
    f"/{FEDERATION_SERVICE}/GetNodeInfo": "node_info",
    f"/{FEDERATION_SERVICE}/Evaluate": "evaluate",
    f"/{FEDERATION_SERVICE}/SyncTags": "sync_tags",
}


def service_of(method: str) -> str:
    """`aif.federation.v1.Federation` for `/aif.federation.v1.Federation/Evaluate`."""
    return method.lstrip("/").rpartition("/")[0]


def action_of(method: str) -> str:
    """The audit log's name for a call: 'evaluate', 'sync_tags', 'health', ..."""
    if method in _ACTIONS:
        return _ACTIONS[method]
    service = service_of(method)
    if service == HEALTH_SERVICE:
        return "health"
    if service in REFLECTION_SERVICES:
        return "reflection"
    return method


def caller_id(context: grpc.ServicerContext) -> NodeID:
    """The node ID of the certificate the caller presented in the TLS handshake."""
    # gRPC gives each auth property as a list of values; the stubs say bytes.
    auth = cast(dict[str, list[bytes]], context.auth_context())
    pems = auth.get("x509_pem_cert") or []
    if not pems:
        raise UnknownPeer("the caller presented no client certificate")
    try:
        return node_id_of_pem(pems[0])
    except InputError as exc:
        raise UnknownPeer(f"the caller's certificate is unusable: {exc}") from exc


class Authenticator:
    """Decides, per call, whether the TLS identity may call the method."""

    def __init__(
        self,
        own_id: NodeID,
        open_store: Callable[[], Store],
        audit_key: bytes,
        listeners: Sequence[SessionListener] = (),
    ) -> None:
        self.own_id = own_id
        self._open_store = open_store
        self._audit_key = audit_key
        self._listeners = tuple(listeners)

    def pinned_certificates(self) -> list[bytes]:
        """The pinned peers' certificates now: the server's TLS trust store."""
        with self._open_store() as store:
            return [peer.cert_pem.encode() for peer in store.peers.list()]

    @staticmethod
    def peer(store: Store, node_id: NodeID) -> PeerRecord:
        """The pinned peer with this node ID; UnknownPeer when it is not (or no longer) pinned."""
        peer = store.peers.get_by_id(str(node_id))
        if peer is None:
            raise UnknownPeer(f"node ID {node_id} is not a pinned peer")
        return peer

    def admit(self, context: grpc.ServicerContext, method: str) -> None:
        """Return if the caller may call `method`; else raise UnknownPeer or PermissionDenied,
        after auditing the refusal."""
        started = time.monotonic()
        node_id = caller_id(context)
        if node_id == self.own_id:
            if service_of(method) == HEALTH_SERVICE:
                return
            error: PeerError = PermissionDenied(
                f"node ID {node_id} is this node's own: it may call only the health service"
            )
            with self._open_store() as store:
                self._refuse(store, node_id, method, error, started)
            raise error
        with self._open_store() as store:
            try:
                self.peer(store, node_id)
            except UnknownPeer as exc:
                self._refuse(store, node_id, method, exc, started)
                raise

    def refuse(self, context: grpc.ServicerContext, method: str, error: PeerError) -> None:
        """Audit and log a refusal of an admitted caller's call before it reached the service."""
        started = time.monotonic()
        node_id = caller_id(context)
        with self._open_store() as store:
            peer = store.peers.get_by_id(str(node_id))
            self._refuse(
                store, node_id, method, error, started, None if peer is None else peer.name
            )

    def _refuse(
        self,
        store: Store,
        node_id: NodeID,
        method: str,
        error: PeerError,
        started: float,
        name: str | None = None,
    ) -> None:
        """Audit, log and publish a call refused before it did anything. A failure to audit is
        logged and does not turn the refusal into another answer."""
        code = status_of(error)
        event = SessionEvent(
            direction="served",
            rpc=action_of(method),
            peer_id=str(node_id),
            peer=name,
            status=code.name,
            elements=0,
            results=0,
            kinds=(),
            duration_s=time.monotonic() - started,
            detail=str(error),
        )
        who = "this node" if node_id == self.own_id else "unpinned node"
        if name is not None:
            who = f"peer {name!r}"
        _log.warning(
            "refused %s from %s %s: %s %s",
            method,
            who,
            node_id.short,
            code.name,
            error,
            extra=event.log_fields(),
        )
        try:
            store.audit.append(
                self._audit_key,
                "served",
                event.peer_id,
                name,
                event.rpc,
                (),
                0,
                0,
                code.name,
                event.detail,
            )
        except Exception:
            _log.exception("cannot write the audit entry of a refused %s", method)
        publish(self._listeners, event)


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps every handler of every service so that admission runs before the behaviour.

    The servicer looks its caller up again (it needs the peer's policy): the interceptor is the
    gate for services we did not write (health, reflection), the servicer's own check keeps
    Federation closed even if it were ever served without this interceptor.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:  # type: ignore[type-arg]
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        ours = service_of(method) == FEDERATION_SERVICE
        return _guarded(handler, self._gate(method), self._refusal(method) if ours else None)

    def _gate(self, method: str) -> Callable[[grpc.ServicerContext], None]:
        def gate(context: grpc.ServicerContext) -> None:
            try:
                self._auth.admit(context, method)
            except PeerError as exc:
                context.abort(status_of(exc), str(exc))
            except Exception:  # e.g. the store is unusable: the peer learns nothing of ours
                _log.exception("cannot check the caller of %s", method)
                context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

        return gate

    def _refusal(self, method: str) -> Callable[[grpc.ServicerContext, PeerError], None]:
        def refuse(context: grpc.ServicerContext, error: PeerError) -> None:
            try:
                self._auth.refuse(context, method, error)
            except Exception:  # the refusal stands; the log says why it is not audited
                _log.exception("cannot audit a refused %s", method)
            context.abort(status_of(error), str(error))

        return refuse


class _Undecodable:
    """A request message that did not parse, handed to the behaviour to refuse."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _lenient(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`parse`, turning a DecodeError into an _Undecodable.

    gRPC answers a request that fails to parse with INTERNAL, logs a traceback and never runs
    the behaviour, so the refusal is not audited: a peer's malformed message is
    INVALID_ARGUMENT like any other, audited, and costs no traceback in our log."""
    if parse is None:  # pragma: no cover - generated handlers always have a deserializer
        return None
    real = parse

    def lenient(data: bytes) -> Any:
        try:
            return real(data)
        except DecodeError as exc:
            return _Undecodable(f"malformed request: {exc}")

    return lenient


def _parsed(requests: Iterator[Any]) -> Iterator[Any]:
    """The request stream, raising ProtocolViolation (INVALID_ARGUMENT in the servicer's
    session, which audits it) at the first message that did not parse."""
    for request in requests:
        if isinstance(request, _Undecodable):
            raise ProtocolViolation(request.reason)
        yield request


_HANDLER_FACTORIES: dict[tuple[bool, bool], Callable[..., Any]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}
# Attributes gRPC reads from a behaviour (the health service's non-blocking Watch sets them).
_BEHAVIOUR_ATTRIBUTES = ("experimental_non_blocking", "experimental_thread_pool")


def _guarded(
    handler: grpc.RpcMethodHandler,  # type: ignore[type-arg]
    gate: Callable[[grpc.ServicerContext], None],
    refuse: Callable[[grpc.ServicerContext, PeerError], None] | None,
) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
    """The same handler, with `gate` run first (it aborts the call to refuse it). With
    `refuse`, a request that does not parse is refused as a ProtocolViolation."""
    behaviour: Callable[..., Any] | None = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    if behaviour is None:  # pragma: no cover - gRPC handlers always have one behaviour
        raise TypeError("a method handler without a behaviour")
    inner = behaviour

    def guarded(request: Any, context: grpc.ServicerContext, *more: Any) -> Any:
        gate(context)
        if isinstance(request, _Undecodable) and refuse is not None:
            refuse(context, ProtocolViolation(request.reason))
        if handler.request_streaming and refuse is not None:
            request = _parsed(request)
        return inner(request, context, *more)

    for attribute in _BEHAVIOUR_ATTRIBUTES:
        if hasattr(inner, attribute):
            setattr(guarded, attribute, getattr(inner, attribute))
    factory = _HANDLER_FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return cast(
        grpc.RpcMethodHandler,  # type: ignore[type-arg]
        factory(
            guarded,
            request_deserializer=(
                handler.request_deserializer
                if refuse is None
                else _lenient(handler.request_deserializer)
            ),
            response_serializer=handler.response_serializer,
        ),
    )
