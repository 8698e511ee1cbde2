"""The server side: node info, the order and strictness of the evaluation checks, budget
charging, and tag set syncs (full, delta, chunking, label policy, sealing)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from psi_nodes import Node, make_node, phones, random_labels

from node.crypto import group, labels, oprf
from node.errors import (
    BudgetExhausted,
    DecryptionError,
    InvalidElement,
    PermissionDenied,
    ProtocolViolation,
    UnknownPeer,
)
from node.identifiers import oprf_input
from node.psi import evaluator as evaluator_module
from node.psi.types import EvalBatch, TagChunk, label_aad
from node.secretfile import read_private
from node.store.peers import PeerRecord

MAX = 64
SHOWN = ("fraud_ring", "mule_account")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Node]:
    node = make_node(tmp_path, "server", max_batch=MAX)
    yield node
    node.store.close()


@pytest.fixture
def client(tmp_path: Path, server: Node) -> Iterator[tuple[Node, PeerRecord]]:
    node = make_node(tmp_path, "client")
    record = server.pin(node, kinds=("phone", "email"), labels=SHOWN, budget=200)
    yield node, record
    node.store.close()


def kind_secret(node: Node, epoch: int, kind: str) -> bytes:
    """The kind key derived here from the seed file, independently of EpochKeyring."""
    seed = read_private(node.root / "keys" / f"epoch-{epoch:06d}.key")
    info = b"aif-node oprf epoch %d kind %s" % (epoch, kind.encode())
    return oprf.derive_key_pair(seed, info)[0]


def blinded(values: list[str], kind: str = "phone") -> tuple[list[bytes], list[bytes], bytes]:
    inputs = [oprf_input(kind, v) for v in values]
    blinds, elements = oprf.blind_batch(inputs)
    return inputs, blinds, b"".join(elements)


def test_node_info_shows_only_the_kinds_allowed(
    server: Node, client: tuple[Node, PeerRecord]
) -> None:
    _, peer = client
    server.add("phone", phones(random.Random(1), 12), {})
    info = server.evaluator.node_info(peer)
    assert info.node_id == server.node_id and info.name == "server"
    assert (info.protocol_version, info.suite) == (1, "ristretto255-SHA512")
    assert info.epoch == 1 and info.max_batch_elements == MAX
    assert [k.kind for k in info.kinds] == ["phone", "email"]
    assert info.kind("phone") is not None and info.kind("phone").set_size == 12  # type: ignore[union-attr]
    assert info.kind("id_card") is None
    assert (info.budget_total, info.budget_remaining) == (200, 200)


def test_evaluation_is_the_oprf_under_the_kind_key(
    server: Node, client: tuple[Node, PeerRecord]
) -> None:
    _, peer = client
    values = phones(random.Random(2), 10)
    inputs, blinds, packed = blinded(values)
    result = server.evaluator.evaluate(peer, 1, "phone", EvalBatch(b"b" * 16, packed))
    assert result.batch_id == b"b" * 16 and result.budget_remaining == 190
    evaluated = [result.evaluated[i : i + 32] for i in range(0, len(result.evaluated), 32)]
    outputs = oprf.finalize_batch(inputs, blinds, evaluated)
    secret = kind_secret(server, 1, "phone")
    assert outputs == [oprf.evaluate(secret, x) for x in inputs]
    # Another kind's key gives other results for the same elements.
    other = server.evaluator.evaluate(peer, 1, "email", EvalBatch(b"c" * 16, packed))
    assert other.evaluated != result.evaluated
    assert server.keyring.kind_key(1, "phone").secret == secret


def bad_batches() -> list[tuple[str, int, str, EvalBatch, type[Exception], str]]:
    _, _, good = blinded(["+8613800138000", "+8613800138001", "+8613800138002"])
    identity_at_2 = good[:64] + group.IDENTITY + good[96:]
    non_canonical = good[:32] + b"\xff" * 32 + good[64:]
    ok_id = b"i" * 16
    return [
        ("kind not allowed", 1, "id_card", EvalBatch(ok_id, good), PermissionDenied, "id_card"),
        ("old epoch", 0, "phone", EvalBatch(ok_id, good), ProtocolViolation, "epoch 0 is not"),
        ("short id", 1, "phone", EvalBatch(b"i", good), ProtocolViolation, "batch_id"),
        ("empty", 1, "phone", EvalBatch(ok_id, b""), ProtocolViolation, "1 to 64 elements"),
        ("ragged", 1, "phone", EvalBatch(ok_id, good[:-1]), ProtocolViolation, "multiple of 32"),
        ("too many", 1, "phone", EvalBatch(ok_id, good * 22), ProtocolViolation, "not 66"),
        ("identity", 1, "phone", EvalBatch(ok_id, identity_at_2), InvalidElement, "element 2"),
        ("bad point", 1, "phone", EvalBatch(ok_id, non_canonical), InvalidElement, "element 1"),
    ]


@pytest.mark.parametrize(
    ("epoch", "kind", "batch", "error", "message"),
    [case[1:] for case in bad_batches()],
    ids=[case[0] for case in bad_batches()],
)
def test_a_bad_batch_is_refused_before_charging_or_multiplying(
    server: Node,
    client: tuple[Node, PeerRecord],
    epoch: int,
    kind: str,
    batch: EvalBatch,
    error: type[Exception],
    message: str,
) -> None:
    _, peer = client
    mults = group.scalar_mult_count()
    with pytest.raises(error, match=message):
        server.evaluator.evaluate(peer, epoch, kind, batch)
    assert group.scalar_mult_count() == mults
    assert server.store.budget.used(peer.node_id, 1) == 0
    assert server.store.budget.used(peer.node_id, epoch) == 0


def test_an_unknown_kind_that_policy_allows_is_refused(server: Node, tmp_path: Path) -> None:
    other = make_node(tmp_path, "open")
    peer = server.pin(other)
    _, _, packed = blinded(["x"], "phone")
    with pytest.raises(ProtocolViolation, match="unknown kind 'shoe_size'"):
        server.evaluator.evaluate(peer, 1, "shoe_size", EvalBatch(bytes(16), packed))
    other.store.close()


def test_budget_is_charged_once_per_batch_and_never_overdrawn(
    server: Node, client: tuple[Node, PeerRecord]
) -> None:
    _, peer = client
    rng = random.Random(3)
    first, second, third = (blinded(phones(rng, 50))[2] for _ in range(3))

    def remaining(batch_id: bytes, packed: bytes) -> int:
        return server.evaluator.evaluate(
            peer, 1, "phone", EvalBatch(batch_id, packed)
        ).budget_remaining

    assert remaining(b"1" * 16, first) == 150
    assert remaining(b"1" * 16, first) == 150, "a retry of the same batch is free"
    assert remaining(b"1" * 16, second) == 100, "the same ID with other elements is charged"
    assert remaining(b"2" * 16, third) == 50
    mults = group.scalar_mult_count()
    with pytest.raises(BudgetExhausted, match="50 of 200 left in epoch 1"):
        remaining(b"3" * 16, first + second[: 32 * 10])
    assert group.scalar_mult_count() == mults
    assert server.store.budget.used(peer.node_id, 1) == 150
    assert server.evaluator.node_info(peer).budget_remaining == 50


def test_an_unpinned_caller_is_refused_at_the_charge(
    server: Node, client: tuple[Node, PeerRecord]
) -> None:
    _, peer = client
    server.store.peers.remove(peer.name)
    _, _, packed = blinded(["+8613800138000"])
    with pytest.raises(UnknownPeer):
        server.evaluator.evaluate(peer, 1, "phone", EvalBatch(bytes(16), packed))


# --- tag set syncs -------------------------------------------------------------------------


def collect(chunks: Iterator[TagChunk]) -> tuple[list[TagChunk], dict[bytes, bytes], set[bytes]]:
    listed = list(chunks)
    added: dict[bytes, bytes] = {}
    removed: set[bytes] = set()
    for chunk in listed:
        tags = [chunk.added_tags[i : i + 16] for i in range(0, len(chunk.added_tags), 16)]
        assert len(tags) == len(chunk.added_sealed)
        added.update(zip(tags, chunk.added_sealed, strict=True))
        removed |= {chunk.removed_tags[i : i + 16] for i in range(0, len(chunk.removed_tags), 16)}
    return listed, added, removed


def expected_tags(
    node: Node, epoch: int, kind: str, values: list[str]
) -> dict[str, tuple[bytes, bytes]]:
    secret = kind_secret(node, epoch, kind)
    outs = oprf.evaluate_batch(secret, [oprf_input(kind, v) for v in values])
    return {v: labels.tag_and_key(out) for v, out in zip(values, outs, strict=True)}


def test_full_sync_sends_every_tag_with_labels_filtered_and_sealed(
    server: Node, client: tuple[Node, PeerRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, peer = client
    rng = random.Random(5)
    values = phones(rng, 40)
    shared = random_labels(rng, values)
    server.add("phone", values, shared)
    monkeypatch.setattr(evaluator_module, "MAX_TAG_CHUNK", 15)
    chunks, added, removed = collect(server.evaluator.sync_tags(peer, "phone", 1, 0, ""))
    assert [c.added_count for c in chunks] == [15, 15, 10]
    assert all(c.full and c.epoch == 1 and c.version == 1 for c in chunks)
    assert {c.policy_token for c in chunks} == {str(peer.policy_version)}
    assert removed == set()
    truth = expected_tags(server, 1, "phone", values)
    assert set(added) == {tag for tag, _ in truth.values()}
    for value, (tag, key) in truth.items():
        opened = labels.open_labels(key, added[tag], label_aad("phone", 1, tag))
        assert tuple(opened) == tuple(x for x in shared[value] if x in SHOWN)
        with pytest.raises(DecryptionError):
            labels.open_labels(key, added[tag], label_aad("email", 1, tag))


def test_delta_sync_sends_changes_and_removals_only(
    server: Node, client: tuple[Node, PeerRecord]
) -> None:
    _, peer = client
    values = phones(random.Random(6), 30)
    server.add("phone", values, {})
    chunks, _, _ = collect(server.evaluator.sync_tags(peer, "phone", 1, 0, ""))
    version, token = chunks[0].version, chunks[0].policy_token
    new = phones(random.Random(7), 2)
    server.add("phone", new, {})
    server.add("phone", values[:1], {values[0]: ("fraud_ring",)})
    server.remove("phone", values[1:4])
    chunks, added, removed = collect(server.evaluator.sync_tags(peer, "phone", 1, version, token))
    assert len(chunks) == 1 and not chunks[0].full and chunks[0].version > version
    truth = expected_tags(server, 1, "phone", values + new)
    assert set(added) == {truth[v][0] for v in [*new, values[0]]}
    assert removed == {truth[v][0] for v in values[1:4]}
    tag, key = truth[values[0]]
    assert labels.open_labels(key, added[tag], label_aad("phone", 1, tag)) == ["fraud_ring"]
    # Nothing changed since: an empty delta, still one chunk with the version.
    (same,), added, removed = collect(
        server.evaluator.sync_tags(peer, "phone", 1, chunks[0].version, token)
    )
    assert (same.version, same.full, added, removed) == (chunks[0].version, False, {}, set())


@pytest.mark.parametrize(
    ("epoch", "since", "token"),
    [(1, 0, "T"), (7, 1, "T"), (1, 1, "other"), (1, 99, "T")],
    ids=["from zero", "other epoch", "other policy", "version never reached"],
)
def test_full_sync_when_the_copy_cannot_take_a_delta(
    server: Node, client: tuple[Node, PeerRecord], epoch: int, since: int, token: str
) -> None:
    _, peer = client
    values = phones(random.Random(8), 6)
    server.add("phone", values, {})
    server.evaluator.sync_tags(peer, "phone", 1, 0, "")  # builds the set with all six
    server.remove("phone", values[:1])
    real = str(peer.policy_version)
    chunks, added, removed = collect(
        server.evaluator.sync_tags(peer, "phone", epoch, since, real if token == "T" else token)
    )
    assert chunks[0].full and chunks[0].epoch == 1 and chunks[0].version == 2
    assert set(added) == {tag for tag, _ in expected_tags(server, 1, "phone", values[1:]).values()}
    assert removed == set(), "a full set leaves removals out: they would only leak old tags"


def test_an_empty_set_syncs_as_one_empty_chunk(
    server: Node, client: tuple[Node, PeerRecord]
) -> None:
    _, peer = client
    (chunk,) = server.evaluator.sync_tags(peer, "email", 1, 0, "")
    assert (chunk.full, chunk.version, chunk.added_tags, chunk.removed_tags) == (True, 0, b"", b"")


def test_sync_refuses_kinds_outside_policy_and_negative_versions(
    server: Node, client: tuple[Node, PeerRecord]
) -> None:
    _, peer = client
    with pytest.raises(PermissionDenied):
        server.evaluator.sync_tags(peer, "ip", 1, 0, "")
    with pytest.raises(ProtocolViolation):
        server.evaluator.sync_tags(peer, "phone", 1, -1, "")
