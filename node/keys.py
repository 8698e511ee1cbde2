"""OPRF keys per epoch, kept as 0600 files under the data dir's keys/ folder.

Each epoch's key is derived (RFC 9497 DeriveKeyPair) from a 32-byte random seed, and the seed
is what is stored. Rotating makes the next epoch current and drops every epoch before the
previous one, so an old key cannot outlive one rotation: peers see the new epoch on their next
match and re-evaluate in full.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from node.crypto import oprf
from node.errors import ConfigError
from node.secretfile import make_private_dir, read_private, write_private

_NAME = re.compile(r"^epoch-(\d{6})\.key$")
SEED_BYTES = 32


@dataclass(frozen=True)
class EpochKey:
    epoch: int
    secret: bytes = field(repr=False)
    public: bytes

    def __repr__(self) -> str:
        return f"EpochKey(epoch={self.epoch})"


def _info(epoch: int) -> bytes:
    return b"aif-node oprf epoch %d" % epoch


def _kind_info(epoch: int, kind: str) -> bytes:
    return b"aif-node oprf epoch %d kind %s" % (epoch, kind.encode("utf-8"))


class EpochKeyring:
    """The node's OPRF keys; the highest epoch on disk is the current one."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        # (epoch, kind) -> (seed, key): the seed is re-read on each call and compared, so a
        # key file replaced on disk is never answered from a stale cache.
        self._kind_keys: dict[tuple[int, str], tuple[bytes, EpochKey]] = {}
        self._kind_lock = threading.Lock()

    def epochs(self) -> list[int]:
        if not self._dir.is_dir():
            return []
        found = (_NAME.match(p.name) for p in self._dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def current_epoch(self) -> int:
        """The current epoch, read from the key files without deriving a key (cheap enough
        to check on every batch)."""
        epochs = self.epochs()
        if not epochs:
            raise ConfigError(f"no OPRF key in {self._dir}; the data dir is incomplete")
        return epochs[-1]

    def current(self) -> EpochKey:
        return self.get(self.current_epoch())

    def get(self, epoch: int) -> EpochKey:
        sk, pk = oprf.derive_key_pair(self._seed(epoch), _info(epoch))
        return EpochKey(epoch=epoch, secret=sk, public=pk)

    def kind_key(self, epoch: int, kind: str) -> EpochKey:
        """The OPRF key of one kind in `epoch`.

        Each kind has its own key, so an evaluation a peer obtained for one kind is useless
        against another kind's tags (on top of the kind-separated OPRF input).
        """
        seed = self._seed(epoch)
        with self._kind_lock:
            cached = self._kind_keys.get((epoch, kind))
        if cached is not None and hmac.compare_digest(cached[0], seed):
            return cached[1]
        sk, pk = oprf.derive_key_pair(seed, _kind_info(epoch, kind))
        key = EpochKey(epoch=epoch, secret=sk, public=pk)
        with self._kind_lock:
            self._kind_keys[(epoch, kind)] = (seed, key)
        return key

    def create_first(self) -> EpochKey:
        make_private_dir(self._dir)
        if self.epochs():
            raise ConfigError(f"{self._dir} already holds OPRF keys")
        return self._create(1)

    def rotate(self) -> EpochKey:
        """Make a new current epoch; keep only it and the one before."""
        previous = self.current_epoch()
        new = self._create(previous + 1)
        for epoch in self.epochs():
            if epoch < previous:
                self._path(epoch).unlink()
        return new

    def _create(self, epoch: int) -> EpochKey:
        write_private(self._path(epoch), secrets.token_bytes(SEED_BYTES))
        return self.get(epoch)

    def _seed(self, epoch: int) -> bytes:
        path = self._path(epoch)
        seed = read_private(path)
        if len(seed) != SEED_BYTES:
            raise ConfigError(f"{path}: expected {SEED_BYTES} bytes, found {len(seed)}")
        return seed

    def _path(self, epoch: int) -> Path:
        return self._dir / f"epoch-{epoch:06d}.key"
