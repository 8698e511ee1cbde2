"""The layout of a node's data directory, and creating one.

config.toml        settings (no secrets)
node.key           ECDSA P-256 private key, 0600
node.crt           self-signed certificate
keys/epoch-N.key   OPRF key seeds, 0600, in a 0700 folder
keys/audit.key     key of the audit log's MAC chain, 0600
store.db           SQLite store (WAL), 0600: it holds the clues themselves
locks/             lock files between the node's processes, 0700
retired/           keys and certificates replaced by `identity rotate`, 0600, in a 0700 folder
"""

from __future__ import annotations

import datetime as dt
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
    def lock_dir(self) -> Path:
        """Advisory locks between this node's processes (one match per peer at a time)."""
        return self.root / "locks"

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

    @property
    def retired_dir(self) -> Path:
        return self.root / "retired"

    def identity(self) -> Identity:
        self.require_node()
        self._finish_identity_rotation()
        try:
            cert = self.cert_path.read_bytes()
        except FileNotFoundError as exc:
            raise ConfigError(f"{self.cert_path} is missing") from exc
        return Identity(key_pem=read_private(self.key_path), cert_pem=cert)

    def rotate_identity(self) -> tuple[Identity, Identity]:
        """Give the node a new key and certificate (a new node ID); return (old, new).

        The old pair is kept under retired/ (0600 in a 0700 folder) until the operator
        destroys it. The new pair is written beside the old first and swapped in by renames,
        key before certificate; a crash in between is finished by the next `identity()`.
        """
        old = self.identity()
        new = generate_identity(self.config().name)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        make_private_dir(self.retired_dir)
        write_private(self.retired_dir / f"node-{stamp}.key", old.key_pem)
        (self.retired_dir / f"node-{stamp}.crt").write_bytes(old.cert_pem)
        cert_next, key_next = self._next_paths()
        write_private(cert_next, new.cert_pem, overwrite=True)
        write_private(key_next, new.key_pem, overwrite=True)
        key_next.replace(self.key_path)
        self._finish_identity_rotation()
        return old, new

    def _next_paths(self) -> tuple[Path, Path]:
        return self.root / "node.crt.next", self.root / "node.key.next"

    def _finish_identity_rotation(self) -> None:
        """Complete or undo a rotation a crash interrupted: the next certificate goes in when
        node.key already holds its key, and is dropped (with any next key) otherwise."""
        cert_next, key_next = self._next_paths()
        if not cert_next.exists():
            return
        candidate = Identity(key_pem=read_private(self.key_path), cert_pem=cert_next.read_bytes())
        if candidate.key_matches_certificate():
            cert_next.chmod(0o644)
            cert_next.replace(self.cert_path)
        else:
            key_next.unlink(missing_ok=True)
            cert_next.unlink()

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
