"""An independent oracle for the fuzz and adversarial tests: RFC 9496 section 4.3.1
(ristretto255 Decode) in plain Python integers, written from the RFC's pseudocode.

It shares no code with node.crypto (which calls libsodium), so agreement between the two on
arbitrary inputs is evidence, not a tautology. Slow (a few modular exponentiations per call)
and not constant time: for tests only.
"""

from __future__ import annotations

P = 2**255 - 19
D = (-121665 * pow(121666, -1, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _is_negative(x: int) -> bool:
    return x % P & 1 == 1


def _abs(x: int) -> int:
    x %= P
    return P - x if _is_negative(x) else x


def _sqrt_ratio_m1(u: int, v: int) -> tuple[bool, int]:
    """RFC 9496 section 4.2: (was_square, r) with r a non-negative square root of u/v, or of
    SQRT_M1 * u/v when u/v is not a square."""
    v3 = v * v % P * v % P
    v7 = v3 * v3 % P * v % P
    r = u * v3 % P * pow(u * v7 % P, (P - 5) // 8, P) % P
    check = v * r % P * r % P
    correct_sign = check == u % P
    flipped_sign = check == -u % P
    flipped_sign_i = check == -u * SQRT_M1 % P
    if flipped_sign or flipped_sign_i:
        r = r * SQRT_M1 % P
    return correct_sign or flipped_sign, _abs(r)


def decodes(encoding: bytes) -> bool:
    """Whether `encoding` is a valid ristretto255 encoding (the identity included)."""
    if len(encoding) != 32:
        return False
    s = int.from_bytes(encoding, "little")
    if s >= P or _is_negative(s):  # non-canonical field element, or negative
        return False
    ss = s * s % P
    u1 = (1 - ss) % P
    u2 = (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 % P * u1) - u2_sqr) % P
    was_square, invsqrt = _sqrt_ratio_m1(1, v * u2_sqr % P)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x % P * v % P
    x = _abs(2 * s * den_x)
    y = u1 * den_y % P
    t = x * y % P
    return was_square and not _is_negative(t) and y != 0


def is_valid_element(encoding: bytes) -> bool:
    """What RFC 9497 accepts from a peer: a valid encoding that is not the identity."""
    return decodes(encoding) and encoding != bytes(32)
