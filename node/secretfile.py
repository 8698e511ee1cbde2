"""Writing files that hold secrets: created 0600 from the start, replaced atomically.

A key must never exist on disk, even for an instant, with wider permissions than its owner's,
and a crash while writing must leave either the old file or the new one, never half of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from node.errors import ConfigError

SECRET_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def write_private(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write `data` to `path` with mode 0600 via a temporary file, fsync and rename."""
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists; refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SECRET_MODE)
    try:
        os.fchmod(fd, SECRET_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_private(path: Path) -> bytes:
    """Read a secret file, refusing one that other users can read (as ssh does for keys)."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} is missing") from exc
    if st.st_mode & 0o077:
        raise ConfigError(
            f"{path} is readable by other users (mode {st.st_mode & 0o777:o}); "
            f"run: chmod 600 {path}"
        )
    return path.read_bytes()


def make_private_dir(path: Path) -> None:
    """Create a directory only its owner can enter (parents as needed)."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR_MODE)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
