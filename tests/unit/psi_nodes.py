"""Nodes for the psi tests: each a real keyring and SQLite store in its own folder, wired to
the others by an in-process RemoteNode that calls the other node's real Evaluator, as the
transport would after authenticating the caller (no network, nothing mocked)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from node.config import ServeLimits
from node.errors import UnknownPeer
from node.identifiers import KindRegistry
from node.identity import NodeID
from node.keys import EpochKeyring
from node.psi.evaluator import Evaluator
from node.psi.matcher import Matcher
from node.psi.types import EvalBatch, EvalResult, NodeInfoView, TagChunk
from node.sampledata import phone
from node.store import RecordIn, Store
from node.store.peers import PeerRecord

LABELS = ("fraud_ring", "fake_complaint", "mule_account", "identity_theft")
DAY = "2024-05-01"


def node_id(name: str) -> str:
    return str(NodeID(hashlib.sha256(name.encode()).digest()))


@dataclass
class LocalRemote:
    """`caller` talking to `server`: the peer record is looked up on every call, as the
    transport does per RPC, so pinning changes take effect at once."""

    server: Node
    caller_id: str
    batches: int = 0
    syncs: int = 0

    def _peer(self) -> PeerRecord:
        peer = self.server.store.peers.get_by_id(self.caller_id)
        if peer is None:
            raise UnknownPeer(f"node ID {self.caller_id} is not a pinned peer")
        return peer

    def info(self) -> NodeInfoView:
        return self.server.evaluator.node_info(self._peer())

    def evaluate(self, epoch: int, kind: str, batches: Iterator[EvalBatch]) -> Iterator[EvalResult]:
        for batch in batches:
            self.batches += 1
            yield self.server.evaluator.evaluate(self._peer(), epoch, kind, batch)

    def sync_tags(
        self, kind: str, epoch: int, since_version: int, policy_token: str
    ) -> Iterator[TagChunk]:
        self.syncs += 1
        return self.server.evaluator.sync_tags(
            self._peer(), kind, epoch, since_version, policy_token
        )


@dataclass
class Node:
    name: str
    root: Path
    store: Store
    keyring: EpochKeyring
    evaluator: Evaluator
    node_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.node_id = node_id(self.name)

    def add(self, kind: str, values: Iterable[str], labels: dict[str, tuple[str, ...]]) -> None:
        rows = [RecordIn(v, labels.get(v, ()), DAY, DAY) for v in values]
        self.store.records.upsert_batch(kind, rows)

    def remove(self, kind: str, values: Iterable[str]) -> None:
        self.store.records.remove(kind, values)

    def pin(
        self,
        other: Node,
        *,
        kinds: tuple[str, ...] | None = None,
        labels: tuple[str, ...] | None = None,
        budget: int = 1_000_000,
    ) -> PeerRecord:
        """Pin `other` here, with the policy `other` gets when it calls this node."""
        return self.store.peers.add(
            PeerRecord(
                node_id=other.node_id,
                name=other.name,
                cert_pem="PEM",
                addresses=(),
                kinds=kinds,
                labels=labels,
                budget=budget,
                policy_version=0,
                added_at="2024-05-01T10:00:00+00:00",
            )
        )

    def remote(self, other: Node) -> LocalRemote:
        return LocalRemote(other, self.node_id)

    def matcher(
        self, other: Node, remote: object = None, batch: int = 64, at: str = "2024-05-02T00:00:00"
    ) -> Matcher:
        peer = self.store.peers.find(other.name)
        link = self.remote(other) if remote is None else remote
        return Matcher(
            self.store,
            peer,
            link,  # type: ignore[arg-type]
            batch_elements=batch,
            clock=lambda: at,
        )

    def matched(self, peer: str) -> dict[tuple[str, str], tuple[str, ...]]:
        """(kind, value) -> labels of our stored matches with `peer`."""
        return {
            (c.kind, c.value): p.labels
            for c in self.store.matches.collisions(1)
            for p in c.peers
            if p.peer == peer
        }


def make_node(tmp_path: Path, name: str, max_batch: int = 256) -> Node:
    root = tmp_path / name
    root.mkdir()
    keyring = EpochKeyring(root / "keys")
    keyring.create_first()
    store = Store.open(root / "store.db")
    evaluator = Evaluator(
        store,
        keyring,
        ServeLimits(max_batch_elements=max_batch),
        node_id=node_id(name),
        name=name,
        kinds=KindRegistry(),
    )
    return Node(name, root, store, keyring, evaluator)


def phones(rng: random.Random, n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add(phone(rng))
    return sorted(out)


def emails(rng: random.Random, n: int) -> list[str]:
    return sorted({f"user{rng.randrange(10**9)}@example.com" for _ in range(n)})[:n]


def random_labels(rng: random.Random, values: Iterable[str]) -> dict[str, tuple[str, ...]]:
    return {v: tuple(sorted(rng.sample(LABELS, rng.randrange(len(LABELS) + 1)))) for v in values}


def expected_matches(
    mine: dict[str, set[str]],
    theirs: dict[str, set[str]],
    their_labels: dict[str, tuple[str, ...]],
    shown: tuple[str, ...] | None,
) -> dict[tuple[str, str], tuple[str, ...]]:
    """Ground truth, from plain set intersection: (kind, value) -> labels the peer shows us."""
    out = {}
    for kind, values in mine.items():
        for value in values & theirs.get(kind, set()):
            labels = their_labels.get(value, ())
            if shown is not None:
                labels = tuple(label for label in labels if label in shown)
            out[(kind, value)] = tuple(sorted(labels))
    return out
