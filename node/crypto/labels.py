"""The labels a member shares for one record, sealed so that only a holder of the record
can read them.

From the record's 64-byte OPRF output `out` come a public 16-byte tag (published in the tag
set) and a 32-byte label key, each from its own domain-separated SHA-512 hash, so the tag
says nothing about the key. A peer that holds the same identifier computes the same `out`
through the OPRF, finds the tag and opens the labels; any other peer sees an opaque blob.

Blob format: nonce (12 random bytes) || ChaCha20-Poly1305 ciphertext of the canonical
encoding of the sorted labels: count (2 bytes, big-endian), then per label its UTF-8 length
(2 bytes) and bytes, then zero padding to a multiple of 32 bytes, so the length of a blob
tells little about its labels. Opening accepts only that canonical form.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from node.errors import DecryptionError, InputError

__all__ = [
    "BLOB_OVERHEAD",
    "KEY_SIZE",
    "PAD_BLOCK",
    "TAG_SIZE",
    "open_labels",
    "seal_labels",
    "tag_and_key",
]

TAG_SIZE = 16
KEY_SIZE = 32
PAD_BLOCK = 32
OPRF_OUTPUT_SIZE = 64
NONCE_SIZE = 12
AEAD_TAG_SIZE = 16
BLOB_OVERHEAD = NONCE_SIZE + AEAD_TAG_SIZE
MAX_LABELS = 2**16 - 1
MAX_LABEL_BYTES = 2**16 - 1

_TAG_DST = b"aif-node/v1/record-tag"
_KEY_DST = b"aif-node/v1/label-key"


def _derive(dst: bytes, out: bytes) -> bytes:
    return hashlib.sha512(len(dst).to_bytes(1, "big") + dst + out).digest()


def tag_and_key(out: bytes) -> tuple[bytes, bytes]:
    """(tag, label key) for a 64-byte OPRF output."""
    if len(out) != OPRF_OUTPUT_SIZE:
        raise ValueError(f"expected a {OPRF_OUTPUT_SIZE}-byte OPRF output, got {len(out)}")
    return _derive(_TAG_DST, out)[:TAG_SIZE], _derive(_KEY_DST, out)[:KEY_SIZE]


def _encode(labels: Sequence[str]) -> bytes:
    if len(labels) > MAX_LABELS:
        raise InputError(f"{len(labels)} labels; at most {MAX_LABELS} per record")
    parts = [len(labels).to_bytes(2, "big")]
    for label in sorted(labels):
        try:
            raw = label.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"label {label!r} is not encodable as UTF-8") from exc
        if len(raw) > MAX_LABEL_BYTES:
            raise InputError(f"a label is {len(raw)} bytes; at most {MAX_LABEL_BYTES}")
        parts += [len(raw).to_bytes(2, "big"), raw]
    body = b"".join(parts)
    return body + bytes(-len(body) % PAD_BLOCK)


def _decode(plaintext: bytes) -> list[str]:
    if len(plaintext) % PAD_BLOCK or len(plaintext) < 2:
        raise DecryptionError("labels: plaintext is not padded to the block size")
    count = int.from_bytes(plaintext[:2], "big")
    pos = 2
    labels: list[str] = []
    for _ in range(count):
        if pos + 2 > len(plaintext):
            raise DecryptionError("labels: truncated encoding")
        size = int.from_bytes(plaintext[pos : pos + 2], "big")
        pos += 2
        if pos + size > len(plaintext):
            raise DecryptionError("labels: truncated encoding")
        try:
            labels.append(plaintext[pos : pos + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise DecryptionError("labels: a label is not valid UTF-8") from None
        pos += size
    padding = plaintext[pos:]
    if len(padding) >= PAD_BLOCK or padding != bytes(len(padding)):
        raise DecryptionError("labels: bad padding")
    if labels != sorted(labels):
        raise DecryptionError("labels: not in canonical order")
    return labels


def seal_labels(key: bytes, labels: Sequence[str], aad: bytes) -> bytes:
    """nonce || ChaCha20-Poly1305(key, padded canonical labels, aad)."""
    if len(key) != KEY_SIZE:
        raise ValueError(f"expected a {KEY_SIZE}-byte label key, got {len(key)}")
    nonce = os.urandom(NONCE_SIZE)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, _encode(labels), aad)


def open_labels(key: bytes, blob: bytes, aad: bytes) -> list[str]:
    """The sorted labels sealed in `blob`; DecryptionError on any failure."""
    if len(key) != KEY_SIZE:
        raise DecryptionError(f"expected a {KEY_SIZE}-byte label key, got {len(key)}")
    if len(blob) < BLOB_OVERHEAD + PAD_BLOCK:
        raise DecryptionError(f"labels: blob of {len(blob)} bytes is too short")
    nonce, ciphertext = blob[:NONCE_SIZE], blob[NONCE_SIZE:]
    try:
        plaintext = ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise DecryptionError(
            "labels: authentication failed (wrong key or aad, or tampered with)"
        ) from None
    return _decode(plaintext)
