"""The client side of matching: find which of our records one peer holds too.

Per kind, against the peer's current epoch:

1. Evaluate: our live records without a cached result for the peer's epoch are blinded,
   streamed to the peer in batches, and finalized as the answers come; each answered
   batch's (tag, label key) rows are stored at once, so an interrupted match (budget
   exhausted, connection lost) keeps what it paid for. A new epoch at the peer drops the
   whole cache for that peer: everything is evaluated again.
2. Sync: our copy of the peer's tag set is brought up to date, as a delta when possible.
3. Join: the peer's matches of the kind are recomputed in one transaction from the cache,
   the copy and our live records, so no match is ever half stored, and a record removed
   on either side loses its match.

All store access happens on the calling thread: the generator that the transport pulls
batches from (possibly on a thread of its own) only blinds pages that the calling thread
read for it, a bounded number ahead.
"""

from __future__ import annotations

import datetime as dt
import queue
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from node.crypto import labels, oprf
from node.errors import (
    DecryptionError,
    EpochChanged,
    InvalidElement,
    ProtocolViolation,
)
from node.identifiers import oprf_input
from node.psi.types import (
    BATCH_ID_SIZE,
    ELEMENT_SIZE,
    PROTOCOL_VERSION,
    SUITE,
    TAG_SIZE,
    EvalBatch,
    EvalResult,
    KindSummary,
    MatchProgress,
    NodeInfoView,
    TagChunk,
    label_aad,
)
from node.store import Store, transaction
from node.store.matches import PeerTagSet
from node.store.peers import PeerRecord

DEFAULT_BATCH = 4096
WINDOW = 2
"""Batches read and blinded ahead of the peer's answers: enough to keep both busy."""
_EPOCH_RETRIES = 1


class RemoteNode(Protocol):
    """One peer as the matcher sees it; the transport client implements it.

    Errors come as node errors (PermissionDenied, BudgetExhausted, ProtocolViolation,
    PeerUnavailable, ...).
    """

    def info(self) -> NodeInfoView: ...

    def evaluate(self, epoch: int, kind: str, batches: Iterator[EvalBatch]) -> Iterator[EvalResult]:
        """One answer per batch, in order; `batches` is pulled lazily."""
        ...

    def sync_tags(
        self, kind: str, epoch: int, since_version: int, policy_token: str
    ) -> Iterator[TagChunk]: ...


