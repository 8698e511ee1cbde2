"""The ristretto255 group (RFC 9496) over the system libsodium, with strict input checks.

Guarantees:
- Every scalar multiplication here first deserializes its element with the checks of
  RFC 9496 section 4.3.1 and RFC 9497 section 3.3: exactly 32 bytes, a canonical
  ristretto255 encoding (bit 255 clear, which libsodium 1.0.18 does not check itself), and
  not the identity. An element that fails is never multiplied; `InvalidElement` says which
  check failed (and, in batches, the index of the first bad element).
- Every scalar argument is a canonical 32-byte little-endian value in [1, L); anything else
  raises `InvalidScalar`.
- Batch forms validate every element before multiplying any, then split the work in chunks
  over worker processes, one per core (`workers`: threads scale to only 1.6x here).

libsodium is reached through our own minimal ctypes binding (`_sodium`): no maintained
Python binding exposes the ristretto255 API of the system libsodium for batch use, and
nothing needs a compiler at install time.

Wrong sizes of values that only our own code produces (uniform bytes, list lengths) raise a
plain `ValueError`: they are bugs, not a peer's or an operator's mistake.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from node.crypto import _sodium, workers
from node.errors import InvalidElement, InvalidScalar

__all__ = [
    "ELEMENT_SIZE",
    "GROUP_ORDER",
    "IDENTITY",
    "SCALAR_SIZE",
    "UNIFORM_SIZE",
    "Elements",
    "deserialize_element",
    "deserialize_elements",
    "deserialize_scalar",
    "element_from_uniform",
    "elements_from_uniform",
    "random_scalar",
    "scalar_invert",
    "scalar_invert_many",
    "scalar_mul",
    "scalar_mult",
    "scalar_mult_base",
    "scalar_mult_count",
    "scalar_mult_each",
    "scalar_mult_many",
    "scalar_reduce",
]

ELEMENT_SIZE = 32
SCALAR_SIZE = 32
UNIFORM_SIZE = 64
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
IDENTITY = bytes(ELEMENT_SIZE)

_mult_lock = threading.Lock()
_mult_total = 0


def scalar_mult_count() -> int:
    """Scalar multiplications started by this process (for metrics, and for tests that
    prove an invalid element stops a batch before any multiplication)."""
    return _mult_total


def _count_mults(n: int) -> None:
    global _mult_total  # noqa: PLW0603 - one process-wide counter, guarded by its lock
    with _mult_lock:
        _mult_total += n


def _shape_problem(data: object) -> str | None:
    if not isinstance(data, bytes):
        return f"expected bytes, got {type(data).__name__}"
    if len(data) != ELEMENT_SIZE:
        return f"wrong length: expected {ELEMENT_SIZE} bytes, got {len(data)}"
    return None


_NOT_CANONICAL = "not a canonical ristretto255 encoding"
_IS_IDENTITY = "the identity element is not allowed"


def _is_canonical(data: bytes) -> bool:
    # libsodium 1.0.18 ignores bit 255 when it decodes (later releases refuse it), so an
    # encoding with that bit set would pass as a second encoding of a valid element.
    return not data[31] & 0x80 and _sodium.is_valid_point(data)


def deserialize_element(data: bytes) -> bytes:
    """Return `data` if it encodes a non-identity group element, else raise InvalidElement."""
    problem = _shape_problem(data)
    if problem is not None:
        raise InvalidElement(problem)
    if not _is_canonical(data):
        raise InvalidElement(_NOT_CANONICAL)
    if data == IDENTITY:
        raise InvalidElement(_IS_IDENTITY)
    return data


class Elements(tuple[bytes, ...]):
    """Encodings already known valid: made only by `deserialize_elements` (which checked
    them) and by `elements_from_uniform` (canonical by construction). The batch
    multiplications take them without checking a second time."""

    __slots__ = ()


def deserialize_elements(elements: Sequence[bytes]) -> Elements:
    """Validate every element; raise InvalidElement for the first bad one, naming its index.

    The cheap checks (type, length, bit 255, identity) run here; libsodium's decoding, about
    5 us an element, runs on every core for a large batch.
    """
    items = list(elements)
    first_bad, problem = len(items), ""
    for i, item in enumerate(items):
        shape = _shape_problem(item)
        if shape is None and item[31] & 0x80:
            shape = _NOT_CANONICAL
        if shape is None and item == IDENTITY:
            shape = _IS_IDENTITY
        if shape is not None:
            first_bad, problem = i, shape
            break
    head = b"".join(items[:first_bad])
    spans = workers.spans(first_bad)
    found = workers.run(
        workers.first_invalid, [(head[a * ELEMENT_SIZE : b * ELEMENT_SIZE],) for a, b in spans]
    )
    for (start, _end), index in zip(spans, found, strict=True):
        if index >= 0:
            first_bad, problem = start + index, _NOT_CANONICAL
            break
    if first_bad < len(items):
        raise InvalidElement(f"element {first_bad}: {problem}")
    return Elements(items)


def _split(packed: bytes, size: int = ELEMENT_SIZE) -> list[bytes]:
    return [packed[i : i + size] for i in range(0, len(packed), size)]


def _products(spans: list[tuple[int, int]], results: list[tuple[bytes, int]]) -> list[bytes]:
    out: list[bytes] = []
    for (start, _end), (packed, refused) in zip(spans, results, strict=True):
        if refused >= 0:  # unreachable for validated inputs: the group has prime order
            raise InvalidElement(f"element {start + refused}: the product is the identity element")
        out.extend(_split(packed))
    return out


def _checked(elements: Sequence[bytes]) -> Elements:
    return elements if isinstance(elements, Elements) else deserialize_elements(elements)


def deserialize_scalar(data: bytes) -> bytes:
    """Return `data` if it is a canonical little-endian scalar in [1, L), else raise."""
    if not isinstance(data, bytes):
        raise InvalidScalar(f"expected bytes, got {type(data).__name__}")
    if len(data) != SCALAR_SIZE:
        raise InvalidScalar(f"wrong length: expected {SCALAR_SIZE} bytes, got {len(data)}")
    value = int.from_bytes(data, "little")
    if value >= GROUP_ORDER:
        raise InvalidScalar("not canonical: the value is not below the group order")
    if value == 0:
        raise InvalidScalar("the zero scalar is not allowed")
    return data


def _scalars(scalars: Sequence[bytes]) -> list[bytes]:
    out = []
    for i, s in enumerate(scalars):
        try:
            out.append(deserialize_scalar(s))
        except InvalidScalar as exc:
            raise InvalidScalar(f"scalar {i}: {exc}") from None
    return out


def scalar_mult(scalar: bytes, element: bytes) -> bytes:
    """scalar * element, after both are deserialized with the checks above."""
    s = deserialize_scalar(scalar)
    e = deserialize_element(element)
    _count_mults(1)
    product = _sodium.scalarmult(s, e)
    if product is None:  # unreachable for validated inputs: the group has prime order
        raise InvalidElement("the product is the identity element")
    return product


def scalar_mult_base(scalar: bytes) -> bytes:
    """scalar * G for the RFC 9496 generator G."""
    s = deserialize_scalar(scalar)
    _count_mults(1)
    product = _sodium.scalarmult_base(s)
    if product is None:  # unreachable for a scalar in [1, L)
        raise InvalidElement("the product is the identity element")
    return product


def scalar_mult_many(scalar: bytes, elements: Sequence[bytes]) -> list[bytes]:
    """[scalar * e for e in elements]: all elements validated first, then multiplied on
    every core."""
    s = deserialize_scalar(scalar)
    valid = _checked(elements)
    _count_mults(len(valid))
    packed = b"".join(valid)
    spans = workers.spans(len(valid))
    chunks = [(s, packed[a * ELEMENT_SIZE : b * ELEMENT_SIZE]) for a, b in spans]
    return _products(spans, workers.run(workers.mult_one, chunks))


def scalar_mult_each(scalars: Sequence[bytes], elements: Sequence[bytes]) -> list[bytes]:
    """[s * e for s, e in zip(scalars, elements)]: all inputs validated first."""
    if len(scalars) != len(elements):
        raise ValueError(f"{len(scalars)} scalars for {len(elements)} elements")
    ss = b"".join(_scalars(scalars))
    valid = _checked(elements)
    _count_mults(len(valid))
    packed = b"".join(valid)
    spans = workers.spans(len(valid))
    chunks = [
        (ss[a * SCALAR_SIZE : b * SCALAR_SIZE], packed[a * ELEMENT_SIZE : b * ELEMENT_SIZE])
        for a, b in spans
    ]
    return _products(spans, workers.run(workers.mult_each, chunks))


def element_from_uniform(data: bytes) -> bytes:
    """RFC 9496 section 4.3.4: the element derived from 64 uniform bytes (may be the
    identity for contrived inputs; callers that must refuse it check)."""
    if len(data) != UNIFORM_SIZE:
        raise ValueError(f"expected {UNIFORM_SIZE} uniform bytes, got {len(data)}")
    return _sodium.from_hash(data)


def elements_from_uniform(uniforms: Sequence[bytes]) -> Elements:
    """element_from_uniform over a batch, on every core."""
    for i, u in enumerate(uniforms):
        if len(u) != UNIFORM_SIZE:
            raise ValueError(f"item {i}: expected {UNIFORM_SIZE} uniform bytes, got {len(u)}")
    packed = b"".join(uniforms)
    spans = workers.spans(len(uniforms))
    chunks = [(packed[a * UNIFORM_SIZE : b * UNIFORM_SIZE],) for a, b in spans]
    return Elements(e for part in workers.run(workers.from_uniform, chunks) for e in _split(part))


def scalar_reduce(data: bytes) -> bytes:
    """64 little-endian bytes modulo L (the result may be zero)."""
    if len(data) != UNIFORM_SIZE:
        raise ValueError(f"expected {UNIFORM_SIZE} bytes to reduce, got {len(data)}")
    return _sodium.scalar_reduce(data)


def scalar_invert(scalar: bytes) -> bytes:
    """The inverse of a scalar in [1, L) modulo L."""
    inverse = _sodium.scalar_invert(deserialize_scalar(scalar))
    if inverse is None:  # unreachable for a scalar in [1, L)
        raise InvalidScalar("the zero scalar has no inverse")
    return inverse


def scalar_invert_many(scalars: Sequence[bytes]) -> list[bytes]:
    """Inverses of many scalars with one inversion (Montgomery's trick): three
    multiplications each instead of an exponentiation each, about 8x cheaper."""
    checked = [deserialize_scalar(s) for s in scalars]
    if not checked:
        return []
    prefix = [checked[0]]
    for s in checked[1:]:
        prefix.append(_sodium.scalar_mul(prefix[-1], s))
    acc = _sodium.scalar_invert(prefix[-1])
    if acc is None:  # unreachable: a product of non-zero scalars modulo a prime
        raise InvalidScalar("the zero scalar has no inverse")
    inverses = [b""] * len(checked)
    for i in range(len(checked) - 1, 0, -1):
        inverses[i] = _sodium.scalar_mul(acc, prefix[i - 1])
        acc = _sodium.scalar_mul(acc, checked[i])
    inverses[0] = acc
    return inverses


def scalar_mul(x: bytes, y: bytes) -> bytes:
    """x * y modulo L (non-zero, as L is prime)."""
    return _sodium.scalar_mul(deserialize_scalar(x), deserialize_scalar(y))


def random_scalar() -> bytes:
    """A uniform scalar in [1, L) from the OS CSPRNG via libsodium."""
    while True:
        s = _sodium.scalar_random()
        if s != bytes(SCALAR_SIZE):
            return s
