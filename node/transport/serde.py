"""All conversion between protobuf messages and the psi layer's values, in both directions.

Nothing else in the node touches a `_pb2` object. Conversions of what a peer sent check the
framing a message must have to mean anything (packed sizes, counts that agree) and raise
ProtocolViolation naming the sizes; what the values mean is the psi layer's to check.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import ProtocolViolation
from node.psi.types import TAG_SIZE, EvalBatch, EvalResult, KindInfoView, NodeInfoView, TagChunk
from node.transport.pb import federation_pb2 as pb

MAX_KIND_CHARS = 32
"""Kind names have at most 32 characters (`identifiers.check_kind_name`). A longer one is
refused as malformed without being repeated: it would otherwise be echoed, as long as a
message may be, into our audit log and the status we send back."""


@dataclass(frozen=True)
class EvaluateCall:
    """One message of an Evaluate stream: a batch, and the epoch and kind it is for."""

    epoch: int
    kind: str
    batch: EvalBatch


@dataclass(frozen=True)
class SyncTagsCall:
    kind: str
    epoch: int
    since_version: int
    policy_token: str


def node_info_request() -> pb.GetNodeInfoRequest:
    return pb.GetNodeInfoRequest()


def node_info_to_pb(info: NodeInfoView) -> pb.NodeInfo:
    return pb.NodeInfo(
        node_id=info.node_id,
        name=info.name,
        protocol_version=info.protocol_version,
        suite=info.suite,
        epoch=info.epoch,
        kinds=[
            pb.KindInfo(kind=k.kind, set_size=k.set_size, tag_version=k.tag_version)
            for k in info.kinds
        ],
        budget_total=info.budget_total,
        budget_remaining=info.budget_remaining,
        max_batch_elements=info.max_batch_elements,
    )


def node_info_from_pb(msg: pb.NodeInfo) -> NodeInfoView:
    return NodeInfoView(
        node_id=msg.node_id,
        name=msg.name,
        protocol_version=msg.protocol_version,
        suite=msg.suite,
        epoch=msg.epoch,
        kinds=tuple(
            KindInfoView(kind=k.kind, set_size=k.set_size, tag_version=k.tag_version)
            for k in msg.kinds
        ),
        budget_total=msg.budget_total,
        budget_remaining=msg.budget_remaining,
        max_batch_elements=msg.max_batch_elements,
    )


def evaluate_call_to_pb(epoch: int, kind: str, batch: EvalBatch) -> pb.EvaluateRequest:
    return pb.EvaluateRequest(
        epoch=epoch, kind=kind, batch_id=batch.batch_id, blinded=batch.blinded
    )


def evaluate_call_from_pb(msg: pb.EvaluateRequest) -> EvaluateCall:
    return EvaluateCall(
        epoch=msg.epoch,
        kind=_kind(msg.kind),
        batch=EvalBatch(batch_id=msg.batch_id, blinded=msg.blinded),
    )


def eval_result_to_pb(result: EvalResult) -> pb.EvaluateResponse:
    return pb.EvaluateResponse(
        batch_id=result.batch_id,
        evaluated=result.evaluated,
        budget_remaining=result.budget_remaining,
    )


def eval_result_from_pb(msg: pb.EvaluateResponse) -> EvalResult:
    return EvalResult(
        batch_id=msg.batch_id, evaluated=msg.evaluated, budget_remaining=msg.budget_remaining
    )


def sync_call_to_pb(
    kind: str, epoch: int, since_version: int, policy_token: str
) -> pb.SyncTagsRequest:
    return pb.SyncTagsRequest(
        kind=kind, epoch=epoch, since_version=since_version, policy_token=policy_token
    )


def sync_call_from_pb(msg: pb.SyncTagsRequest) -> SyncTagsCall:
    return SyncTagsCall(
        kind=_kind(msg.kind),
        epoch=msg.epoch,
        since_version=msg.since_version,
        policy_token=msg.policy_token,
    )


def tag_chunk_to_pb(chunk: TagChunk) -> pb.TagSetChunk:
    return pb.TagSetChunk(
        epoch=chunk.epoch,
        version=chunk.version,
        full=chunk.full,
        policy_token=chunk.policy_token,
        added_tags=chunk.added_tags,
        added_sealed=b"".join(chunk.added_sealed),
        sealed_sizes=[len(blob) for blob in chunk.added_sealed],
        removed_tags=chunk.removed_tags,
    )


def tag_chunk_from_pb(msg: pb.TagSetChunk) -> TagChunk:
    """A chunk as the peer sent it, once its packed fields are shown to be consistent."""
    for field, data in (("added_tags", msg.added_tags), ("removed_tags", msg.removed_tags)):
        if len(data) % TAG_SIZE:
            raise ProtocolViolation(
                f"tag chunk: {field} is {len(data)} bytes, not a multiple of {TAG_SIZE}"
            )
    added = len(msg.added_tags) // TAG_SIZE
    sizes = list(msg.sealed_sizes)
    if len(sizes) != added:
        raise ProtocolViolation(
            f"tag chunk: {added} added tag(s) but {len(sizes)} sealed label size(s)"
        )
    if sum(sizes) != len(msg.added_sealed):
        raise ProtocolViolation(
            f"tag chunk: sealed label sizes add up to {sum(sizes)} bytes, "
            f"but {len(msg.added_sealed)} bytes came"
        )
    sealed: list[bytes] = []
    offset = 0
    for size in sizes:
        sealed.append(msg.added_sealed[offset : offset + size])
        offset += size
    return TagChunk(
        epoch=msg.epoch,
        version=msg.version,
        full=msg.full,
        policy_token=msg.policy_token,
        added_tags=msg.added_tags,
        added_sealed=tuple(sealed),
        removed_tags=msg.removed_tags,
    )


def _kind(kind: str) -> str:
    if len(kind) > MAX_KIND_CHARS:
        raise ProtocolViolation(
            f"a kind name has at most {MAX_KIND_CHARS} characters, not {len(kind):,}"
        )
    return kind
