"""The node's gRPC server: Federation, the standard health service, and reflection, over mTLS.

Lifecycle: `NodeServer(...)` binds the port (ConfigError if it cannot), `start()` serves,
`stop(grace)` drains: health goes NOT_SERVING first (so a watcher or load balancer stops
sending), then calls in flight get `grace` seconds to finish before they are cancelled.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from node.config import ServeLimits
from node.errors import ConfigError
from node.identifiers import KindRegistry
from node.identity import Identity
from node.keys import EpochKeyring
from node.psi.evaluator import Evaluator
from node.store import Store
from node.transport.auth import FEDERATION_SERVICE, Authenticator, AuthInterceptor
from node.transport.credentials import server_credentials
from node.transport.events import SessionListener
from node.transport.grpc_options import server_options
from node.transport.pb import federation_pb2_grpc
from node.transport.servicer import FederationServicer

_log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 10.0
"""How long `stop` lets calls in flight finish: a batch or a tag chunk takes well under this."""


class NodeServer:
    """One node's server, bound to `listen` ("HOST:PORT"; port 0 picks a free one).

    `listeners` are called with a SessionEvent at the end of every audited session, served
    or refused, on the thread that served it.
    """

    def __init__(
        self,
        *,
        identity: Identity,
        name: str,
        listen: str,
        open_store: Callable[[], Store],
        keyring: EpochKeyring,
        kinds: KindRegistry,
        audit_key: bytes,
        limits: ServeLimits | None = None,
        listeners: Sequence[SessionListener] = (),
    ) -> None:
        limits = limits or ServeLimits()
        self.identity = identity
        self.listen = listen
        node_id = identity.node_id
        authenticator = Authenticator(node_id, open_store, audit_key, listeners)

        def make_evaluator(store: Store) -> Evaluator:
            return Evaluator(store, keyring, limits, node_id=str(node_id), name=name, kinds=kinds)

        # One thread per call the server admits: a call never waits for a thread, and calls
        # beyond the limit are refused (RESOURCE_EXHAUSTED) rather than queued without bound.
        self._executor = ThreadPoolExecutor(
            max_workers=limits.max_concurrent_rpcs, thread_name_prefix="aif-rpc"
        )
        self._server = grpc.server(
            self._executor,
            interceptors=[AuthInterceptor(authenticator)],
            options=server_options(limits),
            maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
        )
        servicer = FederationServicer(
            authenticator, open_store, make_evaluator, audit_key, limits, listeners
        )
        federation_pb2_grpc.add_FederationServicer_to_server(servicer, self._server)
        self._health = health.HealthServicer()
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection((FEDERATION_SERVICE, health.SERVICE_NAME), self._server)
        credentials = server_credentials(identity, authenticator.pinned_certificates)
        try:
            self.port = self._server.add_secure_port(listen, credentials)
        except RuntimeError as exc:
            self._executor.shutdown(wait=False)
            raise ConfigError(f"cannot listen on {listen}: {_bind_problem(listen)}") from exc

    @property
    def address(self) -> str:
        """HOST:PORT as bound (the real port when `listen` asked for port 0)."""
        host = self.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    def start(self) -> None:
        self._server.start()
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        _log.info("serving on %s as %s", self.address, self.identity.node_id)

    def stop(self, grace: float | None = DEFAULT_GRACE_S) -> None:
        """NOT_SERVING first, then refuse new calls and give those in flight `grace` seconds
        (None: wait for them however long they take). Returns once the server has stopped."""
        self._health.enter_graceful_shutdown()
        _log.info("stopping: %s s for calls in flight", "unbounded" if grace is None else grace)
        self._server.stop(grace).wait()
        self._executor.shutdown(wait=True)
        _log.info("stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or `timeout` passes); True if it stopped."""
        return self._server.wait_for_termination(timeout)

    def __enter__(self) -> NodeServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for service in (health.OVERALL_HEALTH, FEDERATION_SERVICE):
            self._health.set(service, status)


def _bind_problem(listen: str) -> str:
    """Why gRPC could not bind (it only says that it could not): try the address ourselves."""
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except (ValueError, OSError) as exc:
        return f"not a usable address ({exc})"
    for family, kind, proto, _name, sockaddr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return "address already in use"
                return exc.strerror or str(exc)
    return "the address could not be bound"
