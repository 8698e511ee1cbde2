"""What the fuzzers check: each `check_*` takes one input, runs it through the node's real
code, and asserts the contract for inputs from outside: a clean result or one of the node's
own errors, never another exception, and nothing done or changed on a refusal.

Used by the hypothesis properties (tests/fuzz/test_properties.py, structured inputs) and the
coverage-guided harnesses (tests/fuzz/fuzz_*.py, raw bytes), so both hold the same contract.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from google.protobuf.message import DecodeError

from node.crypto import group, labels, oprf
from node.errors import (
    DecryptionError,
    InputError,
    InvalidElement,
    InvalidIdentifier,
    NodeError,
    ProtocolViolation,
)
from node.identifiers import BUILTIN_KINDS, KindRegistry, oprf_input
from node.ingest import ImportResult, import_file
from node.psi.types import TAG_SIZE
from node.store import Store
from node.store.peers import PeerRecord
from node.transport import serde
from node.transport.pb import federation_pb2 as pb
from node.transport.status import status_of
from tests.fuzz.reference import is_valid_element
from tests.unit.psi_nodes import Node, make_node

ELEMENT = group.ELEMENT_SIZE
MAX_BATCH = 8
"""The fuzzed server's batch limit: small, so that fuzzed batches reach it."""
OPAQUE_KIND = "case_id"
REGISTRY = KindRegistry(opaque=frozenset({OPAQUE_KIND}))
KINDS = (*BUILTIN_KINDS, OPAQUE_KIND)
SCALAR = (7).to_bytes(32, "little")


