"""A pinned peer that misbehaves on purpose, against a real server over mutual TLS.

Every refusal gets its precise status code, is audited on the server, happens before any
scalar multiplication and any budget charge, and is the same when the call is repeated.
After each case an honest member matches against the same server and must find exactly
the intersection (the arena fixture's `honest_round`).
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Callable, Iterator

import grpc
import pytest

from node.crypto import group
from node.transport.pb import federation_pb2 as pb
from tests.fuzz.reference import is_valid_element
from tests.unit.vectors import rfc9496_invalid_encodings

from .conftest import (
    EPOCH,
    LIMITS,
    MISER_BUDGET,
    Arena,
    Hostile,
    Outcome,
    blinded,
    request,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
MAX = LIMITS.max_batch_elements


@pytest.fixture(autouse=True)
def honest_peer_still_served(arena: Arena) -> Iterator[None]:
    """Whatever a case did, the server then serves an honest member correctly."""
    yield
    arena.honest_round()


def good(arena: Arena, n: int) -> bytes:
    """n fresh, honestly blinded phone elements (made before anything is measured)."""
    return blinded(arena.fresh_phones(n))


def refused(
    arena: Arena,
    peer: Hostile,
    call: Callable[[], Outcome],
    code: grpc.StatusCode,
    details: str,
    *,
    elements: int = 0,
    action: str = "evaluate",
) -> None:
    """`call` is refused with `code` and details matching `details`, twice in a row, each
    time audited, with no multiplication and no budget charged."""
    name = peer.node.name
    used = arena.used(peer)
    audited = len(arena.audit(name))
    mults = group.scalar_mult_count()
    first = call()
    assert (first.code, first.responses) == (code, ())
    assert re.fullmatch(details, first.details), first.details
    [entry] = arena.new_audit(name, audited)
    assert (entry.action, entry.status, entry.direction) == (action, code.name, "served")
    assert (entry.elements, entry.results) == (elements, 0)
    assert entry.detail == first.details
    again = call()
    assert (again.code, again.details) == (first.code, first.details), "the refusal is stable"
    arena.new_audit(name, audited, 2)
    assert group.scalar_mult_count() == mults, "an invalid request reached a multiplication"
    assert arena.used(peer) == used, "a refused request was charged"


# --- malformed batches ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 31, 33, 63, 65, 32 * 3 + 1, 32 * MAX + 31])
def test_elements_of_a_wrong_length(arena: Arena, size: int) -> None:
    # Whole elements first where they fit: only the ragged end is wrong.
    packed = (good(arena, size // 32) + secrets.token_bytes(32))[:size]
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.evaluate(request(packed)),
        INVALID,
        f"blinded elements are {size} bytes, not a multiple of 32",
        elements=size // 32,
    )


@pytest.mark.parametrize("n", [0, MAX + 1, 4 * MAX])
def test_batch_sizes_outside_the_limit(arena: Arena, n: int) -> None:
    packed = good(arena, n)
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.evaluate(request(packed)),
        INVALID,
        f"a batch must hold 1 to {MAX} elements, not {n}",
        elements=n,
    )


@pytest.mark.parametrize("at", [0, 2, MAX - 1])
def test_the_identity_element(arena: Arena, at: int) -> None:
    packed = good(arena, at) + group.IDENTITY + good(arena, min(1, MAX - 1 - at))
    n = len(packed) // 32
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.evaluate(request(packed)),
        INVALID,
        f"element {at}: the identity element is not allowed",
        elements=n,
    )


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(v.encoding, id=f"{v.reason}-{i}")
        for i, v in enumerate(rfc9496_invalid_encodings())
    ],
)
def test_rfc9496_invalid_encodings(arena: Arena, bad: bytes) -> None:
    packed = good(arena, 1) + bad + good(arena, 1)
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.evaluate(request(packed)),
        INVALID,
        "element 1: not a canonical ristretto255 encoding",
        elements=3,
    )


def test_a_valid_element_with_bit_255_set(arena: Arena) -> None:
    """libsodium 1.0.18 ignores bit 255: the check is ours, and holds over the wire."""
    element = good(arena, 1)
    twin = element[:31] + bytes([element[31] | 0x80])
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.evaluate(request(twin)),
        INVALID,
        "element 0: not a canonical ristretto255 encoding",
        elements=1,
    )


def test_random_bytes_are_evaluated_exactly_when_they_encode_an_element(arena: Arena) -> None:
    """Most random 32-byte strings are not encodings; the server must agree, one by one, with
    an independent RFC 9496 decoder: refuse the others before any work, evaluate the valid."""
    rng = random.Random(9496)
    strings = [rng.randbytes(32) for _ in range(48)]
    verdicts = [is_valid_element(s) for s in strings]
    assert 0 < sum(verdicts) < len(strings), "the seed gives both kinds"
    peer = arena.mallory
    for string, valid in zip(strings, verdicts, strict=True):
        used, mults = arena.used(peer), group.scalar_mult_count()
        outcome = peer.evaluate(request(string))
        if valid:
            assert outcome.code is grpc.StatusCode.OK
            [answer] = outcome.responses
            assert len(answer.evaluated) == 32
            assert arena.used(peer) == used + 1
            assert group.scalar_mult_count() == mults + 1
        else:
            assert outcome.code is INVALID, outcome
            assert outcome.details == "element 0: not a canonical ristretto255 encoding"
            assert (arena.used(peer), group.scalar_mult_count()) == (used, mults)


@pytest.mark.parametrize("size", [0, 1, 15, 17, 64])
def test_batch_ids_of_a_wrong_size(arena: Arena, size: int) -> None:
    packed = good(arena, 2)
    batch_id = secrets.token_bytes(size)
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.evaluate(request(packed, batch_id=batch_id)),
        INVALID,
        f"batch_id must be 16 bytes, got {size}",
        elements=2,
    )


# --- epochs, kinds, policy -----------------------------------------------------------------


@pytest.mark.parametrize("epoch", [0, EPOCH + 1, 2**63, 2**64 - 1])
def test_epochs_that_are_not_current(arena: Arena, epoch: int) -> None:
    packed = good(arena, 2)
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.evaluate(request(packed, epoch=epoch)),
        grpc.StatusCode.FAILED_PRECONDITION,
        f"epoch {epoch} is not current \\(current is {EPOCH}\\)",
        elements=2,
    )


@pytest.mark.parametrize("kind", ["", "shoe_size", "PHONE", "phone ", "电话", "\x00", "k" * 32])
def test_kinds_this_node_does_not_know(arena: Arena, kind: str) -> None:
    packed = good(arena, 1)
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.evaluate(request(packed, kind=kind)),
        grpc.StatusCode.NOT_FOUND,
        re.escape(f"unknown kind {kind!r}"),
        elements=1,
    )
    # The audit entry names the kind asked for: at most 32 characters of the peer's.
    assert arena.audit("mallory")[0].kinds == (kind,)


@pytest.mark.parametrize("length", [33, 5_000, 60_000])
def test_overlong_kind_names_are_not_echoed(arena: Arena, length: int) -> None:
    """A kind name is at most 32 characters; a longer one is refused as malformed and never
    copied into the audit log or the status (a 60 kB status would not even reach the peer)."""
    packed = good(arena, 1)
    kind = "k" * length
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.evaluate(request(packed, kind=kind)),
        INVALID,
        f"a kind name has at most 32 characters, not {length:,}",
    )
    assert arena.audit("mallory")[0].kinds == ()


@pytest.mark.parametrize("kind", ["email", "id_card", "shoe_size"])
def test_kinds_outside_the_peers_policy(arena: Arena, kind: str) -> None:
    """miser may match phones only: every other kind, known here or not, is denied."""
    packed = good(arena, 1)
    refused(
        arena,
        arena.miser,
        lambda: arena.miser.evaluate(request(packed, kind=kind)),
        grpc.StatusCode.PERMISSION_DENIED,
        re.escape(f"peer 'miser' may not match kind {kind!r}"),
        elements=1,
    )


def sync(peer: Hostile, kind: str, epoch: int = EPOCH, since: int = 0, token: str = "") -> Outcome:
    message = pb.SyncTagsRequest(kind=kind, epoch=epoch, since_version=since, policy_token=token)
    return peer.raw_unary("SyncTags", message.SerializeToString(), streaming=True)


@pytest.mark.parametrize(
    ("peer", "kind", "code", "details"),
    [
        ("mallory", "shoe_size", grpc.StatusCode.NOT_FOUND, "unknown kind 'shoe_size'"),
        ("mallory", "x" * 40, INVALID, "a kind name has at most 32 characters, not 40"),
        (
            "miser",
            "email",
            grpc.StatusCode.PERMISSION_DENIED,
            "peer 'miser' may not match kind 'email'",
        ),
    ],
)
def test_tag_sets_refused(
    arena: Arena, peer: str, kind: str, code: grpc.StatusCode, details: str
) -> None:
    caller = arena.mallory if peer == "mallory" else arena.miser
    refused(arena, caller, lambda: sync(caller, kind), code, re.escape(details), action="sync_tags")


@pytest.mark.parametrize(
    ("epoch", "since", "token"),
    [(0, 0, ""), (2**64 - 1, 5, "0"), (EPOCH, 2**64 - 1, "0"), (EPOCH, 1, "x" * 10_000)],
)
def test_bogus_sync_positions_get_the_whole_set(
    arena: Arena, epoch: int, since: int, token: str
) -> None:
    """An epoch, version or policy token the server never issued is not an error: the peer
    gets the whole current set, as on a first sync."""
    outcome = sync(arena.mallory, "phone", epoch, since, token)
    assert outcome.code is grpc.StatusCode.OK
    chunks = [pb.TagSetChunk.FromString(raw) for raw in outcome.responses]
    assert chunks and all(c.full and c.epoch == EPOCH for c in chunks)
    assert sum(len(c.added_tags) // 16 for c in chunks) == len(arena.alpha_values)
    entry = arena.audit("mallory")[0]
    assert (entry.action, entry.status, entry.results) == (
        "sync_tags",
        "OK",
        len(arena.alpha_values),
    )


# --- messages that do not parse, or are too large -----------------------------------------


UNPARSEABLE = [
    pytest.param(b"\xff\xff\xff", id="garbage"),
    pytest.param(b"\x08", id="truncated-varint"),
    pytest.param(b"\x22\x80\x80\x04" + b"\x01" * 64, id="length-past-the-end"),
    pytest.param(b"\x0f", id="bad-wire-type"),
    pytest.param(b"\x0b", id="open-group"),
    pytest.param(b"\x00", id="field-zero"),
]
PARSE_ERROR = "malformed request: Error parsing message with type 'aif.federation.v1.{}'"


def does_not_parse(message_type: type, data: bytes) -> bool:
    try:
        message_type.FromString(data)  # type: ignore[attr-defined]
    except Exception:
        return True
    return False


@pytest.mark.parametrize("message", UNPARSEABLE)
def test_messages_that_do_not_parse(arena: Arena, message: bytes) -> None:
    """Refused as malformed (INVALID_ARGUMENT, audited), not as our failure (gRPC's INTERNAL)."""
    calls: list[tuple[type, str, Callable[[], Outcome]]] = [
        (pb.EvaluateRequest, "evaluate", lambda: arena.mallory.raw_stream("Evaluate", message)),
        (
            pb.SyncTagsRequest,
            "sync_tags",
            lambda: arena.mallory.raw_unary("SyncTags", message, streaming=True),
        ),
        (
            pb.GetNodeInfoRequest,
            "node_info",
            lambda: arena.mallory.raw_unary("GetNodeInfo", message),
        ),
    ]
    for message_type, action, call in calls:
        assert does_not_parse(message_type, message)
        details = re.escape(PARSE_ERROR.format(message_type.__name__))
        refused(arena, arena.mallory, call, INVALID, details, action=action)


def test_a_kind_that_is_not_utf8(arena: Arena) -> None:
    evaluate = b"\x12\x02\xff\xfe"  # field 2 (kind), two bytes that are not UTF-8
    sync_tags = b"\x0a\x02\xff\xfe"  # field 1 (kind)
    assert does_not_parse(pb.EvaluateRequest, evaluate)
    assert does_not_parse(pb.SyncTagsRequest, sync_tags)
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.raw_stream("Evaluate", evaluate),
        INVALID,
        re.escape(PARSE_ERROR.format("EvaluateRequest")),
    )
    refused(
        arena,
        arena.mallory,
        lambda: arena.mallory.raw_unary("SyncTags", sync_tags, streaming=True),
        INVALID,
        re.escape(PARSE_ERROR.format("SyncTagsRequest")),
        action="sync_tags",
    )


