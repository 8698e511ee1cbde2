"""The NodeServer's lifecycle and limits: binding, graceful stop with health, the concurrency
bound, and one log line per session."""

from __future__ import annotations

import logging
import queue
import re
import secrets
import socket
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from transport_nodes import TNode, make_node, raw_channel

from node.config import ServeLimits
from node.crypto import oprf
from node.errors import ConfigError, PeerUnavailable, StoreError
from node.identifiers import KindRegistry, oprf_input
from node.store import Store
from node.transport.client import PeerClient, health_check
from node.transport.pb import federation_pb2, federation_pb2_grpc
from node.transport.server import NodeServer

TIMEOUT = 20.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def alpha(tmp_path: Path) -> TNode:
    return make_node(tmp_path, "alpha")


@pytest.fixture
def bravo(tmp_path: Path) -> TNode:
    return make_node(tmp_path, "bravo")


def evaluate_request(n: int, epoch: int = 1) -> federation_pb2.EvaluateRequest:
    inputs = [oprf_input("phone", f"138{i:08d}") for i in range(n)]
    _, blinded = oprf.blind_batch(inputs)
    return federation_pb2.EvaluateRequest(
        epoch=epoch, kind="phone", batch_id=secrets.token_bytes(16), blinded=b"".join(blinded)
    )


def test_port_taken_by_another_node_is_a_config_error(alpha: TNode) -> None:
    first = alpha.server()
    first.start()
    try:
        message = f"cannot listen on {re.escape(first.address)}: address already in use"
        with pytest.raises(ConfigError, match=message):
            alpha.server(listen=first.address)
    finally:
        first.stop(0)


def test_port_taken_by_another_program_is_a_config_error(alpha: TNode) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ConfigError, match=f"{address}: address already in use"):
            alpha.server(listen=address)


def test_stop_goes_not_serving_and_lets_a_stream_in_flight_finish(
    alpha: TNode, bravo: TNode
) -> None:
    server = alpha.server()
    server.start()
    alpha.pin(bravo)
    channel = raw_channel(bravo.identity, alpha.address, alpha.identity.cert_pem, alpha.node_id)
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(), timeout=TIMEOUT
    )
    assert next(watch).status == SERVING
    outbox: queue.Queue[federation_pb2.EvaluateRequest | None] = queue.Queue()
    stream = federation_pb2_grpc.FederationStub(channel).Evaluate(
        iter(outbox.get, None), timeout=TIMEOUT
    )
    outbox.put(evaluate_request(5))
    assert len(next(stream).evaluated) == 5 * 32

    stopper = threading.Thread(target=server.stop, args=(TIMEOUT,))
    stopper.start()
    assert next(watch).status == NOT_SERVING
    watch.cancel()
    # Wait until the server refuses new connections: it is draining now, not merely unhealthy.
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            health_check(alpha.address, alpha.identity, timeout_s=1.0)
        except PeerUnavailable:
            break
        assert time.monotonic() < deadline, "the server kept accepting new calls"
        time.sleep(0.05)
    outbox.put(evaluate_request(7))
    assert len(next(stream).evaluated) == 7 * 32
    outbox.put(None)
    assert list(stream) == []
    assert stream.code() is grpc.StatusCode.OK
    stopper.join(TIMEOUT)
    assert not stopper.is_alive()
    channel.close()
    evaluate = [e for e in alpha.audit() if e.action == "evaluate"]
    assert [(e.status, e.elements, e.results) for e in evaluate] == [("OK", 12, 12)]


