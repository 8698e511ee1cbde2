"""The server side of matching: what this node answers to an authenticated, pinned peer.

The transport authenticates the peer (TLS), looks up its `PeerRecord` on every call, maps
the errors raised here to status codes and writes the audit entries; everything the
protocol itself must refuse is refused here, before any work is done for the peer.

An evaluation batch is checked in this order, and nothing is charged or multiplied until
every check has passed: the kind is allowed by the peer's policy and known here, the
epoch is current, the sizes are sane, and every element deserializes (RFC 9497: canonical
and not the identity). Only then is the batch charged to the peer's budget, and only
after that evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from node.config import ServeLimits
from node.crypto import group, labels, oprf
from node.errors import EpochChanged, PermissionDenied, ProtocolViolation, UnknownKind
from node.identifiers import KindRegistry
from node.keys import EpochKeyring
from node.psi import tagset
from node.psi.types import (
    BATCH_ID_SIZE,
    ELEMENT_SIZE,
    MAX_TAG_CHUNK,
    PROTOCOL_VERSION,
    SUITE,
    EvalBatch,
    EvalResult,
    KindInfoView,
    NodeInfoView,
    TagChunk,
    label_aad,
)
from node.store import Store
from node.store.budget import BudgetStore, batch_key
from node.store.peers import PeerRecord
from node.store.tagsets import TagEntry


def policy_token(peer: PeerRecord) -> str:
    """Names the peer's policy: a copy of our tag set made under another one is replaced.

    Policy versions never repeat in a store (not even across removal and re-pinning)."""
    return str(peer.policy_version)


class Evaluator:
    """Answers one node's peers; holds no per-peer state of its own (it is all in the store).

    Uses `store`'s connection, so it is not shared between threads.
    """

    def __init__(
        self,
        store: Store,
        keyring: EpochKeyring,
        limits: ServeLimits,
        *,
        node_id: str,
        name: str,
        kinds: KindRegistry,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._limits = limits
        self._node_id = node_id
        self._name = name
        self._kinds = kinds
        self._budget = BudgetStore(store.conn)

    def current_epoch(self) -> int:
        return self._keyring.current_epoch()

    def node_info(self, peer: PeerRecord) -> NodeInfoView:
        """Identity, epoch, budget, and set sizes of the kinds this peer may match."""
        epoch = self.current_epoch()
        kinds = []
        for kind in self._kinds.all():
            if peer.kinds is not None and kind not in peer.kinds:
                continue
            state = self._store.tagsets.state(kind, epoch)
            kinds.append(
                KindInfoView(
                    kind=kind,
                    set_size=self._store.tagsets.live_size(kind),
                    tag_version=0 if state is None else state.version,
                )
            )
        return NodeInfoView(
            node_id=self._node_id,
            name=self._name,
            protocol_version=PROTOCOL_VERSION,
            suite=SUITE,
            epoch=epoch,
            kinds=tuple(kinds),
            budget_total=peer.budget,
            budget_remaining=self._budget.remaining(peer.node_id, epoch, peer.budget),
            max_batch_elements=self._limits.max_batch_elements,
        )

    def evaluate(self, peer: PeerRecord, epoch: int, kind: str, batch: EvalBatch) -> EvalResult:
        """BlindEvaluate one batch with the kind's key of the current epoch.

        Raises PermissionDenied (kind not allowed), UnknownKind, EpochChanged,
        ProtocolViolation (bad sizes), InvalidElement (naming the first bad index), BudgetExhausted
        or UnknownPeer (from the charge) -- each before any multiplication.
        """
        self._check_kind(peer, kind)
        current = self.current_epoch()
        if epoch != current:
            raise EpochChanged(f"epoch {epoch} is not current (current is {current})")
        if len(batch.batch_id) != BATCH_ID_SIZE:
            raise ProtocolViolation(
                f"batch_id must be {BATCH_ID_SIZE} bytes, got {len(batch.batch_id)}"
            )
        size = len(batch.blinded)
        if size % ELEMENT_SIZE:
            raise ProtocolViolation(
                f"blinded elements are {size} bytes, not a multiple of {ELEMENT_SIZE}"
            )
        n = size // ELEMENT_SIZE
        limit = self._limits.max_batch_elements
        if not 1 <= n <= limit:
            raise ProtocolViolation(f"a batch must hold 1 to {limit} elements, not {n}")
        elements = group.deserialize_elements(
            [batch.blinded[i : i + ELEMENT_SIZE] for i in range(0, size, ELEMENT_SIZE)]
        )
        remaining = self._budget.charge(
            peer.node_id,
            current,
            batch_key(batch.batch_id, batch.blinded),
            n,
            peer.budget,
            peer.name,
        )
        secret = self._keyring.kind_key(current, kind).secret
        evaluated = oprf.blind_evaluate_batch(secret, elements)
        return EvalResult(batch.batch_id, b"".join(evaluated), remaining)

    def sync_tags(
        self, peer: PeerRecord, kind: str, epoch: int, since_version: int, token: str
    ) -> Iterator[TagChunk]:
        """The current epoch's tag set of `kind`, in full or as the changes since
        `since_version`, with labels filtered by the peer's policy and sealed per entry.

        Checks and the tag set refresh happen on the call; the chunks come lazily. A full
        set is sent when the caller asks from version 0, holds a copy of another epoch or
        under another policy token, or claims a version we never reached. At least one
        chunk always comes, so the caller learns the version and epoch.
        """
        self._check_kind(peer, kind)
        if since_version < 0:
            raise ProtocolViolation(f"since_version must not be negative, got {since_version}")
        tagset.refresh(self._store, self._keyring, kind)
        current = self.current_epoch()
        state = self._store.tagsets.state(kind, current)
        version = 0 if state is None else state.version
        own_token = policy_token(peer)
        full = since_version == 0 or epoch != current or token != own_token
        full = full or since_version > version
        return self._chunks(peer, kind, current, version, 0 if full else since_version, full)

    def _chunks(
        self, peer: PeerRecord, kind: str, epoch: int, version: int, since: int, full: bool
    ) -> Iterator[TagChunk]:
        allowed = None if peer.labels is None else frozenset(peer.labels)
        token = policy_token(peer)
        after = (0, 0)
        sent = False
        while True:
            entries = self._store.tagsets.entries(
                kind,
                epoch,
                since_version=since,
                upto_version=version,
                after=after,
                include_removed=not full,
                limit=MAX_TAG_CHUNK,
            )
            if not entries and sent:
                return
            added = [e for e in entries if not e.removed]
            yield TagChunk(
                epoch=epoch,
                version=version,
                full=full,
                policy_token=token,
                added_tags=b"".join(e.tag for e in added),
                added_sealed=tuple(_seal(kind, epoch, e, allowed) for e in added),
                removed_tags=b"".join(e.tag for e in entries if e.removed),
            )
            sent = True
            if len(entries) < MAX_TAG_CHUNK:
                return
            after = (entries[-1].version, entries[-1].record_id)

    def _check_kind(self, peer: PeerRecord, kind: str) -> None:
        if peer.kinds is not None and kind not in peer.kinds:
            raise PermissionDenied(f"peer {peer.name!r} may not match kind {kind!r}")
        if kind not in self._kinds.all():
            raise UnknownKind(f"unknown kind {kind!r}")


def _seal(kind: str, epoch: int, entry: TagEntry, allowed: frozenset[str] | None) -> bytes:
    shown = [str(label) for label in json.loads(entry.labels)]
    if allowed is not None:
        shown = [label for label in shown if label in allowed]
    return labels.seal_labels(entry.label_key, shown, label_aad(kind, epoch, entry.tag))
