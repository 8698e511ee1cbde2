"""The node's embedded store: one SQLite file in WAL mode, schema kept by migrations.

Layers above get a `Store` from `Store.open(path)`; tables other than records are added
by appending a migration (see `node.store.migrations`) and a class over `Store.conn`.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import AbstractContextManager

from node.closeable import Closeable
from node.store.audit import AuditLog
from node.store.budget import BudgetStore
from node.store.connection import open_connection, transaction
from node.store.grants import GrantStore
from node.store.matches import MatchStore
from node.store.migrations import MIGRATIONS, Migration, migrate
from node.store.peers import PeerStore
from node.store.records import Record, RecordIn, RecordStore, UpsertResult, check_label
from node.store.runs import MatchRunStore
from node.store.tagsets import TagSetStore

__all__ = [
    "MIGRATIONS",
    "Migration",
    "Record",
    "RecordIn",
    "RecordStore",
    "Store",
    "UpsertResult",
    "check_label",
    "open_connection",
    "transaction",
]


class Store(Closeable):
    """An open, migrated store. Use it in a `with` block, or call `close()`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.records = RecordStore(conn)
        self.peers = PeerStore(conn)
        self.budget = BudgetStore(conn)
        self.audit = AuditLog(conn)
        self.tagsets = TagSetStore(conn)
        self.matches = MatchStore(conn)
        self.grants = GrantStore(conn)
        self.runs = MatchRunStore(conn)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Store:
        """Open the store at `path`, creating it (mode 0600) and migrating it as needed."""
        conn = open_connection(path)
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return cls(conn)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """All writes in the block commit together or not at all."""
        return transaction(self.conn)

    def check_integrity(self) -> list[str]:
        """Problems SQLite finds in the file and its foreign keys; empty when all is well."""
        try:
            problems = [str(row[0]) for row in self.conn.execute("PRAGMA integrity_check")]
            if problems == ["ok"]:
                problems = []
            problems.extend(
                f"foreign key: {table} row {rowid} refers to a missing row in {parent}"
                for table, rowid, parent, _fkid in self.conn.execute("PRAGMA foreign_key_check")
            )
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        return problems

    def close(self) -> None:
        self.conn.close()