def test_calls_beyond_the_concurrency_bound_are_refused(
    alpha: TNode, bravo: TNode, tmp_path: Path
) -> None:
    server = alpha.server(ServeLimits(max_concurrent_rpcs=3, max_calls_per_peer=2))
    server.start()
    carol = make_node(tmp_path, "carol")
    alpha.pin(bravo)
    alpha.pin(carol)
    request = health_pb2.HealthCheckRequest()
    busy = raw_channel(bravo.identity, alpha.address, alpha.identity.cert_pem, alpha.node_id)
    other = raw_channel(carol.identity, alpha.address, alpha.identity.cert_pem, alpha.node_id)
    outboxes: list[queue.Queue[federation_pb2.EvaluateRequest | None]] = []
    try:
        # Three evaluation streams (two of bravo's, its most, and one of carol's), each
        # answered once and then waiting for its next batch: each holds a server thread,
        # which is what the bound counts.
        streams = []
        for channel in (busy, busy, other):
            outbox: queue.Queue[federation_pb2.EvaluateRequest | None] = queue.Queue()
            stream = federation_pb2_grpc.FederationStub(channel).Evaluate(
                iter(outbox.get, None), timeout=TIMEOUT
            )
            outbox.put(evaluate_request(1))
            next(stream)
            outboxes.append(outbox)
            streams.append(stream)
        with pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(other).Check(request, timeout=TIMEOUT)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        with (
            PeerClient(carol.record_of(alpha), carol.identity) as client,
            pytest.raises(PeerUnavailable, match="Concurrent RPC limit exceeded"),
        ):
            client.info()

        outboxes[0].put(None)
        assert list(streams[0]) == []
        deadline = time.monotonic() + TIMEOUT
        while True:  # the slot is free once the server thread has finished the call
            try:
                health_pb2_grpc.HealthStub(other).Check(request, timeout=TIMEOUT)
                break
            except grpc.RpcError as exc:
                assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        for box in outboxes:
            box.put(None)
        busy.close()
        other.close()
        server.stop(0)


def test_one_peer_cannot_take_every_slot(alpha: TNode, bravo: TNode, tmp_path: Path) -> None:
    server = alpha.server(ServeLimits(max_concurrent_rpcs=4, max_calls_per_peer=2))
    server.start()
    carol = make_node(tmp_path, "carol")
    alpha.pin(bravo)
    alpha.pin(carol)
    busy = raw_channel(bravo.identity, alpha.address, alpha.identity.cert_pem, alpha.node_id)
    outboxes: list[queue.Queue[federation_pb2.EvaluateRequest | None]] = []
    streams = []  # kept referenced: a call the client drops is cancelled
    try:
        for _ in range(2):
            outbox: queue.Queue[federation_pb2.EvaluateRequest | None] = queue.Queue()
            stream = federation_pb2_grpc.FederationStub(busy).Evaluate(
                iter(outbox.get, None), timeout=TIMEOUT
            )
            outbox.put(evaluate_request(1))
            next(stream)
            outboxes.append(outbox)
            streams.append(stream)
        with pytest.raises(grpc.RpcError) as refused:
            federation_pb2_grpc.FederationStub(busy).GetNodeInfo(
                federation_pb2.GetNodeInfoRequest(), timeout=TIMEOUT
            )
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        assert "too many calls in progress" in refused.value.details()  # type: ignore[attr-defined]
        with (
            PeerClient(bravo.record_of(alpha), bravo.identity) as client,
            pytest.raises(PeerUnavailable, match="busy: too many calls"),
        ):
            client.info()
        # Another peer is served all the while.
        with PeerClient(carol.record_of(alpha), carol.identity) as client:
            assert client.info().name == "alpha"
        with alpha.open_store() as store:
            refusals = [e for e in store.audit.iterate() if e.status == "RESOURCE_EXHAUSTED"]
        assert refusals and refusals[0].peer_name == "bravo"
    finally:
        for box in outboxes:
            box.put(None)
        busy.close()
        server.stop(0)


def test_one_log_line_per_session_without_values(
    alpha: TNode, bravo: TNode, caplog: pytest.LogCaptureFixture
) -> None:
    server = alpha.server()
    server.start()
    alpha.pin(bravo)
    caplog.set_level(logging.INFO, logger="node.transport")
    try:
        request = evaluate_request(3)
        with raw_channel(
            bravo.identity, alpha.address, alpha.identity.cert_pem, alpha.node_id
        ) as channel:
            stub = federation_pb2_grpc.FederationStub(channel)
            stub.GetNodeInfo(federation_pb2.GetNodeInfoRequest(), timeout=TIMEOUT)
            list(stub.Evaluate(iter([request, evaluate_request(2)]), timeout=TIMEOUT))
    finally:
        server.stop(0)
    sessions = [r.getMessage() for r in caplog.records if r.name == "node.transport.servicer"]
    assert len(sessions) == 2
    assert re.fullmatch(
        r"peer 'bravo' node_info: OK, 0 element\(s\), 0 result\(s\), [\d.]+ s", sessions[0]
    )
    assert re.fullmatch(
        r"peer 'bravo' evaluate: OK, 5 element\(s\), 5 result\(s\), [\d.]+ s", sessions[1]
    )
    everything = " ".join(r.getMessage() for r in caplog.records)
    assert request.blinded.hex()[:16] not in everything


