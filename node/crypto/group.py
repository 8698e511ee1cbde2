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
  over one thread pool shared by the process and sized to the number of cores. The
  multiplications run in C with the GIL released, so the pool scales over cores.

libsodium is reached through our own minimal ctypes binding (`_sodium`): no maintained
Python binding exposes the ristretto255 API of the system libsodium for batch use;
`ctypes.CDLL` releases the GIL during each foreign call, so threads scale over cores; and
nothing needs a compiler at install time.

Wrong sizes of values that only our own code produces (uniform bytes, list lengths) raise a
plain `ValueError`: they are bugs, not a peer's or an operator's mistake.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from node.crypto import _sodium
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

_T = TypeVar("_T")

# Below this many items per chunk the pool's hand-off costs more than it saves.
_MIN_CHUNK = 16
_WORKERS = os.cpu_count() or 1
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()

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


def _executor() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - created on first batch, shared by every caller
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="aif-crypto")
        return _pool


def _spans(n: int) -> list[tuple[int, int]]:
    parts = max(1, min(_WORKERS * 4, n // _MIN_CHUNK))
    if _WORKERS == 1:
        parts = 1
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


def _run_chunked(work: Callable[[int, int], list[_T]], n: int) -> list[_T]:
    """Run `work(start, end)` over [0, n) in chunks; results in order; the exception of
    the lowest failing chunk wins, so "first bad index" stays deterministic."""
    spans = _spans(n)
    if len(spans) == 1:
        return work(0, n)
    futures = [_executor().submit(work, start, end) for start, end in spans]
    out: list[_T] = []
    for future in futures:
        out.extend(future.result())
    return out


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

    Runs in the calling thread: a validity check is so short (about 5 us) that handing it
    to the pool costs more in GIL hand-offs than a second core gains.
    """
    items = list(elements)
    for i, item in enumerate(items):
        problem = _shape_problem(item)
        if problem is None and not _is_canonical(item):
            problem = _NOT_CANONICAL
        if problem is None and item == IDENTITY:
            problem = _IS_IDENTITY
        if problem is not None:
            raise InvalidElement(f"element {i}: {problem}")
    return Elements(items)


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


def _products(results: list[bytes | None]) -> list[bytes]:
    out = []
    for i, product in enumerate(results):
        if product is None:  # unreachable for validated inputs: the group has prime order
            raise InvalidElement(f"element {i}: the product is the identity element")
        out.append(product)
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
    """[scalar * e for e in elements]: all elements validated first, then multiplied."""
    s = deserialize_scalar(scalar)
    valid = _checked(elements)

    def work(start: int, end: int) -> list[bytes | None]:
        _count_mults(end - start)
        return _sodium.scalarmult_one(s, valid[start:end])

    return _products(_run_chunked(work, len(valid)))


def scalar_mult_each(scalars: Sequence[bytes], elements: Sequence[bytes]) -> list[bytes]:
    """[s * e for s, e in zip(scalars, elements)]: all inputs validated first."""
    if len(scalars) != len(elements):
        raise ValueError(f"{len(scalars)} scalars for {len(elements)} elements")
    ss = _scalars(scalars)
    valid = _checked(elements)

    def work(start: int, end: int) -> list[bytes | None]:
        _count_mults(end - start)
        return _sodium.scalarmult_each(ss[start:end], valid[start:end])

    return _products(_run_chunked(work, len(valid)))


def element_from_uniform(data: bytes) -> bytes:
    """RFC 9496 section 4.3.4: the element derived from 64 uniform bytes (may be the
    identity for contrived inputs; callers that must refuse it check)."""
    if len(data) != UNIFORM_SIZE:
        raise ValueError(f"expected {UNIFORM_SIZE} uniform bytes, got {len(data)}")
    return _sodium.from_hash(data)


def elements_from_uniform(uniforms: Sequence[bytes]) -> Elements:
    """element_from_uniform over a batch, in parallel."""
    for i, u in enumerate(uniforms):
        if len(u) != UNIFORM_SIZE:
            raise ValueError(f"item {i}: expected {UNIFORM_SIZE} uniform bytes, got {len(u)}")

    items = list(uniforms)

    def work(start: int, end: int) -> list[bytes]:
        return _sodium.from_hash_each(items[start:end])

    return Elements(_run_chunked(work, len(items)))


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