def _scratch() -> Path:
    """A folder that lives as long as the process (the harnesses run outside pytest)."""
    folder = Path(tempfile.mkdtemp(prefix="aif-fuzz-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _split(packed: bytes) -> list[bytes]:
    return [packed[i : i + ELEMENT] for i in range(0, len(packed), ELEMENT)]


# --- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A real Evaluator over a real store with a few records, and the pinned peer it serves."""

    node: Node
    peer: PeerRecord


@cache
def server() -> Server:
    root = _scratch()
    node, client = make_node(root, "server", MAX_BATCH), make_node(root, "client")
    node.add("phone", [f"+86138{i:08d}" for i in range(20)], {})
    return Server(node, node.pin(client))


def _not_ours(exc: NodeError) -> None:
    """A refusal must be the peer's doing (a status it can act on), never INTERNAL."""
    assert status_of(exc) is not grpc.StatusCode.INTERNAL, exc


def check_evaluate_request(data: bytes) -> str:
    """Parse, convert and evaluate: a refusal before any multiplication, or a result for a
    batch whose elements are all valid (cross-checked by the independent decoder)."""
    try:
        msg = pb.EvaluateRequest.FromString(data)
    except DecodeError:
        return "undecodable"
    try:
        call = serde.evaluate_call_from_pb(msg)
    except ProtocolViolation:
        assert len(msg.kind) > serde.MAX_KIND_CHARS
        return "malformed"
    s = server()
    mults = group.scalar_mult_count()
    try:
        result = s.node.evaluator.evaluate(s.peer, call.epoch, call.kind, call.batch)
    except NodeError as exc:
        _not_ours(exc)
        assert group.scalar_mult_count() == mults, "a refused batch was multiplied"
        if isinstance(exc, InvalidElement):
            assert not all(is_valid_element(e) for e in _split(call.batch.blinded))
        return type(exc).__name__
    elements = _split(call.batch.blinded)
    assert 1 <= len(elements) <= MAX_BATCH
    assert all(is_valid_element(e) for e in elements)
    assert len(result.evaluated) == len(call.batch.blinded)
    assert result.batch_id == call.batch.batch_id
    return "evaluated"


def check_sync_request(data: bytes) -> str:
    """Parse, convert and serve a tag set: a refusal, or chunks that are whole."""
    try:
        msg = pb.SyncTagsRequest.FromString(data)
    except DecodeError:
        return "undecodable"
    try:
        call = serde.sync_call_from_pb(msg)
    except ProtocolViolation:
        return "malformed"
    s = server()
    try:
        chunks = list(
            s.node.evaluator.sync_tags(
                s.peer, call.kind, call.epoch, call.since_version, call.policy_token
            )
        )
    except NodeError as exc:
        _not_ours(exc)
        return type(exc).__name__
    assert chunks
    for chunk in chunks:
        assert serde.tag_chunk_from_pb(serde.tag_chunk_to_pb(chunk)) == chunk
    return "served"


def check_tag_chunk(data: bytes) -> str:
    """What a client does with a peer's chunk: refuse it, or hold consistent parts."""
    try:
        msg = pb.TagSetChunk.FromString(data)
    except DecodeError:
        return "undecodable"
    try:
        chunk = serde.tag_chunk_from_pb(msg)
    except ProtocolViolation:
        return "malformed"
    assert len(chunk.added_tags) % TAG_SIZE == 0 and len(chunk.removed_tags) % TAG_SIZE == 0
    assert len(chunk.added_sealed) == len(chunk.added_tags) // TAG_SIZE
    assert b"".join(chunk.added_sealed) == msg.added_sealed
    assert serde.tag_chunk_from_pb(serde.tag_chunk_to_pb(chunk)) == chunk
    return "chunk"


@cache
def _blinds(n: int) -> tuple[list[bytes], list[bytes]]:
    inputs = [oprf_input("phone", f"+86139{i:08d}") for i in range(n)]
    blinds, _ = oprf.blind_batch(inputs)
    return inputs, blinds


def check_evaluate_response(data: bytes) -> str:
    """What a client does with a peer's answer: finalize it if every element is valid,
    else refuse it with InvalidElement, before any multiplication."""
    try:
        msg = pb.EvaluateResponse.FromString(data)
    except DecodeError:
        return "undecodable"
    result = serde.eval_result_from_pb(msg)
    if len(result.evaluated) % ELEMENT or not result.evaluated:
        return "wrong size"  # the matcher refuses it on its size alone
    evaluated = _split(result.evaluated)[:64]
    inputs, blinds = _blinds(64)
    n = len(evaluated)
    mults = group.scalar_mult_count()
    try:
        outputs = oprf.finalize_batch(inputs[:n], blinds[:n], evaluated)
    except InvalidElement:
        assert not all(is_valid_element(e) for e in evaluated)
        assert group.scalar_mult_count() == mults
        return "invalid element"
    assert all(is_valid_element(e) for e in evaluated)
    assert len(outputs) == n and all(len(o) == 64 for o in outputs)
    return "finalized"


def check_node_info(data: bytes) -> str:
    try:
        msg = pb.NodeInfo.FromString(data)
    except DecodeError:
        return "undecodable"
    info = serde.node_info_from_pb(msg)
    assert serde.node_info_from_pb(serde.node_info_to_pb(info)) == info
    return "info"


MESSAGE_CHECKS = (
    check_evaluate_request,
    check_sync_request,
    check_tag_chunk,
    check_evaluate_response,
    check_node_info,
)


# --- crypto --------------------------------------------------------------------------------


def check_element(data: bytes) -> bool:
    """deserialize_element accepts exactly what the independent decoder calls a valid,
    non-identity element, and scalar_mult works on exactly those (multiplying nothing else)."""
    expected = is_valid_element(data)
    try:
        group.deserialize_element(data)
        accepted = True
    except InvalidElement:
        accepted = False
    assert accepted == expected, data.hex()
    mults = group.scalar_mult_count()
    try:
        product = group.scalar_mult(SCALAR, data)
    except InvalidElement:
        assert not accepted
        assert group.scalar_mult_count() == mults
    else:
        assert accepted
        assert is_valid_element(product)
    return accepted


def canonical_labels(items: list[str]) -> bytes:
    """The labels' canonical plaintext, written here from the format in node.crypto.labels'
    docstring: count, then each label's length and UTF-8 bytes, zero-padded to 32 bytes."""
    body = len(items).to_bytes(2, "big")
    for item in sorted(items):
        raw = item.encode()
        body += len(raw).to_bytes(2, "big") + raw
    return body + bytes(-len(body) % 32)


def check_open_labels(key: bytes, blob: bytes, aad: bytes) -> list[str] | None:
    """Any blob: its labels, or DecryptionError; never another exception."""
    try:
        return labels.open_labels(key, blob, aad)
    except DecryptionError:
        return None


LABEL_KEY = bytes(range(32))


def check_label_plaintext(plaintext: bytes, aad: bytes = b"aad") -> list[str] | None:
    """An authentic blob around any plaintext: opened only when the plaintext is the
    canonical encoding of the labels it yields (one encoding per set of labels)."""
    nonce = bytes(12)
    blob = nonce + ChaCha20Poly1305(LABEL_KEY).encrypt(nonce, plaintext, aad)
    opened = check_open_labels(LABEL_KEY, blob, aad)
    if opened is not None:
        assert plaintext == canonical_labels(opened)
    return opened


# --- operator input ------------------------------------------------------------------------


def check_normalize(kind: str, text: str) -> str | None:
    """A canonical value that normalizes to itself, or InvalidIdentifier for this kind."""
    try:
        canonical = REGISTRY.normalize(kind, text)
    except InvalidIdentifier as exc:
        assert exc.kind == kind
        return None
    assert REGISTRY.normalize(kind, canonical) == canonical, (text, canonical)
    oprf_input(kind, canonical)  # every canonical value is an OPRF input
    return canonical


class ImportTarget:
    """One store that fuzzed files are imported into; replaced when it grows large."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or _scratch()
        self.files = 0
        self.store = self._fresh()

    def _fresh(self) -> Store:
        return Store.open(self.folder / f"store-{self.files}.db")

    def snapshot(self) -> list[Any]:
        return self.store.conn.execute("SELECT * FROM records ORDER BY id").fetchall()

    def check(
        self,
        content: bytes,
        kind: str,
        suffix: str = ".csv",
        skip_invalid: bool = False,
        encoding: str = "utf-8",
    ) -> ImportResult | None:
        """Import `content` as a file: an ImportResult that adds up, or an InputError and
        the store exactly as it was."""
        self.files += 1
        path = self.folder / f"input-{self.files}{suffix}"
        path.write_bytes(content)
        before = self.snapshot()
        try:
            result = import_file(
                self.store, path, kind, REGISTRY, skip_invalid=skip_invalid, encoding=encoding
            )
        except InputError:
            assert self.snapshot() == before, "a refused import changed the store"
            return None
        finally:
            os.unlink(path)
        assert result.inserted + result.merged + result.skipped == result.rows_read
        assert result.skipped == 0 or skip_invalid
        assert sum(result.skipped_reasons.values()) == result.skipped
        assert len(self.snapshot()) - len(before) <= result.inserted
        if len(before) > 5_000:
            self.store.close()
            self.store = self._fresh()
        return result
