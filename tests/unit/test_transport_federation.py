"""The Federation service over real gRPC and mutual TLS: a whole match through PeerClient,
and each refusal with the status code (and node error) the spec gives it, audited."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from transport_nodes import TNode, make_node, raw_channel

from node.config import MatchSettings
from node.crypto import oprf
from node.errors import (
    BudgetExhausted,
    PeerError,
    PeerUnavailable,
    PermissionDenied,
    ProtocolViolation,
)
from node.identifiers import oprf_input
from node.psi.matcher import Matcher
from node.psi.types import EvalBatch
from node.sampledata import phone
from node.transport.client import PeerClient
from node.transport.pb import federation_pb2, federation_pb2_grpc
from node.transport.server import NodeServer

TIMEOUT = 20.0
LABELS = ("fraud_ring", "fake_complaint", "mule_account")


@dataclass
class Pair:
    a: TNode
    b: TNode


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    """alpha and bravo, each serving, each pinned by the other."""
    a, b = make_node(tmp_path, "alpha"), make_node(tmp_path, "bravo")
    servers: list[NodeServer] = [a.server(), b.server()]
    for server in servers:
        server.start()
    yield Pair(a, b)
    for server in servers:
        server.stop(0)


def phones(rng: random.Random, n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add(phone(rng))
    return sorted(out)


def batch(n: int, kind: str = "phone") -> EvalBatch:
    inputs = [oprf_input(kind, f"139{i:08d}") for i in range(n)]
    _, blinded = oprf.blind_batch(inputs)
    return EvalBatch(secrets.token_bytes(16), b"".join(blinded))


def evaluate_code(
    caller: TNode, server: TNode, request: federation_pb2.EvaluateRequest
) -> grpc.RpcError:
    """The error a raw Evaluate stream of one request ends with."""
    with raw_channel(
        caller.identity, server.address, server.identity.cert_pem, server.node_id
    ) as channel:
        stub = federation_pb2_grpc.FederationStub(channel)
        with pytest.raises(grpc.RpcError) as failed:
            list(stub.Evaluate(iter([request]), timeout=TIMEOUT))
    return failed.value


def request_of(
    b: EvalBatch, *, epoch: int = 1, kind: str = "phone"
) -> federation_pb2.EvaluateRequest:
    return federation_pb2.EvaluateRequest(
        epoch=epoch, kind=kind, batch_id=b.batch_id, blinded=b.blinded
    )


def test_match_over_grpc_finds_exactly_the_shared_records(pair: Pair) -> None:
    rng = random.Random(11)
    shared, only_a, only_b = phones(rng, 40), phones(rng, 150), phones(rng, 90)
    b_labels = {v: tuple(sorted(rng.sample(LABELS, rng.randrange(1, 3)))) for v in shared}
    pair.a.add("phone", shared + only_a, {})
    pair.b.add("phone", shared + only_b, b_labels)
    pair.a.pin(pair.b)
    pair.b.pin(pair.a, labels=("fraud_ring", "mule_account"))
    peer = pair.a.peer(pair.b)
    with pair.a.open_store() as store, PeerClient(peer, pair.a.identity) as remote:
        [summary] = Matcher(store, peer, remote, batch_elements=32).match(["phone"])
        matched = {c.value: p.labels for c in store.matches.collisions(1) for p in c.peers}
    shown = ("fraud_ring", "mule_account")
    expected = {v: tuple(x for x in b_labels[v] if x in shown) for v in shared}
    assert matched == expected
    assert (summary.evaluated, summary.matches) == (190, 40)
    served = [e for e in pair.b.audit() if e.action == "evaluate"]
    assert [(e.status, e.elements, e.results, e.kinds) for e in served] == [
        ("OK", 190, 190, ("phone",))
    ]
    assert "6 batch(es)" in served[0].detail


def test_over_budget_is_resource_exhausted_with_figures(pair: Pair) -> None:
    pair.b.pin(pair.a, budget=10)
    with PeerClient(pair.a.record_of(pair.b), pair.a.identity) as client:
        results = client.evaluate(1, "phone", iter([batch(8), batch(8)]))
        assert len(next(results).evaluated) == 8 * 32
        with pytest.raises(BudgetExhausted, match=r"budget exhausted.*8 evaluations, 2 of 10 left"):
            next(results)
    last = pair.b.audit()[-1]
    assert (last.action, last.status, last.elements, last.results) == (
        "evaluate",
        "RESOURCE_EXHAUSTED",
        16,
        8,
    )


def test_invalid_element_is_invalid_argument_and_not_charged(pair: Pair) -> None:
    pair.b.pin(pair.a, budget=100)
    good = batch(3)
    identity_element = bytes(32)
    bad = EvalBatch(secrets.token_bytes(16), good.blinded[:64] + identity_element)
    failed = evaluate_code(pair.a, pair.b, request_of(bad))
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "2" in failed.details()  # type: ignore[attr-defined]  # names the bad index
    with PeerClient(pair.a.record_of(pair.b), pair.a.identity) as client:
        assert client.info().budget_remaining == 100
        with pytest.raises(PeerError, match="INVALID_ARGUMENT"):
            list(client.evaluate(1, "phone", iter([bad])))
    assert pair.b.audit()[0].status == "INVALID_ARGUMENT"


def test_stale_epoch_is_failed_precondition(pair: Pair) -> None:
    pair.b.pin(pair.a)
    failed = evaluate_code(pair.a, pair.b, request_of(batch(2), epoch=7))
    assert failed.code() is grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert failed.details() == "epoch 7 is not current (current is 1)"  # type: ignore[attr-defined]
    with (
        PeerClient(pair.a.record_of(pair.b), pair.a.identity) as client,
        pytest.raises(ProtocolViolation, match="epoch changed"),
    ):
        list(client.evaluate(7, "phone", iter([batch(2)])))


def test_unknown_kind_is_not_found(pair: Pair) -> None:
    pair.b.pin(pair.a)
    failed = evaluate_code(pair.a, pair.b, request_of(batch(2), kind="shoe_size"))
    assert failed.code() is grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert "shoe_size" in failed.details()  # type: ignore[attr-defined]
    assert pair.b.audit()[-1].status == "NOT_FOUND"


def test_kind_outside_the_policy_is_permission_denied(pair: Pair) -> None:
    pair.b.pin(pair.a, kinds=("email",))
    failed = evaluate_code(pair.a, pair.b, request_of(batch(2)))
    assert failed.code() is grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    with PeerClient(pair.a.record_of(pair.b), pair.a.identity) as client:
        assert [k.kind for k in client.info().kinds] == ["email"]
        with pytest.raises(PermissionDenied, match="may not match kind 'phone'"):
            list(client.sync_tags("phone", 1, 0, ""))
    assert [e.status for e in pair.b.audit()] == ["PERMISSION_DENIED", "OK", "PERMISSION_DENIED"]


def test_sync_tags_streams_the_whole_set(pair: Pair) -> None:
    rng = random.Random(5)
    pair.b.add("phone", phones(rng, 25), {})
    pair.b.pin(pair.a)
    with PeerClient(pair.a.record_of(pair.b), pair.a.identity) as client:
        chunks = list(client.sync_tags("phone", 1, 0, ""))
    assert sum(c.added_count for c in chunks) == 25
    assert all(c.full and c.epoch == 1 for c in chunks)
    assert all(len(s) > 0 for c in chunks for s in c.added_sealed)
    last = pair.b.audit()[-1]
    assert (last.action, last.status, last.results) == ("sync_tags", "OK", 25)


def test_an_error_in_the_callers_batches_reaches_the_caller(pair: Pair) -> None:
    pair.b.pin(pair.a)

    def batches() -> Iterator[EvalBatch]:
        yield batch(2)
        raise RuntimeError("the store went away while blinding")

    with (
        PeerClient(pair.a.record_of(pair.b), pair.a.identity) as client,
        pytest.raises(RuntimeError, match="went away"),
    ):
        list(client.evaluate(1, "phone", batches()))


def test_deadline_exceeded_is_unreachable(pair: Pair) -> None:
    pair.b.pin(pair.a)
    hurried = MatchSettings(stream_timeout_s=0.3)
    with PeerClient(pair.a.record_of(pair.b), pair.a.identity, hurried) as client:

        def slow() -> Iterator[EvalBatch]:
            yield batch(1)
            time.sleep(1.0)
            yield batch(1)

        with pytest.raises(PeerUnavailable, match=r"unreachable: no answer within 0.3 s"):
            list(client.evaluate(1, "phone", slow()))
    deadline = time.monotonic() + TIMEOUT
    while not [e for e in pair.b.audit() if e.action == "evaluate"]:
        assert time.monotonic() < deadline, "the server never ended the session"
        time.sleep(0.05)
    [ended] = [e for e in pair.b.audit() if e.action == "evaluate"]
    # The server may see the caller's deadline as a cancel, or even as the end of the stream
    # (see FederationServicer._cut_short); what it evaluated is exact either way.
    assert (ended.elements, ended.results) == (1, 1)
