"""RFC 9497 OPRF, mode 0x00 (modeOPRF), suite ristretto255-SHA512.

The client side is `blind` and `finalize`, the server side `blind_evaluate`; `evaluate` is
the server computing its own PRF output directly (RFC 9497 section 3.3.1 "Evaluate"). The
batch forms compute exactly what a loop over the single forms would, with the scalar
multiplications spread over the thread pool of `node.crypto.group`, and validate every
received element before multiplying any.

Every group element taken as an argument (blinded or evaluated elements from a peer) is
deserialized with the RFC's checks (canonical encoding, not the identity) and refused with
`InvalidElement`; scalars with `InvalidScalar`; an input longer than 2^16-1 bytes (it could
not be length-prefixed in Finalize) with `InputError`.

The keyword `context` exists for one reason: the RFC's VOPRF vectors (mode 0x01) differ from
OPRF only in the context string for the computations implemented here, so tests reuse them,
including the batched ones. The node never passes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from node.crypto import group
from node.errors import InputError, InvalidScalar

__all__ = [
    "CONTEXT_STRING",
    "MAX_INPUT_SIZE",
    "OUTPUT_SIZE",
    "SEED_SIZE",
    "blind",
    "blind_batch",
    "blind_evaluate",
    "blind_evaluate_batch",
    "context_string",
    "derive_key_pair",
    "evaluate",
    "evaluate_batch",
    "expand_message_xmd",
    "finalize",
    "finalize_batch",
    "hash_to_group",
    "hash_to_scalar",
]

MODE_OPRF = 0x00
SUITE_IDENTIFIER = b"ristretto255-SHA512"


def context_string(mode: int) -> bytes:
    """RFC 9497 section 3.1: "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier."""
    return b"OPRFV1-" + mode.to_bytes(1, "big") + b"-" + SUITE_IDENTIFIER


CONTEXT_STRING = context_string(MODE_OPRF)
OUTPUT_SIZE = 64  # Nh: SHA-512
SEED_SIZE = group.SCALAR_SIZE  # Ns: DeriveKeyPair takes seed[Ns]
MAX_INPUT_SIZE = 2**16 - 1

