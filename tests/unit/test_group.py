"""ristretto255 over libsodium: RFC 9496 vectors, strict deserialization, batches."""

from __future__ import annotations

import ctypes.util
import hashlib
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors import (
    InvalidEncoding,
    UniformVector,
    rfc9496_from_uniform,
    rfc9496_invalid_encodings,
    rfc9496_multiples,
)

from node.crypto import _sodium, group
from node.errors import InvalidElement, InvalidScalar

L = 2**252 + 27742317777372353535851937790883648493  # RFC 9496 section 4: the group order
MULTIPLES = rfc9496_multiples()
INVALID = rfc9496_invalid_encodings()
UNIFORM = rfc9496_from_uniform()
G = MULTIPLES[1]


def sc(k: int) -> bytes:
    return k.to_bytes(32, "little")


def test_vector_files_are_complete() -> None:
    # Guards against a loader that silently yields fewer cases.
    assert len(MULTIPLES) == 16
    assert len(INVALID) == 29
    assert len(UNIFORM) == 11
    assert len({v.reason for v in INVALID}) == 5


def test_constants() -> None:
    assert (group.ELEMENT_SIZE, group.SCALAR_SIZE, group.UNIFORM_SIZE) == (32, 32, 64)
    assert L == group.GROUP_ORDER
    assert MULTIPLES[0] == group.IDENTITY


# --- RFC 9496 A.1: multiples of the generator -------------------------------------------


@pytest.mark.parametrize("k", range(1, 16))
def test_multiples_of_generator(k: int) -> None:
    assert group.scalar_mult_base(sc(k)) == MULTIPLES[k]
    assert group.scalar_mult(sc(k), G) == MULTIPLES[k]
    assert group.deserialize_element(MULTIPLES[k]) == MULTIPLES[k]


@pytest.mark.parametrize("a", range(1, 8))
def test_multiples_compose(a: int) -> None:
    # a * (b*G) == (a*b)*G for every product the vectors cover.
    for b in range(1, 16):
        if a * b < 16:
            assert group.scalar_mult(sc(a), MULTIPLES[b]) == MULTIPLES[a * b]


def test_multiples_in_one_batch() -> None:
    assert group.scalar_mult_each([sc(k) for k in range(1, 16)], [G] * 15) == MULTIPLES[1:]


def test_zero_multiple_is_the_refused_identity() -> None:
    with pytest.raises(InvalidScalar, match="zero"):
        group.scalar_mult_base(sc(0))
    with pytest.raises(InvalidElement, match="identity"):
        group.deserialize_element(MULTIPLES[0])
    with pytest.raises(InvalidElement, match="identity"):
        group.scalar_mult(sc(1), MULTIPLES[0])


def test_order_times_generator_is_refused_as_scalar() -> None:
    # L*G would be the identity; L is not a canonical scalar, so it never gets there.
    with pytest.raises(InvalidScalar, match="canonical"):
        group.scalar_mult_base(sc(L))


# --- RFC 9496 A.2: invalid encodings ---------------------------------------------------


@pytest.mark.parametrize("case", INVALID, ids=lambda c: f"{c.reason}:{c.encoding.hex()[:8]}")
def test_invalid_encoding_refused(case: InvalidEncoding) -> None:
    encoding = case.encoding
    with pytest.raises(InvalidElement, match="canonical"):
        group.deserialize_element(encoding)
    with pytest.raises(InvalidElement, match="canonical"):
        group.scalar_mult(sc(3), encoding)
    with pytest.raises(InvalidElement, match="element 1: not a canonical"):
        group.scalar_mult_many(sc(3), [G, encoding])
    with pytest.raises(InvalidElement, match="element 0: not a canonical"):
        group.deserialize_elements([encoding])


@pytest.mark.parametrize("k", range(1, 16))
def test_high_bit_set_is_non_canonical(k: int) -> None:
    # Derived here, not from the RFC: k*G with bit 255 set. libsodium 1.0.18 alone accepts
    # these (it ignores that bit), so this is the check group.py adds.
    flipped = MULTIPLES[k][:31] + bytes([MULTIPLES[k][31] | 0x80])
    with pytest.raises(InvalidElement, match="canonical"):
        group.deserialize_element(flipped)
    with pytest.raises(InvalidElement, match="element 1: not a canonical"):
        group.scalar_mult_many(sc(2), [G, flipped])


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_lengths_refused(size: int) -> None:
    data = (G * 3)[:size]
    with pytest.raises(InvalidElement, match=f"wrong length: expected 32 bytes, got {size}"):
        group.deserialize_element(data)
    with pytest.raises(InvalidElement, match="wrong length"):
        group.scalar_mult(sc(2), data)
    with pytest.raises(InvalidElement, match="element 2: wrong length"):
        group.scalar_mult_many(sc(2), [G, G, data])


