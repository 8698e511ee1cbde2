"""RFC 9497 OPRF (ristretto255-SHA512): published vectors, refusals, properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors import (
    InvalidEncoding,
    OprfVector,
    XmdVector,
    rfc9380_expand_xmd_sha512,
    rfc9496_invalid_encodings,
    rfc9497,
)

from node.crypto import group, oprf
from node.errors import InputError, InvalidElement, InvalidScalar

L = 2**252 + 27742317777372353535851937790883648493
SUITE = "ristretto255-SHA512"
MODE0 = rfc9497(SUITE, (0,))
# The VOPRF (mode 1) vectors share Blind, BlindEvaluate's element and Finalize's output
# computation with OPRF; only the context string differs. They carry the batched vectors.
MODE0_AND_1 = rfc9497(SUITE, (0, 1))
XMD = rfc9380_expand_xmd_sha512()
INVALID = rfc9496_invalid_encodings()


def vid(v: OprfVector) -> str:
    return v.id


def test_vector_files_are_complete() -> None:
    assert [v.number for v in MODE0] == [1, 2]
    assert sorted(len(v.inputs) for v in MODE0_AND_1) == [1, 1, 1, 1, 2]
    assert len(XMD) == 10


def test_context_string_matches_the_vectors() -> None:
    for v in MODE0_AND_1:
        assert oprf.context_string(v.mode) == v.context_string
        assert b"HashToGroup-" + v.context_string == v.group_dst
    assert MODE0[0].context_string == oprf.CONTEXT_STRING


# --- RFC 9497 Appendix A ----------------------------------------------------------------


@pytest.mark.parametrize("v", MODE0_AND_1, ids=vid)
def test_derive_key_pair(v: OprfVector) -> None:
    sk, pk = oprf.derive_key_pair(v.seed, v.key_info, context=v.context_string)
    assert sk == v.sk
    assert pk == group.scalar_mult_base(v.sk)
    if v.pk is not None:
        assert pk == v.pk


@pytest.mark.parametrize("v", MODE0, ids=vid)
def test_mode0_vector_single(v: OprfVector) -> None:
    (x,), (r,), (blinded,), (evaluated,), (output,) = (
        v.inputs,
        v.blinds,
        v.blinded,
        v.evaluated,
        v.outputs,
    )
    assert oprf.blind(x, r) == (r, blinded)
    assert oprf.blind_evaluate(v.sk, blinded) == evaluated
    assert oprf.finalize(x, r, evaluated) == output
    assert oprf.evaluate(v.sk, x) == output


@pytest.mark.parametrize("v", MODE0_AND_1, ids=vid)
def test_vector_batch(v: OprfVector) -> None:
    ctx = v.context_string
    assert oprf.blind_batch(v.inputs, v.blinds, context=ctx) == (v.blinds, v.blinded)
    assert oprf.blind_evaluate_batch(v.sk, v.blinded) == v.evaluated
    assert oprf.finalize_batch(v.inputs, v.blinds, v.evaluated) == v.outputs
    assert oprf.evaluate_batch(v.sk, v.inputs, context=ctx) == v.outputs


def test_mode0_vectors_as_one_batch() -> None:
    (a, b) = MODE0
    assert a.sk == b.sk
    inputs, blinds = a.inputs + b.inputs, a.blinds + b.blinds
    assert oprf.blind_batch(inputs, blinds)[1] == a.blinded + b.blinded
    assert oprf.blind_evaluate_batch(a.sk, a.blinded + b.blinded) == a.evaluated + b.evaluated
    assert oprf.finalize_batch(inputs, blinds, a.evaluated + b.evaluated) == a.outputs + b.outputs
    assert oprf.evaluate_batch(a.sk, inputs) == a.outputs + b.outputs


# --- RFC 9380 K.3 expand_message_xmd(SHA-512) -------------------------------------------


@pytest.mark.parametrize("v", XMD, ids=lambda v: f"{v.len_in_bytes}-{v.msg[:16]!r}")
def test_expand_message_xmd(v: XmdVector) -> None:
    assert oprf.expand_message_xmd(v.msg, v.dst, v.len_in_bytes) == v.uniform_bytes


@pytest.mark.parametrize("length", [0, -1, 255 * 64 + 1, 65535, 65536])
def test_expand_message_xmd_length_limits(length: int) -> None:
    with pytest.raises(InputError, match="len_in_bytes"):
        oprf.expand_message_xmd(b"m", b"DST", length)


def test_expand_message_xmd_longest_output() -> None:
    out = oprf.expand_message_xmd(b"m", b"DST", 255 * 64)
    assert len(out) == 255 * 64
    # A prefix of a longer output differs from a shorter output: the length is hashed in.
    assert out[:32] != oprf.expand_message_xmd(b"m", b"DST", 32)


@pytest.mark.parametrize("dst", [b"", b"x" * 256])
def test_expand_message_xmd_dst_limits(dst: bytes) -> None:
    with pytest.raises(InputError, match="DST"):
        oprf.expand_message_xmd(b"m", dst, 32)


@settings(deadline=None)
@given(msg=st.binary(max_size=100))
def test_hash_to_scalar_is_xmd_reduced(msg: bytes) -> None:
    dst = b"HashToScalar-" + oprf.CONTEXT_STRING
    wide = oprf.expand_message_xmd(msg, dst, 64)
    expected = (int.from_bytes(wide, "little") % L).to_bytes(32, "little")
    assert oprf.hash_to_scalar(msg) == expected
    assert oprf.hash_to_scalar(msg, b"other") != expected


def test_hash_to_group_is_the_element_of_xmd() -> None:
    x = b"clue"
    uniform = oprf.expand_message_xmd(x, MODE0[0].group_dst, 64)
    assert oprf.hash_to_group(x) == group.element_from_uniform(uniform)


# --- refusals -----------------------------------------------------------------------------

SK = MODE0[0].sk
X = MODE0[0].inputs[0]
R = MODE0[0].blinds[0]
BLINDED = MODE0[0].blinded[0]
EVALUATED = MODE0[0].evaluated[0]

BAD_ELEMENTS = [c.encoding for c in INVALID] + [
    group.IDENTITY,
    b"",
    BLINDED[:31],
    BLINDED + b"\x00",
    BLINDED * 2,
]


@pytest.mark.parametrize("bad", BAD_ELEMENTS, ids=lambda b: f"{len(b)}:{b.hex()[:10]}")
def test_bad_elements_never_evaluated(bad: bytes) -> None:
    before = group.scalar_mult_count()
    with pytest.raises(InvalidElement):
        oprf.blind_evaluate(SK, bad)
    with pytest.raises(InvalidElement):
        oprf.finalize(X, R, bad)
    with pytest.raises(InvalidElement, match=r"^element 2: "):
        oprf.blind_evaluate_batch(SK, [BLINDED, BLINDED, bad, BLINDED])
    with pytest.raises(InvalidElement, match=r"^element 1: "):
        oprf.finalize_batch([X, X], [R, R], [EVALUATED, bad])
    assert group.scalar_mult_count() == before


@pytest.mark.parametrize("case", INVALID[:3], ids=lambda c: c.reason)
def test_big_batch_refused_before_any_multiplication(case: InvalidEncoding) -> None:
    # Large enough for the thread pool to split the work; the bad element is the last.
    _, blinded = oprf.blind_batch([b"in%d" % i for i in range(200)])
    before = group.scalar_mult_count()
    with pytest.raises(InvalidElement, match=r"^element 200: not a canonical"):
        oprf.blind_evaluate_batch(SK, [*blinded, case.encoding])
    assert group.scalar_mult_count() == before


@pytest.mark.parametrize(
    "scalar",
    [bytes(32), L.to_bytes(32, "little"), b"\xff" * 32, R[:31]],
    ids=["zero", "order", "max", "short"],
)
def test_bad_scalars_refused(scalar: bytes) -> None:
    with pytest.raises(InvalidScalar):
        oprf.blind(X, scalar)
    with pytest.raises(InvalidScalar):
        oprf.blind_evaluate(scalar, BLINDED)
    with pytest.raises(InvalidScalar):
        oprf.finalize(X, scalar, EVALUATED)
    with pytest.raises(InvalidScalar):
        oprf.evaluate(scalar, X)
    with pytest.raises(InvalidScalar):
        oprf.blind_evaluate_batch(scalar, [BLINDED])


def test_input_length_limit() -> None:
    longest = b"\xab" * 65535
    out = oprf.evaluate(SK, longest)
    r, blinded = oprf.blind(longest)
    assert oprf.finalize(longest, r, oprf.blind_evaluate(SK, blinded)) == out
    too_long = longest + b"\xab"
    for call in (
        lambda: oprf.blind(too_long),
        lambda: oprf.evaluate(SK, too_long),
        lambda: oprf.finalize(too_long, R, EVALUATED),
        lambda: oprf.blind_batch([X, too_long]),
        lambda: oprf.evaluate_batch(SK, [X, too_long]),
        lambda: oprf.finalize_batch([X, too_long], [R, R], [EVALUATED, EVALUATED]),
    ):
        with pytest.raises(InputError, match="65535"):
            call()


def test_derive_key_pair_arguments() -> None:
    v = MODE0[0]
    with pytest.raises(InputError, match="seed"):
        oprf.derive_key_pair(v.seed[:31], v.key_info)
    with pytest.raises(InputError, match="info"):
        oprf.derive_key_pair(v.seed, b"i" * 65536)
    assert oprf.derive_key_pair(v.seed, b"other info")[0] != v.sk


def test_batch_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 inputs, 1 blinds"):
        oprf.finalize_batch([X, X], [R], [EVALUATED, EVALUATED])
    with pytest.raises(ValueError, match="1 blinds for 2 inputs"):
        oprf.blind_batch([X, X], [R])


# --- properties ---------------------------------------------------------------------------

scalars = st.integers(min_value=1, max_value=L - 1).map(lambda k: k.to_bytes(32, "little"))
inputs = st.binary(max_size=80)


@settings(max_examples=40, deadline=None)
@given(x=inputs, k=scalars, r=scalars)
def test_protocol_equals_direct_evaluation(x: bytes, k: bytes, r: bytes) -> None:
    blind, blinded = oprf.blind(x, r)
    assert blind == r
    out = oprf.finalize(x, r, oprf.blind_evaluate(k, blinded))
    assert out == oprf.evaluate(k, x)
    assert len(out) == oprf.OUTPUT_SIZE


@settings(max_examples=40, deadline=None)
@given(x=inputs, k1=scalars, k2=scalars)
def test_different_keys_give_different_outputs(x: bytes, k1: bytes, k2: bytes) -> None:
    if k1 != k2:
        assert oprf.evaluate(k1, x) != oprf.evaluate(k2, x)


@settings(max_examples=20, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), info=st.binary(max_size=20))
def test_derived_keys_work(seed: bytes, info: bytes) -> None:
    sk, pk = oprf.derive_key_pair(seed, info)
    assert group.deserialize_scalar(sk) == sk
    assert pk == group.scalar_mult_base(sk)


def test_random_blinds_hide_the_input() -> None:
    r1, b1 = oprf.blind(X)
    r2, b2 = oprf.blind(X)
    assert r1 != r2
    assert b1 != b2
    assert oprf.finalize(X, r1, oprf.blind_evaluate(SK, b1)) == oprf.finalize(
        X, r2, oprf.blind_evaluate(SK, b2)
    )


def test_batches_equal_single_calls() -> None:
    xs = [hashlib.sha256(b"%d" % i).digest()[: i % 20] for i in range(120)]
    k = group.random_scalar()
    direct = oprf.evaluate_batch(k, xs)
    assert direct == [oprf.evaluate(k, x) for x in xs]
    blinds, blinded = oprf.blind_batch(xs)
    evaluated = oprf.blind_evaluate_batch(k, blinded)
    assert evaluated == [oprf.blind_evaluate(k, b) for b in blinded]
    assert oprf.finalize_batch(xs, blinds, evaluated) == direct
    assert len(set(direct)) == len(set(xs))


def test_public_surface() -> None:
    wanted = {
        "derive_key_pair",
        "blind",
        "blind_evaluate",
        "finalize",
        "evaluate",
        "blind_batch",
        "blind_evaluate_batch",
        "finalize_batch",
        "evaluate_batch",
        "expand_message_xmd",
        "hash_to_group",
        "hash_to_scalar",
        "CONTEXT_STRING",
    }
    assert wanted <= set(oprf.__all__)
    for name in oprf.__all__:
        assert hasattr(oprf, name), name
