"""The client side of the transport: one pinned peer as the matcher's `RemoteNode`.

A PeerClient dials the peer's addresses in order and keeps the first that answers a health
check over mutual TLS, trusting only the peer's pinned certificate under its node ID's name.
Every call has a deadline (MatchSettings), and every failure comes out as a node error whose
message names the peer and the address dialled.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.closeable import Closeable
from node.config import MatchSettings, ServeLimits
from node.errors import PeerUnavailable, ProtocolViolation
from node.identity import Identity, NodeID
from node.psi.types import EvalBatch, EvalResult, NodeInfoView, TagChunk
from node.store.peers import PeerRecord
from node.transport import serde
from node.transport.credentials import channel_credentials
from node.transport.grpc_options import channel_options
from node.transport.pb import federation_pb2_grpc
from node.transport.status import client_error

_SERVING = health_pb2.HealthCheckResponse.SERVING


class PeerClient(Closeable):
    """`node.psi.matcher.RemoteNode` over gRPC, for one PeerRecord. Not thread-safe: one
    match at a time uses it. Connects on first use; `close()` (or `with`) ends the channel."""

    def __init__(
        self,
        peer: PeerRecord,
        identity: Identity,
        settings: MatchSettings | None = None,
        *,
        max_message_bytes: int | None = None,
    ) -> None:
        self.peer = peer
        self._identity = identity
        self._settings = settings or MatchSettings()
        self._max_message_bytes = max_message_bytes or ServeLimits().max_message_bytes
        self._channel: grpc.Channel | None = None
        self._stub: Any = None
        self.address: str | None = None
        """The address in use, once connected."""

    # --- RemoteNode -------------------------------------------------------------------------

    def info(self) -> NodeInfoView:
        stub, address = self._connect()
        timeout = self._settings.call_timeout_s
        try:
            msg = stub.GetNodeInfo(serde.node_info_request(), timeout=timeout)
        except grpc.RpcError as exc:
            raise self._error(exc, address, timeout) from exc
        return serde.node_info_from_pb(msg)

    def evaluate(self, epoch: int, kind: str, batches: Iterator[EvalBatch]) -> Iterator[EvalResult]:
        """Stream `batches` to the peer and yield its answers, in order, as they come.

        gRPC pulls `batches` on a thread of its own while this generator waits for answers,
        so the caller's blinding, the transfer and the peer's evaluation overlap.
        """
        stub, address = self._connect()
        timeout = self._settings.stream_timeout_s
        failure: list[BaseException] = []

        def requests() -> Iterator[Any]:
            try:
                for batch in batches:
                    yield serde.evaluate_call_to_pb(epoch, kind, batch)
            except Exception as exc:  # gRPC cancels the call; our caller gets this error
                failure.append(exc)
                raise

        call = stub.Evaluate(requests(), timeout=timeout)
        try:
            for msg in call:
                yield serde.eval_result_from_pb(msg)
        except grpc.RpcError as exc:
            if failure:
                raise failure[0] from None
            raise self._error(exc, address, timeout) from exc
        finally:
            call.cancel()  # a no-op once the call ended; ends it if our caller stopped early

    def sync_tags(
        self, kind: str, epoch: int, since_version: int, policy_token: str
    ) -> Iterator[TagChunk]:
        stub, address = self._connect()
        timeout = self._settings.stream_timeout_s
        call = stub.SyncTags(
            serde.sync_call_to_pb(kind, epoch, since_version, policy_token), timeout=timeout
        )
        try:
            for msg in call:
                try:
                    chunk = serde.tag_chunk_from_pb(msg)
                except ProtocolViolation as exc:
                    raise ProtocolViolation(f"{self._who(address)}: {exc}") from exc
                yield chunk
        except grpc.RpcError as exc:
            raise self._error(exc, address, timeout) from exc
        finally:
            call.cancel()

    # --- connection -------------------------------------------------------------------------

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = self._stub = self.address = None

    def _connect(self) -> tuple[Any, str]:
        """The stub and address of the first of the peer's addresses that answers, healthy,
        within connect_timeout_s; PeerUnavailable naming every address tried otherwise."""
        if self._stub is not None and self.address is not None:
            return self._stub, self.address
        name = self.peer.name
        if not self.peer.addresses:
            raise PeerUnavailable(
                f"peer {name!r} has no address to dial; pin it again from a card that lists one"
            )
        target_name = NodeID.parse(self.peer.node_id).dns_name
        credentials = channel_credentials(self._identity, self.peer.cert_pem.encode())
        problems = []
        for address in self.peer.addresses:
            channel = grpc.secure_channel(
                address,
                credentials,
                options=channel_options(self._max_message_bytes, target_name),
            )
            try:
                _probe(channel, self._settings.connect_timeout_s)
            except grpc.RpcError as exc:
                channel.close()
                error = self._error(exc, address, self._settings.connect_timeout_s)
                if not isinstance(error, PeerUnavailable):
                    raise error from exc
                reason = _reason(exc, self._settings.connect_timeout_s, connecting=True)
                problems.append(f"{address}: {reason}")
                continue
            except _NotServing as exc:
                channel.close()
                problems.append(f"{address}: {exc}")
                continue
            self._channel = channel
            self._stub = federation_pb2_grpc.FederationStub(channel)
            self.address = address
            return self._stub, address
        raise PeerUnavailable(f"peer {name!r} is unreachable: {'; '.join(problems)}")

    def _who(self, address: str) -> str:
        return f"peer {self.peer.name!r} ({address})"

    def _error(self, exc: grpc.RpcError, address: str, timeout: float) -> Exception:
        code = cast(grpc.Call, exc).code()
        return client_error(code, _reason(exc, timeout), self._who(address))


class _NotServing(Exception):
    """The server answered but is not serving (it is shutting down)."""


def _probe(channel: grpc.Channel, timeout: float) -> None:
    """One health check: proves the connection, the TLS identities, and that the server serves."""
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    if response.status != _SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        raise _NotServing(f"health is {status} (the node is shutting down?)")


def _reason(exc: grpc.RpcError, timeout: float, *, connecting: bool = False) -> str:
    """Why a call failed, for an operator: gRPC's details, with a hint for TLS failures."""
    call = cast(grpc.Call, exc)
    if call.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within {timeout:g} s"
    details = call.details() or "no details"
    return details + _hint(details, connecting=connecting)


