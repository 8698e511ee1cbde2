"""The layout of a node's data directory, and creating one.

config.toml        settings (no secrets)
node.key           ECDSA P-256 private key, 0600
node.crt           self-signed certificate
keys/epoch-N.key   OPRF key seeds, 0600, in a 0700 folder
keys/audit.key     key of the audit log's MAC chain, 0600
store.db           SQLite store (WAL), 0600: it holds the clues themselves
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from node.config import NodeConfig
from node.errors import ConfigError
from node.identifiers import KindRegistry
from node.identity import Identity, MemberCard, generate_identity
from node.keys import EpochKeyring
from node.secretfile import make_private_dir, read_private, write_private
from node.store import Store


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def key_path(self) -> Path:
        return self.root / "node.key"

    @property
    def cert_path(self) -> Path:
        return self.root / "node.crt"

    @property
    def db_path(self) -> Path:
        return self.root / "store.db"

    @property
    def audit_key_path(self) -> Path:
        return self.root / "keys" / "audit.key"

    @property
    def keyring(self) -> EpochKeyring:
        return EpochKeyring(self.root / "keys")

    def is_node(self) -> bool:
        return self.config_path.exists() or self.key_path.exists()

    def init(self, config: NodeConfig) -> Identity:
        """Create a new node here; refuse if one exists, so a key is never overwritten."""
        if self.is_node():
            raise ConfigError(f"{self.root} already holds a node; refusing to overwrite it")
        make_private_dir(self.root)
        identity = generate_identity(config.name)
        write_private(self.key_path, identity.key_pem)
        self.cert_path.write_bytes(identity.cert_pem)
        self.keyring.create_first()
        write_private(self.audit_key_path, secrets.token_bytes(32))
        with Store.open(self.db_path):
            pass
        # Written last: its presence marks a complete node.
        self.config_path.write_text(config.to_toml(), encoding="utf-8")
        return identity

    def require_node(self) -> None:
        if not self.config_path.exists():
            raise ConfigError(
                f"{self.root} is not a node data dir (no config.toml); "
                "create one with: aif-node --data-dir DIR init --name NAME --listen HOST:PORT"
            )

    def config(self) -> NodeConfig:
        self.require_node()
        return NodeConfig.load(self.config_path)

    def identity(self) -> Identity:
        self.require_node()
        try:
            cert = self.cert_path.read_bytes()
        except FileNotFoundError as exc:
            raise ConfigError(f"{self.cert_path} is missing") from exc
        return Identity(key_pem=read_private(self.key_path), cert_pem=cert)

    def audit_key(self) -> bytes:
        self.require_node()
        return read_private(self.audit_key_path)

    def kinds(self) -> KindRegistry:
        return KindRegistry(opaque=frozenset(self.config().opaque_kinds))

    def open_store(self) -> Store:
        self.config()  # a broken config is named before any work starts
        return Store.open(self.db_path)

    def card(self) -> MemberCard:
        config = self.config()
        identity = self.identity()
        return MemberCard(
            name=config.name,
            node_id=identity.node_id,
            addresses=config.advertise or (config.listen,),
            cert_pem=identity.cert_pem,
        )
