"""Label AEAD: tag/key derivation, sealing, and every way opening must fail."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from node.crypto import labels
from node.errors import DecryptionError, InputError

OUT = hashlib.sha512(b"an OPRF output").digest()
KEY = labels.tag_and_key(OUT)[1]
AAD = b"peer|phone|epoch 7"

label_lists = st.lists(st.text(max_size=40), max_size=12)


def encoded_size(items: list[str]) -> int:
    """Length of the canonical encoding before padding, computed from the format note."""
    return 2 + sum(2 + len(s.encode("utf-8")) for s in items)


def seal_raw(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """An authentic blob around any plaintext, to test the decoder behind the AEAD."""
    nonce = b"\x01" * 12
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


# --- tag and key ---------------------------------------------------------------------------


def test_tag_and_key_sizes_and_determinism() -> None:
    tag, key = labels.tag_and_key(OUT)
    assert (len(tag), len(key)) == (labels.TAG_SIZE, 32) == (16, 32)
    assert labels.tag_and_key(OUT) == (tag, key)
    assert tag != key[:16]
    assert tag not in OUT and key not in OUT


@settings(deadline=None)
@given(a=st.binary(min_size=64, max_size=64), b=st.binary(min_size=64, max_size=64))
def test_different_outputs_give_different_tags_and_keys(a: bytes, b: bytes) -> None:
    if a != b:
        ta, ka = labels.tag_and_key(a)
        tb, kb = labels.tag_and_key(b)
        assert ta != tb
        assert ka != kb


@pytest.mark.parametrize("size", [0, 32, 63, 65])
def test_tag_and_key_needs_an_oprf_output(size: int) -> None:
    with pytest.raises(ValueError, match="64-byte"):
        labels.tag_and_key(bytes(size))


# --- seal / open -------------------------------------------------------------------------------


@settings(deadline=None)
@given(items=label_lists, aad=st.binary(max_size=40))
def test_roundtrip_returns_sorted_labels(items: list[str], aad: bytes) -> None:
    blob = labels.seal_labels(KEY, items, aad)
    assert labels.open_labels(KEY, blob, aad) == sorted(items)


@settings(deadline=None)
@given(items=label_lists)
def test_length_is_bucketed(items: list[str]) -> None:
    blob = labels.seal_labels(KEY, items, AAD)
    body = len(blob) - labels.BLOB_OVERHEAD
    assert body % labels.PAD_BLOCK == 0
    assert body == -(-encoded_size(items) // 32) * 32


def test_similar_label_sets_look_alike() -> None:
    sizes = {len(labels.seal_labels(KEY, ls, AAD)) for ls in ([], ["a"], ["fraud ring"], ["x"] * 5)}
    assert sizes == {labels.BLOB_OVERHEAD + 32}


def test_nonce_is_fresh() -> None:
    assert labels.seal_labels(KEY, ["a"], AAD) != labels.seal_labels(KEY, ["a"], AAD)


@settings(deadline=None)
@given(items=label_lists, other=st.binary(min_size=32, max_size=32))
def test_wrong_key_fails(items: list[str], other: bytes) -> None:
    blob = labels.seal_labels(KEY, items, AAD)
    if other != KEY:
        with pytest.raises(DecryptionError, match="authentication"):
            labels.open_labels(other, blob, AAD)


@settings(deadline=None)
@given(items=label_lists, aad=st.binary(max_size=40))
def test_wrong_aad_fails(items: list[str], aad: bytes) -> None:
    blob = labels.seal_labels(KEY, items, AAD)
    if aad != AAD:
        with pytest.raises(DecryptionError, match="authentication"):
            labels.open_labels(KEY, blob, aad)


@settings(deadline=None)
@given(items=label_lists, data=st.data())
def test_flipped_bit_fails(items: list[str], data: st.DataObject) -> None:
    blob = bytearray(labels.seal_labels(KEY, items, AAD))
    bit = data.draw(st.integers(min_value=0, max_value=len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DecryptionError):
        labels.open_labels(KEY, bytes(blob), AAD)


@pytest.mark.parametrize("size", [0, 11, 12, 27, 28, 59])
def test_short_blob_fails(size: int) -> None:
    blob = labels.seal_labels(KEY, [], AAD)[:size]
    with pytest.raises(DecryptionError, match="too short"):
        labels.open_labels(KEY, blob, AAD)


def test_truncated_or_extended_blob_fails() -> None:
    blob = labels.seal_labels(KEY, ["a" * 40], AAD)
    for changed in (blob[:-1], blob[:-32], blob + bytes(32)):
        with pytest.raises(DecryptionError):
            labels.open_labels(KEY, changed, AAD)


def test_wrong_key_size() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        labels.seal_labels(KEY[:16], ["a"], AAD)
    with pytest.raises(DecryptionError, match="32-byte"):
        labels.open_labels(KEY[:16], labels.seal_labels(KEY, ["a"], AAD), AAD)


# Authentic ciphertexts around malformed plaintexts: the decoder must refuse each, for the
# reason named (so each case really gets past the AEAD).
MALFORMED = {
    "not padded": (b"\x00\x00" + bytes(31), "not padded"),
    "padding not zero": (b"\x00\x00" + bytes(29) + b"\x01", "bad padding"),
    "padding too long": (b"\x00\x00" + bytes(62), "bad padding"),
    "count past end": (b"\xff\xff\x00\x01a" + bytes(27), "truncated"),
    "length past end": (b"\x00\x01\x00\x40a" + bytes(27), "truncated"),
    "bad utf-8": (b"\x00\x01\x00\x02\xff\xfe" + bytes(26), "UTF-8"),
    "unsorted": (b"\x00\x02\x00\x01b\x00\x01a" + bytes(24), "canonical order"),
}


@pytest.mark.parametrize(("plaintext", "reason"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_plaintext_fails(plaintext: bytes, reason: str) -> None:
    blob = seal_raw(KEY, plaintext, AAD)
    with pytest.raises(DecryptionError, match=reason):
        labels.open_labels(KEY, blob, AAD)


def test_canonical_plaintext_from_elsewhere_opens() -> None:
    # The same format written by hand (not by seal_labels) opens: the format is the contract.
    blob = seal_raw(KEY, b"\x00\x02\x00\x01a\x00\x02bc" + bytes(23), AAD)
    assert labels.open_labels(KEY, blob, AAD) == ["a", "bc"]


def test_unencodable_labels_refused() -> None:
    with pytest.raises(InputError, match="UTF-8"):
        labels.seal_labels(KEY, ["\ud800"], AAD)
    with pytest.raises(InputError, match="at most 65535"):
        labels.seal_labels(KEY, ["x" * 65536], AAD)
    with pytest.raises(InputError, match="at most 65535"):
        labels.seal_labels(KEY, ["x"] * 65536, AAD)


def test_public_surface() -> None:
    assert {"TAG_SIZE", "tag_and_key", "seal_labels", "open_labels"} <= set(labels.__all__)
    for name in labels.__all__:
        assert hasattr(labels, name), name
