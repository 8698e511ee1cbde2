"""Property-based fuzzing with a fixed budget: every input from outside (a peer's message, a
group element, a sealed label blob, an operator's file or identifier) gives a clean result or
one of the node's own errors, never another exception. Deterministic (derandomize), so a
failure in CI fails the same way on a laptop; the contracts are in tests/fuzz/targets.py.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from node import sampledata
from node.crypto import group, labels
from node.errors import InvalidElement
from node.transport.pb import federation_pb2 as pb
from tests.fuzz import targets
from tests.fuzz.reference import decodes, is_valid_element
from tests.unit.vectors import (
    rfc9496_from_uniform,
    rfc9496_invalid_encodings,
    rfc9496_multiples,
)

SCALE = int(os.environ.get("AIF_FUZZ_SCALE", "1"))
"""Multiplies every budget below; above 1 the inputs are also random, not fixed: for a
longer hunt on a workstation (`AIF_FUZZ_SCALE=50 pytest tests/fuzz`)."""


def budget(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=SCALE == 1,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- strategies ----------------------------------------------------------------------------

INVALID_ENCODINGS = [v.encoding for v in rfc9496_invalid_encodings()]

valid_elements = st.binary(min_size=64, max_size=64).map(group.element_from_uniform)


def flip(args: tuple[bytes, int]) -> bytes:
    element, bit = args
    at = bit // 8
    return element[:at] + bytes([element[at] ^ 1 << bit % 8]) + element[at + 1 :]


elements = st.one_of(
    valid_elements,
    st.binary(min_size=32, max_size=32),
    st.sampled_from([*INVALID_ENCODINGS, group.IDENTITY]),
    st.tuples(valid_elements, st.integers(0, 255)).map(flip),
)
packed_elements = st.tuples(
    st.lists(elements, max_size=targets.MAX_BATCH + 2),
    st.one_of(st.just(b""), st.binary(min_size=1, max_size=3)),
).map(lambda t: b"".join(t[0]) + t[1])
kinds = st.one_of(
    st.sampled_from([*targets.KINDS, "", "shoe_size", "PHONE"]),
    st.text(max_size=32),
    st.text(min_size=33, max_size=60),
)
epochs = st.one_of(st.sampled_from([1, 0, 2, 2**64 - 1]), st.integers(0, 2**64 - 1))


def mutated(messages: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Serialized messages, sometimes with a byte changed or the tail cut."""

    def mutate(args: tuple[bytes, int, int, int]) -> bytes:
        data, how, where, value = args
        if not data or how == 0:
            return data
        at = where % len(data)
        if how == 1:
            return data[:at] + bytes([value]) + data[at + 1 :]
        return data[:at]

    return st.tuples(messages, st.integers(0, 2), st.integers(0, 2**16), st.integers(0, 255)).map(
        mutate
    )


def evaluate_request(epoch: int, kind: str, batch_id: bytes, blinded: bytes) -> bytes:
    return pb.EvaluateRequest(
        epoch=epoch, kind=kind, batch_id=batch_id, blinded=blinded
    ).SerializeToString()


evaluate_requests = st.one_of(
    # As an honest peer would send it, so that some get evaluated ...
    st.builds(
        evaluate_request,
        st.just(1),
        st.sampled_from(targets.KINDS),
        st.binary(min_size=16, max_size=16),
        st.lists(valid_elements, min_size=1, max_size=targets.MAX_BATCH).map(b"".join),
    ),
    # ... and anything else.
    st.builds(
        evaluate_request,
        epochs,
        kinds,
        st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=40)),
        packed_elements,
    ),
)
sync_requests = st.builds(
    lambda kind, epoch, since, token: pb.SyncTagsRequest(
        kind=kind, epoch=epoch, since_version=since, policy_token=token
    ).SerializeToString(),
    kinds,
    epochs,
    st.one_of(st.integers(0, 5), st.integers(0, 2**64 - 1)),
    st.text(max_size=20),
)
tag_chunks = st.builds(
    lambda tags, sizes, sealed, removed: pb.TagSetChunk(
        epoch=1,
        version=2,
        full=True,
        added_tags=tags,
        sealed_sizes=sizes,
        added_sealed=sealed,
        removed_tags=removed,
    ).SerializeToString(),
    st.binary(max_size=5 * 16 + 3),
    st.lists(st.integers(0, 80), max_size=6),
    st.binary(max_size=200),
    st.binary(max_size=3 * 16 + 1),
)
evaluate_responses = st.builds(
    lambda batch_id, evaluated: pb.EvaluateResponse(
        batch_id=batch_id, evaluated=evaluated
    ).SerializeToString(),
    st.binary(max_size=16),
    packed_elements,
)


