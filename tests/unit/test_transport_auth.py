"""Who may call a real NodeServer over mutual TLS: pinned peers only, checked on every call;
the node itself only for health; pinning changes take effect without a restart."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from transport_nodes import TNode, make_node, raw_channel

from node.errors import PeerUnavailable, PermissionDenied
from node.identity import generate_identity
from node.transport.client import PeerClient, health_check
from node.transport.pb import federation_pb2, federation_pb2_grpc
from node.transport.server import NodeServer

TIMEOUT = 10.0


@pytest.fixture
def alpha(tmp_path: Path) -> Iterator[TNode]:
    """A node serving on loopback."""
    node = make_node(tmp_path, "alpha")
    server = node.server()
    server.start()
    yield node
    server.stop(0)


@pytest.fixture
def bravo(tmp_path: Path) -> TNode:
    return make_node(tmp_path, "bravo")


def test_pinned_peer_is_served_and_audited(alpha: TNode, bravo: TNode) -> None:
    alpha.pin(bravo)
    with PeerClient(bravo.record_of(alpha), bravo.identity) as client:
        info = client.info()
    assert info.node_id == str(alpha.node_id)
    assert info.name == "alpha" and info.epoch == 1
    assert info.budget_total == info.budget_remaining == 1_000_000
    [entry] = alpha.audit()
    assert (entry.direction, entry.action, entry.status) == ("served", "node_info", "OK")
    assert (entry.peer_id, entry.peer_name) == (str(bravo.node_id), "bravo")


def test_unpinned_node_fails_the_handshake(alpha: TNode, bravo: TNode) -> None:
    with (
        PeerClient(bravo.record_of(alpha), bravo.identity) as client,
        pytest.raises(PeerUnavailable, match=rf"peer 'alpha' is unreachable: {alpha.address}"),
    ):
        client.info()
    assert alpha.audit() == [], "a refused handshake reaches no service"


def test_pinned_name_presenting_another_certificate_fails(alpha: TNode, bravo: TNode) -> None:
    alpha.pin(bravo)
    impostor = generate_identity("bravo")  # same name, another key
    with (
        PeerClient(bravo.record_of(alpha), impostor) as client,
        pytest.raises(PeerUnavailable, match="unreachable"),
    ):
        client.info()
    assert alpha.audit() == []


def test_client_refuses_a_server_that_is_not_the_pinned_certificate(
    alpha: TNode, bravo: TNode, tmp_path: Path
) -> None:
    alpha.pin(bravo)
    other = make_node(tmp_path, "other")
    wrong_cert = bravo.record_of(alpha, cert_pem=other.identity.cert_pem)
    with (
        PeerClient(wrong_cert, bravo.identity) as client,
        pytest.raises(PeerUnavailable, match="not the pinned node"),
    ):
        client.info()
    # The right certificate under another node's name fails the name check.
    wrong_name = bravo.record_of(alpha, node_id=other.node_id)
    with (
        PeerClient(wrong_name, bravo.identity) as client,
        pytest.raises(PeerUnavailable, match="not the pinned node"),
    ):
        client.info()
    assert alpha.audit() == []


def test_removed_peer_is_refused_on_its_open_connection(alpha: TNode, bravo: TNode) -> None:
    alpha.pin(bravo)
    with PeerClient(bravo.record_of(alpha), bravo.identity) as client:
        client.info()
        channel = client._channel
        alpha.unpin(bravo)  # as `aif-node peers remove` would, from another connection
        with pytest.raises(PermissionDenied, match=f"node ID {bravo.node_id} is not a pinned"):
            client.info()
        assert client._channel is channel, "the call went over the connection already open"
    refused = alpha.audit()[-1]
    assert (refused.action, refused.status) == ("node_info", "PERMISSION_DENIED")
    assert (refused.peer_id, refused.peer_name) == (str(bravo.node_id), None)
    assert "not a pinned peer" in refused.detail


def test_removed_peer_loses_every_service(alpha: TNode, bravo: TNode) -> None:
    alpha.pin(bravo)
    with raw_channel(bravo.identity, alpha.address, alpha.identity.cert_pem, alpha.node_id) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
        alpha.unpin(bravo)
        with pytest.raises(grpc.RpcError) as refused:
            health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert (alpha.audit()[-1].action, alpha.audit()[-1].status) == ("health", "PERMISSION_DENIED")


def test_peer_pinned_while_serving_is_admitted_without_restart(alpha: TNode, bravo: TNode) -> None:
    with PeerClient(bravo.record_of(alpha), bravo.identity) as client:
        with pytest.raises(PeerUnavailable):
            client.info()
        alpha.pin(bravo)
        assert client.info().name == "alpha"


def test_own_certificate_reaches_health_only(alpha: TNode) -> None:
    assert health_check(alpha.address, alpha.identity) == "SERVING"
    me = alpha.identity
    with raw_channel(me, alpha.address, me.cert_pem, alpha.node_id) as channel:
        stub = federation_pb2_grpc.FederationStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetNodeInfo(federation_pb2.GetNodeInfoRequest(), timeout=TIMEOUT)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "may call only the health service" in refused.value.details()  # type: ignore[attr-defined]
    [entry] = alpha.audit()
    assert (entry.action, entry.status, entry.peer_id) == (
        "node_info",
        "PERMISSION_DENIED",
        str(alpha.node_id),
    )


def test_health_check_of_a_node_that_is_not_running(bravo: TNode) -> None:
    server = bravo.server()
    address = server.address
    server.stop(0)  # the port is free again: nothing listens there
    with pytest.raises(PeerUnavailable, match=f"node at {address}: unreachable"):
        health_check(address, bravo.identity, timeout_s=2.0)


def _list_services(channel: grpc.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [response] = list(stub.ServerReflectionInfo(iter([request]), timeout=TIMEOUT))
    return sorted(s.name for s in response.list_services_response.service)


def test_reflection_lists_the_services_to_pinned_peers(alpha: TNode, bravo: TNode) -> None:
    alpha.pin(bravo)
    with raw_channel(bravo.identity, alpha.address, alpha.identity.cert_pem, alpha.node_id) as ch:
        assert _list_services(ch) == ["aif.federation.v1.Federation", "grpc.health.v1.Health"]
    me = alpha.identity
    with raw_channel(me, alpha.address, me.cert_pem, alpha.node_id) as ch:
        with pytest.raises(grpc.RpcError) as refused:
            _list_services(ch)
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]


def test_server_without_peers_still_starts(bravo: TNode) -> None:
    server: NodeServer = bravo.server()
    server.start()
    try:
        assert health_check(server.address, bravo.identity) == "SERVING"
    finally:
        server.stop(0)


def test_client_keeps_the_first_address_that_answers(alpha: TNode, bravo: TNode) -> None:
    alpha.pin(bravo)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"  # closed again: nothing listens there
    record = bravo.record_of(alpha, addresses=(dead, alpha.address))
    with PeerClient(record, bravo.identity) as client:
        assert client.info().name == "alpha"
        assert client.address == alpha.address
    nowhere = bravo.record_of(alpha, addresses=())
    with (
        PeerClient(nowhere, bravo.identity) as client,
        pytest.raises(PeerUnavailable, match="peer 'alpha' has no address to dial"),
    ):
        client.info()