_XMD_B_IN_BYTES = 64  # SHA-512 output size
_XMD_Z_PAD = hashlib.sha512(bytes(128))  # s_in_bytes = 128: hash state after Z_pad, copied


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-512."""
    ell = -(-len_in_bytes // _XMD_B_IN_BYTES)
    if len_in_bytes < 1 or ell > 255 or len_in_bytes > 65535:
        raise InputError(f"expand_message_xmd: len_in_bytes {len_in_bytes} out of range")
    if not 1 <= len(dst) <= 255:
        raise InputError(f"expand_message_xmd: DST must be 1..255 bytes, got {len(dst)}")
    dst_prime = dst + len(dst).to_bytes(1, "big")
    h0 = _XMD_Z_PAD.copy()
    h0.update(msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime)
    b_0 = h0.digest()
    b_i = hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()
    blocks = [b_i]
    b_0_int = int.from_bytes(b_0, "big")
    for i in range(2, ell + 1):
        mixed = (b_0_int ^ int.from_bytes(b_i, "big")).to_bytes(_XMD_B_IN_BYTES, "big")
        b_i = hashlib.sha512(mixed + i.to_bytes(1, "big") + dst_prime).digest()
        blocks.append(b_i)
    return b"".join(blocks)[:len_in_bytes]


def hash_to_group(input: bytes, *, context: bytes = CONTEXT_STRING) -> bytes:
    """RFC 9497 section 4.1: element derivation of expand_message_xmd(input, DST, 64) with
    DST = "HashToGroup-" || contextString. May return the identity (only for inputs nobody
    can find); callers that must refuse it check."""
    uniform = expand_message_xmd(input, b"HashToGroup-" + context, group.UNIFORM_SIZE)
    return group.element_from_uniform(uniform)


def hash_to_scalar(msg: bytes, dst: bytes | None = None) -> bytes:
    """RFC 9497 section 4.1: expand_message_xmd(msg, DST, 64) reduced mod L; default DST
    "HashToScalar-" || contextString. The result may be zero."""
    if dst is None:
        dst = b"HashToScalar-" + CONTEXT_STRING
    return group.scalar_reduce(expand_message_xmd(msg, dst, group.UNIFORM_SIZE))


def derive_key_pair(
    seed: bytes, info: bytes, *, context: bytes = CONTEXT_STRING
) -> tuple[bytes, bytes]:
    """RFC 9497 section 3.2.1: (skS, pkS) from a 32-byte seed and public info."""
    if len(seed) != SEED_SIZE:
        raise InputError(f"DeriveKeyPair: seed must be {SEED_SIZE} bytes, got {len(seed)}")
    _check_length("info", info)
    derive_input = seed + len(info).to_bytes(2, "big") + info
    dst = b"DeriveKeyPair" + context
    for counter in range(256):
        sk = hash_to_scalar(derive_input + counter.to_bytes(1, "big"), dst)
        if sk != bytes(group.SCALAR_SIZE):
            return sk, group.scalar_mult_base(sk)
    raise InvalidScalar("DeriveKeyPair: no non-zero scalar in 256 tries")  # pragma: no cover


def _check_length(what: str, value: bytes) -> None:
    if len(value) > MAX_INPUT_SIZE:
        raise InputError(f"{what} is {len(value)} bytes; at most {MAX_INPUT_SIZE} allowed")


def _check_inputs(inputs: Sequence[bytes]) -> None:
    for i, value in enumerate(inputs):
        if len(value) > MAX_INPUT_SIZE:
            raise InputError(f"input {i} is {len(value)} bytes; at most {MAX_INPUT_SIZE} allowed")


def _input_elements(inputs: Sequence[bytes], context: bytes) -> group.Elements:
    """HashToGroup over a batch, refusing inputs that map to the identity (RFC 9497
    InvalidInputError)."""
    dst = b"HashToGroup-" + context
    uniforms = [expand_message_xmd(x, dst, group.UNIFORM_SIZE) for x in inputs]
    points = group.elements_from_uniform(uniforms)
    for i, point in enumerate(points):
        if point == group.IDENTITY:
            raise InputError(f"input {i} hashes to the identity element")
    return points


def _finalize_hash(input: bytes, element: bytes) -> bytes:
    return hashlib.sha512(
        len(input).to_bytes(2, "big")
        + input
        + len(element).to_bytes(2, "big")
        + element
        + b"Finalize"
    ).digest()


def blind(
    input: bytes,
    blind: bytes | None = None,
    *,
    context: bytes = CONTEXT_STRING,
) -> tuple[bytes, bytes]:
    """Client: (blind, blindedElement). A random blind when none is given; a given blind
    must be a canonical non-zero scalar (tests pass the RFC's)."""
    scalars, blinded = blind_batch([input], None if blind is None else [blind], context=context)
    return scalars[0], blinded[0]


def blind_batch(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes] | None = None,
    *,
    context: bytes = CONTEXT_STRING,
) -> tuple[list[bytes], list[bytes]]:
    """Client, batched: (blinds, blindedElements), one of each per input, in order."""
    _check_inputs(inputs)
    if blinds is None:
        scalars = [group.random_scalar() for _ in inputs]
    else:
        if len(blinds) != len(inputs):
            raise ValueError(f"{len(blinds)} blinds for {len(inputs)} inputs")
        scalars = [group.deserialize_scalar(b) for b in blinds]
    points = _input_elements(inputs, context)
    return scalars, group.scalar_mult_each(scalars, points)


def blind_evaluate(sk: bytes, blinded_element: bytes) -> bytes:
    """Server: skS * blindedElement, refusing a non-canonical or identity element."""
    return group.scalar_mult(sk, blinded_element)


def blind_evaluate_batch(sk: bytes, blinded: Sequence[bytes]) -> list[bytes]:
    """Server, batched: refuses the whole batch, before any multiplication, if one element
    is bad (InvalidElement names its index)."""
    return group.scalar_mult_many(sk, blinded)


def finalize(input: bytes, blind: bytes, evaluated_element: bytes) -> bytes:
    """Client: the 64-byte PRF output for `input` from the server's evaluated element."""
    return finalize_batch([input], [blind], [evaluated_element])[0]


def finalize_batch(
    inputs: Sequence[bytes], blinds: Sequence[bytes], evaluated: Sequence[bytes]
) -> list[bytes]:
    """Client, batched: validates every evaluated element before unblinding any."""
    if not len(inputs) == len(blinds) == len(evaluated):
        raise ValueError(
            f"{len(inputs)} inputs, {len(blinds)} blinds, {len(evaluated)} evaluated elements"
        )
    _check_inputs(inputs)
    inverses = group.scalar_invert_many(blinds)
    unblinded = group.scalar_mult_each(inverses, evaluated)
    return [_finalize_hash(x, n) for x, n in zip(inputs, unblinded, strict=True)]


def evaluate(sk: bytes, input: bytes, *, context: bytes = CONTEXT_STRING) -> bytes:
    """Server: the PRF output for its own input, without blinding."""
    return evaluate_batch(sk, [input], context=context)[0]


def evaluate_batch(
    sk: bytes, inputs: Sequence[bytes], *, context: bytes = CONTEXT_STRING
) -> list[bytes]:
    """Server, batched: PRF outputs for its own inputs, in order."""
    _check_inputs(inputs)
    points = _input_elements(inputs, context)
    issued = group.scalar_mult_many(sk, points)
    return [_finalize_hash(x, n) for x, n in zip(inputs, issued, strict=True)]
