"""The values the matching protocol exchanges, free of any transport.

The transport converts these to and from protobuf messages in one place; the psi layer never
sees a message. Byte strings are packed as on the wire: elements of 32 bytes, tags of 16.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.crypto.group import ELEMENT_SIZE
from node.crypto.labels import TAG_SIZE

PROTOCOL_VERSION = 1
SUITE = "ristretto255-SHA512"
BATCH_ID_SIZE = 16
MAX_TAG_CHUNK = 8192
"""Entries (added and removed) per TagChunk: about 0.7 MB of tags and sealed labels."""

__all__ = [
    "BATCH_ID_SIZE",
    "ELEMENT_SIZE",
    "MAX_TAG_CHUNK",
    "PROTOCOL_VERSION",
    "SUITE",
    "TAG_SIZE",
    "EvalBatch",
    "EvalResult",
    "KindInfoView",
    "KindSummary",
    "MatchProgress",
    "NodeInfoView",
    "TagChunk",
    "label_aad",
]


def label_aad(kind: str, epoch: int, tag: bytes) -> bytes:
    """What a sealed label blob is bound to: its kind, epoch and tag, so that a blob cannot
    be replayed under another tag (epoch and tag have fixed sizes: the layout is unambiguous).
    Part of the wire contract."""
    return kind.encode("utf-8") + epoch.to_bytes(8, "big") + tag


@dataclass(frozen=True)
class KindInfoView:
    kind: str
    set_size: int
    """Live records of the kind: a peer always learns the other's set sizes."""
    tag_version: int
    """The version of the tag set as last built; a sync brings it up to date first."""


@dataclass(frozen=True)
class NodeInfoView:
    node_id: str
    name: str
    protocol_version: int
    suite: str
    epoch: int
    kinds: tuple[KindInfoView, ...]
    """Only the kinds the caller may match."""
    budget_total: int
    budget_remaining: int
    max_batch_elements: int

    def kind(self, kind: str) -> KindInfoView | None:
        return next((k for k in self.kinds if k.kind == kind), None)


@dataclass(frozen=True)
class EvalBatch:
    batch_id: bytes
    """16 random bytes; a batch retried with the same elements is charged once."""
    blinded: bytes
    """n blinded elements of 32 bytes, packed."""

    @property
    def size(self) -> int:
        return len(self.blinded) // ELEMENT_SIZE


@dataclass(frozen=True)
class EvalResult:
    batch_id: bytes
    evaluated: bytes
    """n evaluated elements of 32 bytes, packed, in the order of the batch."""
    budget_remaining: int


@dataclass(frozen=True)
class TagChunk:
    """Part of a tag set sync; every chunk of one sync has the same epoch, version, full
    and policy_token. `full` chunks replace the caller's copy; others change it."""

    epoch: int
    version: int
    full: bool
    policy_token: str
    added_tags: bytes
    """k tags of 16 bytes, packed."""
    added_sealed: tuple[bytes, ...]
    """k sealed label blobs, one per added tag."""
    removed_tags: bytes
    """m tags of 16 bytes, packed."""

    @property
    def added_count(self) -> int:
        return len(self.added_tags) // TAG_SIZE

    @property
    def removed_count(self) -> int:
        return len(self.removed_tags) // TAG_SIZE


@dataclass(frozen=True)
class KindSummary:
    """What one match did for one kind, against one peer."""

    kind: str
    evaluated: int = 0
    """Own records evaluated by the peer this time."""
    cached: int = 0
    """Own records whose result from an earlier match was reused."""
    tags_received: int = 0
    """Tags added or changed in our copy of the peer's set by this sync."""
    tags_removed: int = 0
    full_sync: bool = False
    peer_set_size: int = 0
    matches: int = 0
    """Own live records the peer holds too, after this match."""
    new_matches: int = 0
    labels_undecryptable: int = 0
    """Tags that matched but whose labels did not open: the peer sent garbage; not stored."""
    skipped: str | None = None
    """Why the kind was not matched (the peer does not offer it to us), or None."""


@dataclass(frozen=True)
class MatchProgress:
    """Reported during a match, for a progress bar: `done` of `total` in `stage`."""

    kind: str
    stage: str
    """'evaluate', 'sync' or 'join'."""
    done: int
    total: int