@dataclass(frozen=True)
class _Pending:
    batch_id: bytes
    record_ids: list[int]
    inputs: list[bytes]
    blinds: list[bytes]


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Matcher:
    """Matches our records against one pinned peer; uses `store` on the calling thread."""

    def __init__(
        self,
        store: Store,
        peer: PeerRecord,
        remote: RemoteNode,
        *,
        batch_elements: int = DEFAULT_BATCH,
        clock: Callable[[], str] = _utc_now,
    ) -> None:
        if batch_elements < 1:
            raise ValueError(f"batch_elements must be positive, not {batch_elements}")
        self._store = store
        self._peer = peer
        self._peer_id = peer.node_id
        self._remote = remote
        self._batch = batch_elements
        self._clock = clock

    def match(
        self,
        kinds: Sequence[str] | None = None,
        progress: Callable[[MatchProgress], None] | None = None,
    ) -> list[KindSummary]:
        """Match `kinds` (default: every kind we hold records or matches of) and return
        one summary per kind, in order. A kind the peer does not offer us is skipped, and
        our matches of it are dropped. Errors from the peer propagate; what was finished
        before (cached evaluations, whole kinds) stays stored.
        """
        retries = _EPOCH_RETRIES
        while True:
            try:
                return self._match(kinds, progress)
            except EpochChanged as exc:
                # The peer rotated its key during the match: start over in the new epoch.
                if retries == 0:
                    raise ProtocolViolation(
                        f"peer {self._peer.name!r} keeps changing its epoch ({exc}); "
                        "try the match again later"
                    ) from None
                retries -= 1

    def _match(
        self, kinds: Sequence[str] | None, progress: Callable[[MatchProgress], None] | None
    ) -> list[KindSummary]:
        info = self._remote.info()
        self._check_info(info)
        self._store.grants.record(
            self._peer_id, info.epoch, info.budget_total, info.budget_remaining, self._clock()
        )
        matches = self._store.matches
        matches.drop_stale_cache(self._peer_id, info.epoch)
        if kinds is None:
            wanted = sorted(
                set(self._store.tagsets.record_kinds()) | matches.known_kinds(self._peer_id)
            )
        else:
            wanted = list(dict.fromkeys(kinds))
        batch = max(1, min(self._batch, info.max_batch_elements))
        summaries = []
        for kind in wanted:
            offered = info.kind(kind)
            if offered is None:
                matches.drop_kind(self._peer_id, kind)
                summaries.append(
                    KindSummary(kind, skipped=f"peer {self._peer.name!r} does not offer it to us")
                )
                continue
            summaries.append(self._match_kind(kind, info.epoch, offered.set_size, batch, progress))
        return summaries

    def _check_info(self, info: NodeInfoView) -> None:
        name = self._peer.name
        if info.node_id != self._peer_id:
            raise ProtocolViolation(
                f"peer {name!r} says it is {info.node_id}, but {self._peer_id} is pinned"
            )
        if info.protocol_version != PROTOCOL_VERSION or info.suite != SUITE:
            raise ProtocolViolation(
                f"peer {name!r} speaks protocol {info.protocol_version} with {info.suite!r}; "
                f"this node speaks {PROTOCOL_VERSION} with {SUITE!r}"
            )
        if info.max_batch_elements < 1:
            raise ProtocolViolation(f"peer {name!r} accepts no evaluation batches")

    def _match_kind(
        self,
        kind: str,
        epoch: int,
        peer_set_size: int,
        batch: int,
        progress: Callable[[MatchProgress], None] | None,
    ) -> KindSummary:
        cached = self._store.matches.cached_count(self._peer_id, kind, epoch)
        # A key rotated between info() and the evaluation ends it with EpochChanged.
        evaluated = self._evaluate(kind, epoch, batch, progress)
        received, removed, full = self._sync(kind, epoch, progress)
        found, new, bad = self._join(kind, epoch, progress)
        return KindSummary(
            kind=kind,
            evaluated=evaluated,
            cached=cached,
            tags_received=received,
            tags_removed=removed,
            full_sync=full,
            peer_set_size=peer_set_size,
            matches=found,
            new_matches=new,
            labels_undecryptable=bad,
        )

    # --- 1. evaluate ---------------------------------------------------------------------

    def _evaluate(
        self,
        kind: str,
        epoch: int,
        batch: int,
        progress: Callable[[MatchProgress], None] | None,
    ) -> int:
        store = self._store.matches
        total = self._store.tagsets.live_size(kind) - store.cached_count(self._peer_id, kind, epoch)
        feed: queue.Queue[list[tuple[int, str]] | None] = queue.Queue()
        pending: deque[_Pending] = deque()
        stop = threading.Event()
        remaining: int | None = None
        after = 0
        exhausted = False

        def read_page() -> None:
            nonlocal after, exhausted
            if exhausted:
                return
            page = store.pending(self._peer_id, kind, epoch, after, batch)
            if not page:
                exhausted = True
                feed.put(None)
                return
            after = page[-1][0]
            feed.put(page)

        def batches() -> Iterator[EvalBatch]:
            while True:
                page = feed.get()
                if page is None or stop.is_set():
                    return
                inputs = [oprf_input(kind, value) for _, value in page]
                blinds, blinded = oprf.blind_batch(inputs)
                batch_id = secrets.token_bytes(BATCH_ID_SIZE)
                pending.append(_Pending(batch_id, [rid for rid, _ in page], inputs, blinds))
                yield EvalBatch(batch_id, b"".join(blinded))

        read_page()
        if exhausted:
            return 0
        for _ in range(WINDOW - 1):
            read_page()
        done = 0
        try:
            for result in self._remote.evaluate(epoch, kind, batches()):
                if not pending:
                    raise ProtocolViolation(
                        f"peer {self._peer.name!r} answered a batch that was not sent"
                    )
                sent = pending.popleft()
                rows = self._finalize(sent, result)
                store.put_cache(self._peer_id, epoch, kind, rows)
                remaining = result.budget_remaining
                done += len(rows)
                if progress is not None:
                    progress(MatchProgress(kind, "evaluate", done, max(total, done)))
                read_page()
        finally:
            stop.set()
            feed.put(None)
            if remaining is not None:
                self._store.grants.update_remaining(self._peer_id, epoch, remaining, self._clock())
        if pending or not exhausted:
            raise ProtocolViolation(
                f"peer {self._peer.name!r} ended the evaluation of {kind} early, "
                f"after {done} elements"
            )
        return done

    def _finalize(self, sent: _Pending, result: EvalResult) -> list[tuple[int, bytes, bytes]]:
        name = self._peer.name
        n = len(sent.record_ids)
        if result.batch_id != sent.batch_id:
            raise ProtocolViolation(f"peer {name!r} answered batches out of order")
        if len(result.evaluated) != n * ELEMENT_SIZE:
            raise ProtocolViolation(
                f"peer {name!r} answered a batch of {n} elements with {len(result.evaluated)} bytes"
            )
        evaluated = [
            result.evaluated[i : i + ELEMENT_SIZE]
            for i in range(0, len(result.evaluated), ELEMENT_SIZE)
        ]
        try:
            outputs = oprf.finalize_batch(sent.inputs, sent.blinds, evaluated)
        except InvalidElement as exc:
            raise ProtocolViolation(
                f"peer {name!r} answered with an invalid element: {exc}"
            ) from exc
        return [
            (rid, *labels.tag_and_key(out))
            for rid, out in zip(sent.record_ids, outputs, strict=True)
        ]

    # --- 2. sync -------------------------------------------------------------------------

    def _sync(
        self, kind: str, epoch: int, progress: Callable[[MatchProgress], None] | None
    ) -> tuple[int, int, bool]:
        store = self._store.matches
        copy = store.tagset(self._peer_id, kind)
        since = copy.version if copy is not None and copy.epoch == epoch else 0
        token = copy.policy_token if copy is not None else ""
        first: TagChunk | None = None
        received = removed = 0
        for chunk in self._remote.sync_tags(kind, epoch, since, token):
            added, gone = self._check_chunk(chunk, first, since, epoch)
            with transaction(self._store.conn):
                if first is None and chunk.full:
                    store.start_full_sync(self._peer_id, kind, epoch, chunk.policy_token)
                store.apply_tags(self._peer_id, kind, added, gone)
            first = first or chunk
            received += len(added)
            removed += len(gone)
            if progress is not None:
                progress(MatchProgress(kind, "sync", received + removed, received + removed))
        if first is None:
            raise ProtocolViolation(f"peer {self._peer.name!r} sent no tag set for {kind}")
        store.finish_sync(self._peer_id, PeerTagSet(kind, epoch, first.version, first.policy_token))
        return received, removed, first.full

    def _check_chunk(
        self, chunk: TagChunk, first: TagChunk | None, since: int, epoch: int
    ) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        name = self._peer.name
        if chunk.epoch != epoch:
            raise EpochChanged(
                f"peer's epoch changed from {epoch} to {chunk.epoch} during the match"
            )
        if first is not None and (chunk.version, chunk.full, chunk.policy_token) != (
            first.version,
            first.full,
            first.policy_token,
        ):
            raise ProtocolViolation(f"peer {name!r} changed version or mode within one sync")
        if since == 0 and not chunk.full:
            raise ProtocolViolation(f"peer {name!r} answered a full sync request with a delta")
        if len(chunk.added_tags) % TAG_SIZE or len(chunk.removed_tags) % TAG_SIZE:
            raise ProtocolViolation(f"peer {name!r} sent tags not a multiple of {TAG_SIZE} bytes")
        tags = _split(chunk.added_tags, TAG_SIZE)
        if len(tags) != len(chunk.added_sealed):
            raise ProtocolViolation(
                f"peer {name!r} sent {len(tags)} tags with {len(chunk.added_sealed)} label blobs"
            )
        return list(zip(tags, chunk.added_sealed, strict=True)), _split(
            chunk.removed_tags, TAG_SIZE
        )

    # --- 3. join -------------------------------------------------------------------------

    def _join(
        self, kind: str, epoch: int, progress: Callable[[MatchProgress], None] | None
    ) -> tuple[int, int, int]:
        store = self._store.matches
        found: list[tuple[int, Sequence[str]]] = []
        bad = 0
        with transaction(self._store.conn):
            for c in store.candidates(self._peer_id, kind, epoch):
                try:
                    shared = labels.open_labels(
                        c.label_key, c.sealed, label_aad(kind, epoch, c.tag)
                    )
                except DecryptionError:
                    bad += 1
                    continue
                found.append((c.record_id, shared))
            new = store.replace_matches(self._peer_id, kind, found, self._clock())
        if progress is not None:
            progress(MatchProgress(kind, "join", len(found), len(found)))
        return len(found), new, bad


def _split(packed: bytes, size: int) -> list[bytes]:
    return [packed[i : i + size] for i in range(0, len(packed), size)]