def test_non_bytes_refused() -> None:
    with pytest.raises(InvalidElement, match="expected bytes"):
        group.deserialize_element(G.hex())  # type: ignore[arg-type]
    with pytest.raises(InvalidScalar, match="expected bytes"):
        group.deserialize_scalar(bytearray(sc(1)))  # type: ignore[arg-type]


# --- RFC 9496 A.3: elements from uniform bytes -----------------------------------------


@pytest.mark.parametrize("vector", UNIFORM, ids=lambda v: v.uniform_bytes.hex()[:12])
def test_element_from_uniform(vector: UniformVector) -> None:
    if vector.label is not None:
        assert hashlib.sha512(vector.label.encode("ascii")).digest() == vector.uniform_bytes
    assert group.element_from_uniform(vector.uniform_bytes) == vector.element


def test_elements_from_uniform_batch() -> None:
    inputs = [v.uniform_bytes for v in UNIFORM] * 10  # enough for the pool to split
    assert list(group.elements_from_uniform(inputs)) == [v.element for v in UNIFORM] * 10


@pytest.mark.parametrize("size", [0, 32, 63, 65])
def test_uniform_wrong_length(size: int) -> None:
    with pytest.raises(ValueError, match="64"):
        group.element_from_uniform(bytes(size))
    with pytest.raises(ValueError, match="item 1"):
        group.elements_from_uniform([bytes(64), bytes(size)])


# --- scalars -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (sc(0), "zero"),
        (sc(L), "canonical"),
        (sc(L + 1), "canonical"),
        (b"\xff" * 32, "canonical"),
        ((L - 1).to_bytes(32, "big"), "canonical"),  # big-endian by mistake
        (sc(1)[:31], "wrong length"),
        (sc(1) + b"\x00", "wrong length"),
        (b"", "wrong length"),
    ],
)
def test_bad_scalars_refused(value: bytes, why: str) -> None:
    with pytest.raises(InvalidScalar, match=why):
        group.deserialize_scalar(value)
    with pytest.raises(InvalidScalar):
        group.scalar_mult(value, G)
    with pytest.raises(InvalidScalar):
        group.scalar_mult_many(value, [G])
    with pytest.raises(InvalidScalar):
        group.scalar_invert(value)


def test_extreme_canonical_scalars_accepted() -> None:
    assert group.deserialize_scalar(sc(1)) == sc(1)
    assert group.deserialize_scalar(sc(L - 1)) == sc(L - 1)
    # (L-1) = -1 mod L, so applying it twice is the identity map.
    assert group.scalar_mult(sc(L - 1), group.scalar_mult(sc(L - 1), G)) == G


scalars = st.integers(min_value=1, max_value=L - 1)


@settings(deadline=None)
@given(x=scalars, y=scalars)
def test_scalar_arithmetic_matches_integers(x: int, y: int) -> None:
    assert group.scalar_mul(sc(x), sc(y)) == sc(x * y % L)
    assert group.scalar_invert(sc(x)) == sc(pow(x, -1, L))


@settings(deadline=None)
@given(data=st.binary(min_size=64, max_size=64))
def test_scalar_reduce_matches_integers(data: bytes) -> None:
    assert group.scalar_reduce(data) == sc(int.from_bytes(data, "little") % L)


@settings(max_examples=30, deadline=None)
@given(x=scalars, y=scalars)
def test_scalar_mult_is_a_group_action(x: int, y: int) -> None:
    # x*(y*G) == (x*y mod L)*G, and inverting undoes it.
    xy_g = group.scalar_mult(sc(x), group.scalar_mult_base(sc(y)))
    assert xy_g == group.scalar_mult_base(sc(x * y % L))
    assert group.scalar_mult(group.scalar_invert(sc(x)), xy_g) == group.scalar_mult_base(sc(y))


def test_random_scalar() -> None:
    drawn = {group.random_scalar() for _ in range(64)}
    assert len(drawn) == 64
    for s in drawn:
        assert group.deserialize_scalar(s) == s