def test_a_message_that_does_not_parse_ends_a_stream_after_good_batches(arena: Arena) -> None:
    peer = arena.mallory
    first = request(good(arena, 3)).SerializeToString()
    used, mults = arena.used(peer), group.scalar_mult_count()
    outcome = peer.raw_stream("Evaluate", first, b"\xff\xff")
    assert outcome.code is INVALID
    assert len(outcome.responses) == 1
    entry = arena.audit("mallory")[0]
    assert (entry.status, entry.elements, entry.results) == ("INVALID_ARGUMENT", 3, 3)
    assert (arena.used(peer), group.scalar_mult_count()) == (used + 3, mults + 3)


def test_unknown_fields_are_ignored(arena: Arena) -> None:
    """Forward compatibility: a field this version does not know is skipped, not refused."""
    message = request(good(arena, 2)).SerializeToString() + b"\xa2\x06\x03abc"  # field 100
    outcome = arena.mallory.raw_stream("Evaluate", message)
    assert outcome.code is grpc.StatusCode.OK
    [answer] = outcome.responses
    assert len(pb.EvaluateResponse.FromString(answer).evaluated) == 64


def test_a_message_over_the_size_limit(arena: Arena) -> None:
    """gRPC refuses it before our code sees it: RESOURCE_EXHAUSTED, no work, no charge."""
    peer = arena.mallory
    size = LIMITS.max_message_bytes + 32
    used, mults = arena.used(peer), group.scalar_mult_count()
    before = len(arena.audit("mallory"))
    outcome = peer.evaluate(request(secrets.token_bytes(size)))
    assert outcome.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Received message larger than max" in outcome.details
    [entry] = arena.new_audit("mallory", before)
    # gRPC Python shows the servicer the refused message as the end of the request stream,
    # and marks the call cancelled a moment later (FederationServicer._cut_short): the
    # session's status reads CANCELLED or, when the servicer is quicker, OK. Its counts are
    # exact: nothing was evaluated.
    assert entry.action == "evaluate" and entry.status in {"OK", "CANCELLED"}
    assert (entry.elements, entry.results) == (0, 0)
    assert (arena.used(peer), group.scalar_mult_count()) == (used, mults)
    # A unary request over the limit is refused the same way (gRPC audits nothing of it).
    big = pb.SyncTagsRequest(kind="phone", policy_token="x" * size).SerializeToString()
    assert sync_raw_code(peer, big) is grpc.StatusCode.RESOURCE_EXHAUSTED


