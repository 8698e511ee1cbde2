"""Opening the store's SQLite file, and the one way to write to it: `transaction`."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from node.errors import StoreError

BUSY_TIMEOUT_MS = 15_000
"""How long a writer waits for another process (`serve` and a CLI command share the file)."""

CACHE_KIB = 65_536
"""Page cache per connection: the (kind, value) index of a million records stays in memory."""


def open_connection(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed, mode 0600) the SQLite file at `path`, tuned for the node.

    Durability: `journal_mode=WAL` with `synchronous=FULL` fsyncs the WAL on every commit.
    With NORMAL a power cut may drop the last commits; an operator who saw "imported" must
    find the import after a crash, and a match stored with its results must be there whole.
    WAL also lets `serve` read while a CLI command writes.

    The connection has `isolation_level=None` (no implicit transactions); every write goes
    through `transaction(conn)`, which takes the write lock up front (BEGIN IMMEDIATE) so
    two writers queue on the busy timeout instead of failing halfway.
    """
    target = Path(path)
    # The file is created 0600 before SQLite sees it; the umask covers -wal and -shm, which
    # SQLite creates later with the database file's mode.
    old_umask = os.umask(0o077)
    try:
        _create_private(target)
        conn = sqlite3.connect(target, isolation_level=None)
        try:
            _configure(conn)
        except sqlite3.Error:
            conn.close()
            raise
    except OSError as exc:
        raise StoreError(f"{target}: cannot open the store: {exc.strerror}") from exc
    except sqlite3.Error as exc:  # an existing file SQLite cannot open, or not a database
        raise StoreError(f"{target}: cannot open the store: {exc}") from exc
    finally:
        os.umask(old_umask)
    return conn


def _create_private(target: Path) -> None:
    """Create the file, mode 0600, if it does not exist; never touch an existing one.

    Closing any descriptor of a file drops every POSIX lock this process holds on it, the
    SQLite connections' included: another process would then take the store for unused,
    checkpoint and delete the WAL under our live connections, and the store is corrupt.
    O_EXCL makes the descriptor closed here one of a file no connection can have open yet.
    """
    try:
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target)) from None
        return
    os.close(fd)


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"the file system does not support WAL (mode {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed when the block ends, rolled back on any exception.

    Not reentrant: a nested `transaction` fails rather than silently joining the outer one.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(
                f"the store is busy: another aif-node process held it for over "
                f"{BUSY_TIMEOUT_MS // 1000} s ({exc})"
            ) from exc
        raise
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def write_scope(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Join the caller's open transaction, or run the block in a transaction of its own."""
    if conn.in_transaction:
        yield conn
    else:
        with transaction(conn):
            yield conn
