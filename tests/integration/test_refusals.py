"""Refusals against a real `aif-node serve` process: each gets the right gRPC status, leaves
an audit entry, and costs no evaluation (the peer's budget use stays where it was)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.crypto import group, oprf
from node.datadir import DataDir
from node.identifiers import oprf_input
from node.identity import Identity, NodeID
from node.transport.credentials import channel_credentials
from node.transport.grpc_options import channel_options
from node.transport.pb import federation_pb2 as pb
from node.transport.pb import federation_pb2_grpc as pb_grpc

from .conftest import Member

DEADLINE = 10


def _identity(member: Member) -> Identity:
    return DataDir(member.data_dir).identity()


def _stub(caller: Identity, target: Member) -> tuple[grpc.Channel, Any]:
    server = _identity(target)
    channel = grpc.secure_channel(
        f"127.0.0.1:{target.port}",
        channel_credentials(caller, server.cert_pem),
        options=channel_options(8 * 1024 * 1024, server.node_id.dns_name),
    )
    return channel, pb_grpc.FederationStub(channel)


def _evaluate(stub: Any, epoch: int, kind: str, blinded: bytes) -> list[Any]:
    request = pb.EvaluateRequest(epoch=epoch, kind=kind, batch_id=os.urandom(16), blinded=blinded)
    return list(stub.Evaluate(iter([request]), timeout=DEADLINE))


def _used(server: Member, peer: str) -> int:
    status = server.json("status")
    return int(next(p for p in status["peers"] if p["name"] == peer)["used_this_epoch"])


def _last_refusal(server: Member) -> dict[str, Any]:
    return next(e for e in server.audit() if e["status"] != "OK")


@pytest.fixture
def pair(members: Any) -> Iterator[tuple[Member, Member]]:
    bank, lender = members("bank", "lender")
    csv = bank.root / "phones.csv"
    csv.write_text("phone\n13800138000\n13900139000\n")
    bank.cli("import", str(csv), "--kind", "phone")
    bank.start()
    yield bank, lender


def _blinded(n: int) -> bytes:
    return b"".join(oprf.blind(oprf_input("phone", f"+86138{i:08d}"))[1] for i in range(n))


def test_unpinned_node_is_refused_at_the_handshake(pair: tuple[Member, Member]) -> None:
    bank, lender = pair
    channel, stub = _stub(_identity(lender), bank)
    with channel, pytest.raises(grpc.RpcError) as refused:
        stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=DEADLINE)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    # The initiator's own view: a clear failed-peer line, exit 1, an audit entry.
    lender.pin(bank)
    done = lender.cli("match", check=False)
    assert done.returncode == 1
    assert "peer 'bank'" in done.stderr
    entry = lender.audit()[0]
    assert (entry["action"], entry["direction"], entry["peer"]) == ("match", "initiated", "bank")
    assert entry["status"] != "OK"


def test_pinned_name_with_another_certificate_is_refused(
    pair: tuple[Member, Member], tmp_path: Path
) -> None:
    bank, lender = pair
    bank.pin(lender)
    # An impostor: same name, fresh key. The bank only knows the real lender's certificate.
    impostor = Member("lender", tmp_path / "elsewhere")
    impostor.init()
    channel, stub = _stub(_identity(impostor), bank)
    with channel, pytest.raises(grpc.RpcError) as refused:
        stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=DEADLINE)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert _used(bank, "lender") == 0

    # Dialling side: the lender pinned the bank, but the bank's data dir now holds a new key.
    lender.pin(bank)
    bank.stop()
    shutil.rmtree(bank.data_dir)
    bank.init()
    bank.start()
    done = lender.cli("match", check=False)
    assert done.returncode == 1
    assert "peer 'bank'" in done.stderr
    assert lender.audit()[0]["status"] != "OK"


def test_removed_peer_is_refused_on_its_open_connection(pair: tuple[Member, Member]) -> None:
    bank, lender = pair
    bank.pin(lender)
    channel, stub = _stub(_identity(lender), bank)
    with channel:
        info = stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=DEADLINE)
        assert info.name == "bank"
        bank.cli("peers", "remove", "lender")
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=DEADLINE)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "not a pinned peer" in (refused.value.details() or "")
    entry = _last_refusal(bank)
    assert (entry["status"], entry["direction"]) == ("PERMISSION_DENIED", "served")


def test_kind_not_allowed_is_refused(pair: tuple[Member, Member]) -> None:
    bank, lender = pair
    bank.pin(lender, "--kinds", "id_card")
    channel, stub = _stub(_identity(lender), bank)
    with channel:
        info = stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=DEADLINE)
        assert [k.kind for k in info.kinds] == ["id_card"]  # phone is not offered
        with pytest.raises(grpc.RpcError) as refused:
            _evaluate(stub, info.epoch, "phone", _blinded(2))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "phone" in (refused.value.details() or "")
    assert _last_refusal(bank)["status"] == "PERMISSION_DENIED"
    assert _used(bank, "lender") == 0


def test_over_budget_is_refused_with_figures(pair: tuple[Member, Member]) -> None:
    bank, lender = pair
    bank.pin(lender, "--budget", "3")
    channel, stub = _stub(_identity(lender), bank)
    with channel:
        epoch = stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=DEADLINE).epoch
        assert len(_evaluate(stub, epoch, "phone", _blinded(2))) == 1
        with pytest.raises(grpc.RpcError) as refused:
            _evaluate(stub, epoch, "phone", _blinded(2))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = refused.value.details() or ""
    assert "budget" in details and "2" in details and "1 of 3" in details
    assert _last_refusal(bank)["status"] == "RESOURCE_EXHAUSTED"
    assert _used(bank, "lender") == 2
    # Through the CLI the lender gets a clear line and exit 1.
    csv = lender.root / "lender-phones.csv"
    csv.write_text("phone\n13800138000\n13700137000\n")
    lender.cli("import", str(csv), "--kind", "phone")
    lender.pin(bank)
    done = lender.cli("match", check=False)
    assert done.returncode == 1
    assert "budget" in done.stderr
    # Both sides of the budget show in status: the bank's count, the lender's last view of it.
    grant = lender.json("status")["peers"][0]["grant"]
    assert (grant["budget_total"], grant["budget_remaining"]) == (3, 1)
    assert _used(bank, "lender") == 2


@pytest.mark.parametrize(
    ("blinded", "why"),
    [
        (b"\x00" * 32, "identity"),
        (b"\x01" * 31, "length"),
        (b"\xff" * 32, "non-canonical"),
        (b"", "empty"),
    ],
)
def test_malformed_elements_are_refused_before_any_evaluation(
    pair: tuple[Member, Member], blinded: bytes, why: str
) -> None:
    bank, lender = pair
    bank.pin(lender)
    good = _blinded(1)
    channel, stub = _stub(_identity(lender), bank)
    with channel:
        epoch = stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=DEADLINE).epoch
        with pytest.raises(grpc.RpcError) as refused:
            _evaluate(stub, epoch, "phone", good + blinded if blinded else b"")
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, why
    assert _last_refusal(bank)["status"] == "INVALID_ARGUMENT"
    assert _used(bank, "lender") == 0  # the good element in the same batch was not charged


def test_invalid_encodings_never_reach_a_multiplication() -> None:
    """The same checks, in-process: the group's multiplication counter does not move."""
    key = oprf.derive_key_pair(b"\x01" * 32, b"t")[0]
    good = oprf.blind_batch([b"x"])[1]
    before = group.scalar_mult_count()
    for bad in (b"\x00" * 32, b"\xff" * 32, b"\x01" * 31):
        with pytest.raises(ValueError):
            oprf.blind_evaluate_batch(key, [*good, bad])
    assert group.scalar_mult_count() == before


def test_node_id_in_card_is_what_tls_checks(pair: tuple[Member, Member]) -> None:
    bank, _lender = pair
    assert NodeID.parse(bank.json("status")["node_id"]) == _identity(bank).node_id