# --- messages ------------------------------------------------------------------------------


def fuzz(
    check: Callable[[bytes], str], strategy: st.SearchStrategy[bytes], examples: int
) -> set[str]:
    """Run `check` over `examples` inputs (arbitrary bytes, or `strategy`'s messages, some
    mutated); the outcomes seen, so that a test can show its budget reached each of them."""
    seen: set[str] = set()

    @budget(examples)
    @given(st.one_of(st.binary(max_size=300), mutated(strategy)))
    def run(data: bytes) -> None:
        seen.add(check(data))

    run()
    return seen


def test_evaluate_requests() -> None:
    seen = fuzz(targets.check_evaluate_request, evaluate_requests, 300)
    assert {
        "undecodable",
        "malformed",
        "evaluated",
        "InvalidElement",
        "EpochChanged",
        "UnknownKind",
        "ProtocolViolation",
    } <= seen


def test_sync_requests() -> None:
    seen = fuzz(targets.check_sync_request, sync_requests, 150)
    assert {"undecodable", "malformed", "served", "UnknownKind"} <= seen


def test_tag_chunks() -> None:
    seen = fuzz(targets.check_tag_chunk, tag_chunks, 300)
    assert {"undecodable", "malformed", "chunk"} <= seen


def test_evaluate_responses() -> None:
    seen = fuzz(targets.check_evaluate_response, evaluate_responses, 200)
    assert {"undecodable", "wrong size", "invalid element", "finalized"} <= seen


def test_node_info() -> None:
    assert "info" in fuzz(targets.check_node_info, st.just(b""), 100)


# --- group elements ------------------------------------------------------------------------


def test_the_reference_decoder_agrees_with_rfc9496() -> None:
    """The oracle itself, on the RFC's vectors: k*G decode (0*G is the identity, which a
    peer may not send), the listed bad encodings do not, hash-to-group outputs do."""
    multiples = rfc9496_multiples()
    assert all(decodes(m) for m in multiples)
    assert [is_valid_element(m) for m in multiples] == [False] + [True] * (len(multiples) - 1)
    assert not any(decodes(e) for e in INVALID_ENCODINGS)
    assert all(is_valid_element(v.element) for v in rfc9496_from_uniform())


@budget(400)
@given(st.one_of(elements, st.binary(min_size=32, max_size=32)))
@example(bytes(32))
@example(b"\xff" * 32)
@example((2**255 - 19).to_bytes(32, "little"))
def test_deserialize_element_accepts_exactly_the_valid_encodings(data: bytes) -> None:
    targets.check_element(data)


@budget(100)
@given(st.binary(max_size=40).filter(lambda b: len(b) != 32))
def test_elements_of_any_other_length_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidElement, match="wrong length"):
        group.deserialize_element(data)


@budget(100)
@given(st.lists(elements, min_size=1, max_size=12))
def test_a_batch_names_its_first_invalid_element(batch: list[bytes]) -> None:
    verdicts = [is_valid_element(e) for e in batch]
    try:
        group.deserialize_elements(batch)
    except InvalidElement as exc:
        assert str(exc).startswith(f"element {verdicts.index(False)}: ")
    else:
        assert all(verdicts)


# --- sealed labels -------------------------------------------------------------------------

label_lists = st.lists(st.text(max_size=12), max_size=5)


@budget(200)
@given(st.binary(max_size=40), st.binary(max_size=200), st.binary(max_size=40))
def test_open_labels_on_any_blob(key: bytes, blob: bytes, aad: bytes) -> None:
    assert targets.check_open_labels(key, blob, aad) is None  # no forgery by chance


def near_canonical(args: tuple[list[str], int, int, int]) -> bytes:
    """A canonical label plaintext with one change: a byte, the count, or the length."""
    items, how, where, value = args
    plain = targets.canonical_labels(items)
    if how == 0:
        return plain
    at = where % len(plain)
    if how == 1:
        return plain[:at] + bytes([value]) + plain[at + 1 :]
    if how == 2:
        return plain[:at] + plain[at + 1 :]
    return plain + bytes(value % 40)


@budget(300)
@given(
    st.one_of(
        st.binary(max_size=100),
        st.tuples(label_lists, st.integers(0, 3), st.integers(0, 2**16), st.integers(0, 255)).map(
            near_canonical
        ),
    )
)
def test_open_labels_accepts_only_canonical_plaintexts(plaintext: bytes) -> None:
    targets.check_label_plaintext(plaintext)