def sync_raw_code(peer: Hostile, message: bytes) -> grpc.StatusCode:
    return peer.raw_unary("SyncTags", message, streaming=True).code


# --- budget, and calls repeated after a refusal --------------------------------------------


def test_budget_refusals_are_stable_and_retries_are_charged_once(arena: Arena) -> None:
    miser = arena.miser
    assert arena.used(miser) == 0
    a, b = request(good(arena, 8)), request(good(arena, 8))
    first = miser.evaluate(a)
    assert first.code is grpc.StatusCode.OK
    assert first.responses[0].budget_remaining == MISER_BUDGET - 8
    over = "budget exhausted for peer 'miser': a batch of 8 evaluations, 2 of 10 left in epoch 1"
    refused(
        arena,
        miser,
        lambda: miser.evaluate(b),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        over,
        elements=8,
    )
    # A retry of a batch already charged (same ID, same elements) is free, and answers alike.
    mults = group.scalar_mult_count()
    retry = miser.evaluate(a)
    assert retry.code is grpc.StatusCode.OK
    assert retry.responses[0].evaluated == first.responses[0].evaluated
    assert (arena.used(miser), group.scalar_mult_count()) == (8, mults + 8)
    # The same batch ID with other elements is another batch: charged, so refused.
    reused = request(b.blinded, batch_id=a.batch_id)
    refused(
        arena,
        miser,
        lambda: miser.evaluate(reused),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        over,
        elements=8,
    )
    # What is left can still be spent, exactly, and no more.
    assert miser.evaluate(request(good(arena, 2))).code is grpc.StatusCode.OK
    one = request(good(arena, 1))
    last = "budget exhausted for peer 'miser': a batch of 1 evaluations, 0 of 10 left in epoch 1"
    refused(
        arena,
        miser,
        lambda: miser.evaluate(one),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        last,
        elements=1,
    )
    assert arena.used(miser) == MISER_BUDGET


def test_a_refusal_mid_stream_keeps_what_was_done(arena: Arena) -> None:
    peer = arena.mallory
    batches = [request(good(arena, 3)), request(good(arena, 2)), request(group.IDENTITY)]
    used, mults = arena.used(peer), group.scalar_mult_count()
    outcome = peer.evaluate(*batches)
    assert outcome.code is INVALID
    assert [len(r.evaluated) for r in outcome.responses] == [96, 64]
    entry = arena.audit("mallory")[0]
    assert (entry.status, entry.elements, entry.results) == ("INVALID_ARGUMENT", 6, 5)
    assert (arena.used(peer), group.scalar_mult_count()) == (used + 5, mults + 5)
