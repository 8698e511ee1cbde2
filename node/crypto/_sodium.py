"""Minimal ctypes binding to the ristretto255 API of the operating system's libsodium.

Why our own binding: no maintained Python binding exposes the ristretto255 functions of the
system libsodium in a form we can drive in batches (`workers` runs these calls in a process
per core); and ctypes needs no compiler at install time.

This module only moves bytes in and out of C. It enforces buffer sizes (a wrong size here
would be a memory-safety bug) but no group semantics: canonical encodings, the identity and
zero scalars are the policy of `node.crypto.group`; `workers` only runs its loops.
"""

from __future__ import annotations

import ctypes
import ctypes.util

OS_PACKAGE = "libsodium23"
_SONAME = "libsodium.so.23"

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
HASH_BYTES = 64
NONREDUCED_SCALAR_BYTES = 64

_P = ctypes.c_char_p  # in: bytes (read-only); out: a ctypes char buffer we own
_I = ctypes.c_int


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("sodium") or _SONAME
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise ImportError(
            f"libsodium ({_SONAME}) was not found: install the OS package {OS_PACKAGE} "
            f"(Debian/Ubuntu: apt-get install {OS_PACKAGE}); loading {name!r} failed: {exc}"
        ) from exc
    signatures: dict[str, tuple[list[type[_P] | type[_I]], type[_I] | None]] = {
        "crypto_core_ristretto255_is_valid_point": ([_P], _I),
        "crypto_core_ristretto255_from_hash": ([_P, _P], _I),
        "crypto_core_ristretto255_scalar_reduce": ([_P, _P], None),
        "crypto_core_ristretto255_scalar_invert": ([_P, _P], _I),
        "crypto_core_ristretto255_scalar_mul": ([_P, _P, _P], None),
        "crypto_core_ristretto255_scalar_random": ([_P], None),
        "crypto_scalarmult_ristretto255": ([_P, _P, _P], _I),
        "crypto_scalarmult_ristretto255_base": ([_P, _P], _I),
    }
    try:
        lib.sodium_init.argtypes = []
        lib.sodium_init.restype = _I
        lib.crypto_core_ristretto255_bytes.argtypes = []
        lib.crypto_core_ristretto255_bytes.restype = ctypes.c_size_t
        lib.crypto_core_ristretto255_scalarbytes.argtypes = []
        lib.crypto_core_ristretto255_scalarbytes.restype = ctypes.c_size_t
        lib.crypto_core_ristretto255_hashbytes.argtypes = []
        lib.crypto_core_ristretto255_hashbytes.restype = ctypes.c_size_t
        for fname, (argtypes, restype) in signatures.items():
            func = getattr(lib, fname)
            func.argtypes = argtypes
            func.restype = restype
    except AttributeError as exc:
        raise ImportError(
            f"{name} lacks the ristretto255 API (libsodium >= 1.0.18 is needed; "
            f"install the OS package {OS_PACKAGE}): {exc}"
        ) from exc
    if int(lib.sodium_init()) < 0:
        raise ImportError(f"sodium_init() failed in {name}")
    sizes = (
        int(lib.crypto_core_ristretto255_bytes()),
        int(lib.crypto_core_ristretto255_scalarbytes()),
        int(lib.crypto_core_ristretto255_hashbytes()),
    )
    if sizes != (ELEMENT_BYTES, SCALAR_BYTES, HASH_BYTES):
        raise ImportError(f"{name} reports unexpected ristretto255 sizes {sizes}")
    return lib


_lib = _load()
_is_valid_point = _lib.crypto_core_ristretto255_is_valid_point
_from_hash = _lib.crypto_core_ristretto255_from_hash
_scalar_reduce = _lib.crypto_core_ristretto255_scalar_reduce
_scalar_invert = _lib.crypto_core_ristretto255_scalar_invert
_scalar_mul = _lib.crypto_core_ristretto255_scalar_mul
_scalar_random = _lib.crypto_core_ristretto255_scalar_random
_scalarmult = _lib.crypto_scalarmult_ristretto255
_scalarmult_base = _lib.crypto_scalarmult_ristretto255_base


def _need(data: bytes, size: int) -> None:
    if len(data) != size:
        raise ValueError(f"expected {size} bytes, got {len(data)}")


def is_valid_point(p: bytes) -> bool:
    """True for any canonical encoding of a group element, the identity included."""
    _need(p, ELEMENT_BYTES)
    return int(_is_valid_point(p)) == 1


def from_hash(u: bytes) -> bytes:
    """RFC 9496 element derivation from 64 uniform bytes."""
    _need(u, HASH_BYTES)
    out = ctypes.create_string_buffer(ELEMENT_BYTES)
    if int(_from_hash(out, u)) != 0:
        raise ValueError("crypto_core_ristretto255_from_hash failed")
    return out.raw


def scalar_reduce(s: bytes) -> bytes:
    """64 little-endian bytes reduced modulo the group order."""
    _need(s, NONREDUCED_SCALAR_BYTES)
    out = ctypes.create_string_buffer(SCALAR_BYTES)
    _scalar_reduce(out, s)
    return out.raw


def scalar_invert(s: bytes) -> bytes | None:
    """The inverse modulo the group order; None for zero."""
    _need(s, SCALAR_BYTES)
    out = ctypes.create_string_buffer(SCALAR_BYTES)
    if int(_scalar_invert(out, s)) != 0:
        return None
    return out.raw


def scalar_mul(x: bytes, y: bytes) -> bytes:
    _need(x, SCALAR_BYTES)
    _need(y, SCALAR_BYTES)
    out = ctypes.create_string_buffer(SCALAR_BYTES)
    _scalar_mul(out, x, y)
    return out.raw


def scalar_random() -> bytes:
    """A uniform scalar in [1, L) from libsodium's CSPRNG."""
    out = ctypes.create_string_buffer(SCALAR_BYTES)
    _scalar_random(out)
    return out.raw


def scalarmult(n: bytes, p: bytes) -> bytes | None:
    """n*P; None when P does not decode or the result is the identity.

    libsodium clears the top bit of n; canonical scalars (< L < 2^253) never have it set.
    """
    _need(n, SCALAR_BYTES)
    _need(p, ELEMENT_BYTES)
    out = ctypes.create_string_buffer(ELEMENT_BYTES)
    if int(_scalarmult(out, n, p)) != 0:
        return None
    return out.raw


def scalarmult_base(n: bytes) -> bytes | None:
    """n*G; None when the result is the identity (n = 0 mod L)."""
    _need(n, SCALAR_BYTES)
    out = ctypes.create_string_buffer(ELEMENT_BYTES)
    if int(_scalarmult_base(out, n)) != 0:
        return None
    return out.raw