@budget(100)
@given(label_lists, st.binary(max_size=20))
def test_sealed_labels_open_to_themselves(items: list[str], aad: bytes) -> None:
    blob = labels.seal_labels(targets.LABEL_KEY, items, aad)
    assert targets.check_open_labels(targets.LABEL_KEY, blob, aad) == sorted(items)
    assert targets.check_open_labels(targets.LABEL_KEY, blob, aad + b"x") is None


# --- operator input ------------------------------------------------------------------------


def plausible(kind: str, seed: int) -> str:
    """A value of `kind` as an export might spell it, from the sample data generators."""
    rng = random.Random(seed)
    makers: dict[str, Callable[[random.Random], str]] = {
        "phone": sampledata.phone,
        "id_card": sampledata.id_card,
        "bank_card": sampledata.bank_card,
        "uscc": sampledata.uscc,
        "email": lambda r: f"User.{r.randrange(10**6)}@Example.COM",
        "device_id": lambda r: f"{r.getrandbits(128):032x}",
        "ip": lambda r: ".".join(str(r.randrange(256)) for _ in range(4)),
        targets.OPAQUE_KIND: lambda r: f"  case-{r.randrange(10**6)}  ",
    }
    return sampledata.spell(kind, makers[kind](rng), rng)


NOISE = " -+()\u3000\uff10\uff11.:@xX/\t\u200b\u00a0\ufeff,;|\"'{}0123456789abcdefABCDEF"


def noisy(args: tuple[str, list[tuple[int, str]]]) -> str:
    text, edits = args
    for where, char in edits:
        at = where % (len(text) + 1)
        text = text[:at] + char + text[at:]
    return text


def identifier_texts(kind: str) -> st.SearchStrategy[str]:
    near = st.integers(0, 2**32).map(lambda seed: plausible(kind, seed))
    return st.one_of(
        st.text(max_size=60),
        st.text(st.characters(exclude_categories=()), max_size=30),  # lone surrogates too
        near,
        st.tuples(
            near, st.lists(st.tuples(st.integers(0, 99), st.sampled_from(NOISE)), max_size=3)
        ).map(noisy),
    )


@budget(150)
@pytest.mark.parametrize("kind", targets.KINDS)
@given(data=st.data())
def test_normalize_is_total_and_idempotent(kind: str, data: st.DataObject) -> None:
    targets.check_normalize(kind, data.draw(identifier_texts(kind)))


@pytest.fixture(scope="module")
def importer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[targets.ImportTarget]:
    target = targets.ImportTarget(tmp_path_factory.mktemp("import"))
    yield target
    target.store.close()


COLUMNS = ["phone", "email", "value", "labels", "first_seen", "last_seen", "ref", "", "Phone "]
CELLS = st.one_of(
    st.integers(0, 2**32).map(lambda seed: plausible("phone", seed)),
    st.sampled_from(["", " ", "2024-05-01", "2024/5/1", "20240501", "2024-02-30", "a;b|c", "\x00"]),
    st.text(max_size=15),
)


def csv_text(args: tuple[list[str], list[list[str]]]) -> str:
    header, rows = args
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


csv_files = st.tuples(
    st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4),
    st.lists(st.lists(CELLS, min_size=1, max_size=5), max_size=8),
).map(csv_text)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), CELLS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
jsonl_files = st.lists(
    st.one_of(
        st.dictionaries(st.sampled_from(COLUMNS), json_values, max_size=4).map(json.dumps),
        st.text(max_size=20),
    ),
    max_size=8,
).map("\n".join)
TEXT = st.text(alphabet=st.sampled_from(NOISE + '\n\r"{}[]:,phone\u00e9\u4e2d'), max_size=200)
files = st.one_of(
    csv_files.map(str.encode),
    jsonl_files.map(str.encode),
    TEXT.map(str.encode),
    mutated(csv_files.map(str.encode)),
    st.binary(max_size=100),
)


def test_import_of_any_file(importer: targets.ImportTarget) -> None:
    results: list[targets.ImportResult | None] = []

    @budget(300)
    @given(
        files,
        st.sampled_from(targets.KINDS),
        st.sampled_from([".csv", ".jsonl", ".txt", ""]),
        st.booleans(),
        st.sampled_from(["utf-8", "utf-8", "gbk"]),
    )
    def run(content: bytes, kind: str, suffix: str, skip_invalid: bool, encoding: str) -> None:
        results.append(importer.check(content, kind, suffix, skip_invalid, encoding))

    run()
    # The budget reached refusals, imports, and imports that inserted and that skipped rows.
    imported = [r for r in results if r is not None]
    assert imported and len(imported) < len(results)
    assert any(r.inserted for r in imported) and any(r.skipped for r in imported)