def _hint(details: str, *, connecting: bool) -> str:
    """What a TLS failure most likely means, for an operator. A socket closed while
    connecting is a peer that refused our certificate; later it is just a lost peer."""
    if "CERTIFICATE_VERIFY_FAILED" in details or "Hostname Verification" in details:
        return " (the server there is not the pinned node: another certificate or node ID)"
    if connecting and ("Socket closed" in details or "Connection reset" in details):
        return " (if the peer is up, it may not have pinned this node)"
    return ""


# --- aif-node health ------------------------------------------------------------------------


def health_check(
    address: str, identity: Identity, *, service: str = "", timeout_s: float = 5.0
) -> str:
    """Ask the node's own server at `address` for its health; the status name ("SERVING",
    "NOT_SERVING", ...). The node dials itself with its own certificate, which its server
    admits to the health service only. A wildcard listen address is dialled on loopback.
    PeerUnavailable when nothing answers."""
    target = dial_address(address)
    options = channel_options(ServeLimits().max_message_bytes, identity.node_id.dns_name)
    credentials = channel_credentials(identity, identity.cert_pem)
    with grpc.secure_channel(target, credentials, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as exc:
            code = cast(grpc.Call, exc).code()
            reason = _reason(exc, timeout_s, connecting=True)
            raise client_error(code, reason, f"node at {target}") from exc
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


_WILDCARDS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}  # noqa: S104


def dial_address(listen: str) -> str:
    """The address to dial for a listen address: wildcard hosts become loopback."""
    match = re.fullmatch(r"(.*):(\d+)", listen)
    if match is None:
        return listen
    host, port = match.groups()
    return f"{_WILDCARDS.get(host, host)}:{port}"