def test_a_broken_store_is_internal_and_tells_the_peer_nothing(
    alpha: TNode, bravo: TNode, tmp_path: Path
) -> None:
    alpha.pin(bravo)
    broken = threading.Event()

    def open_store() -> Store:
        if broken.is_set():
            raise StoreError(f"{tmp_path}/secret/store.db: disk I/O error")
        return alpha.open_store()

    server = NodeServer(
        identity=alpha.identity,
        name="alpha",
        listen="127.0.0.1:0",
        open_store=open_store,
        keyring=alpha.keyring,
        kinds=KindRegistry(),
        audit_key=alpha.audit_key,
    )
    server.start()
    try:
        with raw_channel(
            bravo.identity, server.address, alpha.identity.cert_pem, alpha.node_id
        ) as channel:
            stub = federation_pb2_grpc.FederationStub(channel)
            stub.GetNodeInfo(federation_pb2.GetNodeInfoRequest(), timeout=TIMEOUT)
            broken.set()
            with pytest.raises(grpc.RpcError) as failed:
                stub.GetNodeInfo(federation_pb2.GetNodeInfoRequest(), timeout=TIMEOUT)
    finally:
        server.stop(0)
    assert failed.value.code() is grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]
    assert "secret" not in failed.value.details()  # type: ignore[attr-defined]
    assert "internal error" in failed.value.details()  # type: ignore[attr-defined]


def test_a_stream_past_the_servers_limit_is_ended_and_audited(alpha: TNode, bravo: TNode) -> None:
    server = alpha.server(ServeLimits(stream_timeout_s=0.5))
    server.start()
    alpha.pin(bravo)
    outbox: queue.Queue[federation_pb2.EvaluateRequest | None] = queue.Queue()
    try:
        with raw_channel(
            bravo.identity, alpha.address, alpha.identity.cert_pem, alpha.node_id
        ) as channel:
            stream = federation_pb2_grpc.FederationStub(channel).Evaluate(
                iter(outbox.get, None), timeout=TIMEOUT
            )
            outbox.put(evaluate_request(2))
            next(stream)
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as ended:
                next(stream)  # the peer sends nothing more; the server ends the stream
            waited = time.monotonic() - started
    finally:
        outbox.put(None)
        server.stop(0)
    assert ended.value.code() is grpc.StatusCode.CANCELLED  # type: ignore[attr-defined]
    assert waited < TIMEOUT / 2
    [entry] = [e for e in alpha.audit() if e.action == "evaluate"]
    assert (entry.status, entry.elements) == ("DEADLINE_EXCEEDED", 2)
    assert "0.5 s" in entry.detail


def test_a_stream_whose_peer_goes_quiet_is_ended_and_audited(alpha: TNode, bravo: TNode) -> None:
    server = alpha.server(ServeLimits(stream_idle_timeout_s=0.3))
    server.start()
    alpha.pin(bravo)
    outbox: queue.Queue[federation_pb2.EvaluateRequest | None] = queue.Queue()
    try:
        with raw_channel(
            bravo.identity, alpha.address, alpha.identity.cert_pem, alpha.node_id
        ) as channel:
            stream = federation_pb2_grpc.FederationStub(channel).Evaluate(
                iter(outbox.get, None), timeout=TIMEOUT
            )
            for _ in range(3):  # batches that come in time keep the stream alive
                outbox.put(evaluate_request(1))
                next(stream)
                time.sleep(0.15)
            with pytest.raises(grpc.RpcError) as ended:
                next(stream)  # then nothing more comes
    finally:
        outbox.put(None)
        server.stop(0)
    assert ended.value.code() is grpc.StatusCode.CANCELLED  # type: ignore[attr-defined]
    [entry] = [e for e in alpha.audit() if e.action == "evaluate"]
    assert (entry.status, entry.elements) == ("DEADLINE_EXCEEDED", 3)
    assert entry.detail == "no batch for 0.3 s"
