"""Nodes for the transport tests: real TLS identities, keyrings and SQLite stores in tmp_path,
each able to run a real NodeServer on 127.0.0.1 port 0 and to pin the others.

Raw gRPC channels (`raw_channel`) let tests dial with any identity and any pinned certificate,
to reach the cases a PeerClient never produces on purpose."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from node.config import ServeLimits
from node.identifiers import KindRegistry
from node.identity import Identity, NodeID, generate_identity
from node.keys import EpochKeyring
from node.store import RecordIn, Store
from node.store.audit import AuditEntry
from node.store.peers import PeerRecord
from node.transport.credentials import channel_credentials
from node.transport.grpc_options import channel_options
from node.transport.server import NodeServer

DAY = "2024-05-01"


@dataclass
class TNode:
    name: str
    root: Path
    identity: Identity
    keyring: EpochKeyring
    audit_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    address: str = ""
    """HOST:PORT of its server once `serve` ran; what peers pin."""

    @property
    def db_path(self) -> Path:
        return self.root / "store.db"

    @property
    def node_id(self) -> NodeID:
        return self.identity.node_id

    def open_store(self) -> Store:
        return Store.open(self.db_path)

    def server(self, limits: ServeLimits | None = None, listen: str = "127.0.0.1:0") -> NodeServer:
        server = NodeServer(
            identity=self.identity,
            name=self.name,
            listen=listen,
            open_store=self.open_store,
            keyring=self.keyring,
            kinds=KindRegistry(),
            audit_key=self.audit_key,
            limits=limits,
        )
        self.address = server.address
        return server

    def record_of(
        self,
        other: TNode,
        *,
        cert_pem: bytes | None = None,
        node_id: NodeID | None = None,
        kinds: tuple[str, ...] | None = None,
        labels: tuple[str, ...] | None = None,
        budget: int = 1_000_000,
        addresses: tuple[str, ...] | None = None,
    ) -> PeerRecord:
        """The PeerRecord this node would store for `other` (overrides make a wrong one)."""
        return PeerRecord(
            node_id=str(node_id or other.node_id),
            name=other.name,
            cert_pem=(cert_pem or other.identity.cert_pem).decode(),
            addresses=((other.address,) if other.address else ())
            if addresses is None
            else addresses,
            kinds=kinds,
            labels=labels,
            budget=budget,
            policy_version=0,
            added_at=dt.datetime.now(dt.UTC).isoformat(),
        )

    def pin(self, other: TNode, **policy: object) -> PeerRecord:
        with self.open_store() as store:
            return store.peers.add(self.record_of(other, **policy))  # type: ignore[arg-type]

    def unpin(self, other: TNode) -> None:
        with self.open_store() as store:
            store.peers.remove(other.name)

    def peer(self, other: TNode) -> PeerRecord:
        with self.open_store() as store:
            return store.peers.find(other.name)

    def add(self, kind: str, values: Iterable[str], labels: dict[str, tuple[str, ...]]) -> None:
        rows = [RecordIn(v, labels.get(v, ()), DAY, DAY) for v in values]
        with self.open_store() as store:
            store.records.upsert_batch(kind, rows)

    def audit(self) -> list[AuditEntry]:
        """The audit log, oldest first."""
        with self.open_store() as store:
            return list(reversed(list(store.audit.iterate())))


def make_node(tmp_path: Path, name: str) -> TNode:
    root = tmp_path / name
    root.mkdir()
    keyring = EpochKeyring(root / "keys")
    keyring.create_first()
    with Store.open(root / "store.db"):
        pass
    return TNode(name, root, generate_identity(name), keyring)


def raw_channel(
    me: Identity, address: str, pinned_cert: bytes, name: NodeID, **limits: int
) -> grpc.Channel:
    """A channel dialled with `me`, trusting `pinned_cert` under `name`'s dns name."""
    max_bytes = limits.get("max_message_bytes", ServeLimits().max_message_bytes)
    return grpc.secure_channel(
        address,
        channel_credentials(me, pinned_cert),
        options=channel_options(max_bytes, name.dns_name),
    )