# --- batches: validation before any multiplication ---------------------------------------


def _elements(n: int) -> list[bytes]:
    """Plain bytes, as they come off the wire: a list, so tests can plant bad ones."""
    uniforms = [hashlib.sha512(bytes([i, 7])).digest() for i in range(n)]
    return list(group.elements_from_uniform(uniforms))


@pytest.mark.parametrize("bad_index", [0, 57, 99])
@pytest.mark.parametrize("bad", [INVALID[5].encoding, group.IDENTITY, b"\x01" * 31])
def test_batch_refuses_before_any_multiplication(bad_index: int, bad: bytes) -> None:
    elements = _elements(100)
    elements[bad_index] = bad
    before = group.scalar_mult_count()
    with pytest.raises(InvalidElement, match=f"^element {bad_index}: "):
        group.scalar_mult_many(sc(5), elements)
    with pytest.raises(InvalidElement, match=f"^element {bad_index}: "):
        group.scalar_mult_each([sc(5)] * 100, elements)
    assert group.scalar_mult_count() == before


def test_batch_names_the_first_bad_element() -> None:
    elements = _elements(40)
    elements[30] = b"short"
    elements[20] = group.IDENTITY
    elements[10] = INVALID[0].encoding
    with pytest.raises(InvalidElement, match=r"^element 10: not a canonical"):
        group.scalar_mult_many(sc(2), elements)


def test_counter_counts_every_multiplication() -> None:
    before = group.scalar_mult_count()
    group.scalar_mult_many(sc(2), _elements(50))
    group.scalar_mult(sc(2), G)
    group.scalar_mult_base(sc(2))
    assert group.scalar_mult_count() == before + 52


def test_batch_equals_single() -> None:
    elements = _elements(100)
    k = group.random_scalar()
    expected = [group.scalar_mult(k, e) for e in elements]
    assert group.scalar_mult_many(k, elements) == expected
    ks = [group.random_scalar() for _ in elements]
    assert group.scalar_mult_each(ks, elements) == [
        group.scalar_mult(s, e) for s, e in zip(ks, elements, strict=True)
    ]
    assert group.scalar_mult_many(k, []) == []


def test_batch_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 scalars for 1 elements"):
        group.scalar_mult_each([sc(1), sc(2)], [G])


def test_batch_names_the_bad_scalar() -> None:
    with pytest.raises(InvalidScalar, match=r"^scalar 1: the zero scalar"):
        group.scalar_mult_each([sc(1), sc(0)], [G, G])


def test_shared_pool_under_concurrent_callers() -> None:
    elements = _elements(64)
    keys = [sc(k) for k in range(2, 8)]
    expected = {k: [group.scalar_mult(k, e) for e in elements] for k in keys}
    results: dict[bytes, list[bytes]] = {}

    def run(k: bytes) -> None:
        results[k] = group.scalar_mult_many(k, elements)

    threads = [threading.Thread(target=run, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


# --- loading libsodium -------------------------------------------------------------------


def test_missing_libsodium_names_the_os_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libsodium-absent.so.0")
    with pytest.raises(ImportError, match="install the OS package libsodium23"):
        _sodium._load()


def test_public_surface() -> None:
    for name in group.__all__:
        assert hasattr(group, name), name


@given(st.lists(st.integers(min_value=1, max_value=group.GROUP_ORDER - 1), min_size=1, max_size=40))
def test_batch_inversion_matches_single_inversion(values: list[int]) -> None:
    scalars = [v.to_bytes(32, "little") for v in values]
    assert group.scalar_invert_many(scalars) == [group.scalar_invert(s) for s in scalars]


def test_batch_inversion_refuses_zero_and_accepts_nothing() -> None:
    assert group.scalar_invert_many([]) == []
    with pytest.raises(InvalidScalar):
        group.scalar_invert_many([group.random_scalar(), bytes(32)])


def test_checked_elements_are_not_checked_again() -> None:
    """What deserialize_elements returns carries its check; plain bytes are always checked."""
    checked = group.deserialize_elements(_elements(3))
    assert isinstance(checked, group.Elements)
    assert group.scalar_mult_many(sc(3), checked) == group.scalar_mult_many(sc(3), list(checked))
    with pytest.raises(TypeError):
        checked[0] = group.IDENTITY  # type: ignore[index]
