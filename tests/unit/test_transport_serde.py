"""Conversion between protobuf messages and psi values: lossless both ways, and a peer's
malformed tag chunk refused with the sizes named."""

from __future__ import annotations

import pytest

from node.errors import ProtocolViolation
from node.psi.types import EvalBatch, EvalResult, KindInfoView, NodeInfoView, TagChunk
from node.transport import serde
from node.transport.pb import federation_pb2 as pb


def wire(msg: object, cls: type) -> object:
    """The message as the other side parses it."""
    return cls.FromString(msg.SerializeToString())  # type: ignore[attr-defined]


def test_node_info_round_trip() -> None:
    info = NodeInfoView(
        node_id="AAAAAAA-BBBBBBB",
        name="bank",
        protocol_version=1,
        suite="ristretto255-SHA512",
        epoch=2**40,
        kinds=(KindInfoView("phone", 10, 3), KindInfoView("email", 0, 0)),
        budget_total=1_000_000,
        budget_remaining=999_000,
        max_batch_elements=16384,
    )
    assert serde.node_info_from_pb(wire(serde.node_info_to_pb(info), pb.NodeInfo)) == info


def test_evaluate_round_trip() -> None:
    batch = EvalBatch(b"\x01" * 16, bytes(range(64)))
    call = serde.evaluate_call_from_pb(
        wire(serde.evaluate_call_to_pb(4, "phone", batch), pb.EvaluateRequest)
    )
    assert call == serde.EvaluateCall(epoch=4, kind="phone", batch=batch)
    result = EvalResult(b"\x02" * 16, bytes(range(32)), 77)
    assert serde.eval_result_from_pb(
        wire(serde.eval_result_to_pb(result), pb.EvaluateResponse)
    ) == (result)


def test_sync_call_round_trip() -> None:
    msg = wire(serde.sync_call_to_pb("email", 3, 9, "12"), pb.SyncTagsRequest)
    assert serde.sync_call_from_pb(msg) == serde.SyncTagsCall("email", 3, 9, "12")


def chunk(sealed: tuple[bytes, ...]) -> TagChunk:
    return TagChunk(
        epoch=3,
        version=8,
        full=False,
        policy_token="5",
        added_tags=b"".join(bytes([i]) * 16 for i in range(len(sealed))),
        added_sealed=sealed,
        removed_tags=b"\xff" * 32,
    )


@pytest.mark.parametrize(
    "sealed", [(), (b"",), (b"a" * 40, b"", b"b" * 3), tuple(bytes([i]) * i for i in range(50))]
)
def test_tag_chunk_round_trip(sealed: tuple[bytes, ...]) -> None:
    original = chunk(sealed)
    assert serde.tag_chunk_from_pb(wire(serde.tag_chunk_to_pb(original), pb.TagSetChunk)) == (
        original
    )


def test_tag_chunk_with_a_partial_tag_is_refused() -> None:
    msg = serde.tag_chunk_to_pb(chunk((b"x",)))
    msg.removed_tags = b"\x00" * 17
    with pytest.raises(ProtocolViolation, match="removed_tags is 17 bytes, not a multiple of 16"):
        serde.tag_chunk_from_pb(msg)


def test_tag_chunk_with_sizes_for_other_tags_is_refused() -> None:
    msg = serde.tag_chunk_to_pb(chunk((b"x", b"yy")))
    msg.sealed_sizes.append(0)
    with pytest.raises(ProtocolViolation, match="2 added tag\\(s\\) but 3 sealed label size"):
        serde.tag_chunk_from_pb(msg)


def test_tag_chunk_whose_sizes_do_not_add_up_is_refused() -> None:
    msg = serde.tag_chunk_to_pb(chunk((b"x", b"yy")))
    msg.added_sealed += b"z"
    with pytest.raises(ProtocolViolation, match="add up to 3 bytes, but 4 bytes came"):
        serde.tag_chunk_from_pb(msg)
