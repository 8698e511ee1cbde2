"""The store's schema, as an ordered list of migrations.

The schema version is SQLite's `PRAGMA user_version`; `migrate` applies each missing
migration in its own transaction, so a failure leaves the store at the previous version.

To change the schema, append a migration; never edit one that has shipped:

    _V2_PEERS = '''CREATE TABLE peers (...);'''
    ...
    Migration(2, "pinned peers", _V2_PEERS),

`apply` is an SQL script (statements separated by `;`) or a callable taking the
connection, for changes SQL alone cannot express. It runs inside the transaction: it must
not COMMIT, and `PRAGMA foreign_keys` cannot be switched there (use `PRAGMA
defer_foreign_keys = ON` to rebuild a table that others reference).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from node.errors import StoreError
from node.store.connection import transaction
from node.store.grants import SCHEMA_V4
from node.store.runs import SCHEMA_V5
from node.store.schema_v2 import SCHEMA_V2
from node.store.schema_v3 import SCHEMA_V3


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: str | Callable[[sqlite3.Connection], None]


_V1_RECORDS = """
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '[]',  -- sorted unique JSON array of strings
    first_seen TEXT NOT NULL,           -- YYYY-MM-DD
    last_seen TEXT NOT NULL,            -- YYYY-MM-DD
    ref TEXT,                           -- the operator's internal reference
    seq INTEGER NOT NULL,               -- change sequence: set on insert and on every change
    removed INTEGER NOT NULL DEFAULT 0, -- tombstone, kept so that removals propagate
    UNIQUE (kind, value)
);
CREATE INDEX records_kind_seq ON records (kind, seq);
-- Tombstones are few; this lets an import count revivals without a scan.
CREATE INDEX records_kind_removed ON records (kind) WHERE removed = 1;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta (key, value) VALUES ('records_seq', '0');
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "records with change sequence and tombstones; meta", _V1_RECORDS),
    Migration(2, "pinned peers, evaluation budgets, audit hash chain", SCHEMA_V2),
    Migration(3, "tag sets; per-peer match cache, tag set copies and matches", SCHEMA_V3),
    Migration(4, "budgets peers grant us, as they last reported them", SCHEMA_V4),
    Migration(5, "match runs: when each peer was last matched and how it went", SCHEMA_V5),
)


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return migrations[-1].version if migrations else 0


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the store up to the newest schema this code knows; return that version.

    Refuses a store written by a newer aif-node rather than guess at its layout.
    """
    _check_order(migrations)
    latest = latest_version(migrations)
    current = schema_version(conn)
    if current > latest:
        raise StoreError(
            f"{_db_file(conn)}: schema version {current} is newer than this aif-node "
            f"supports ({latest}); upgrade aif-node"
        )
    for migration in migrations:
        if migration.version <= current:
            continue
        try:
            with transaction(conn):
                # Another process may have migrated while we waited for the write lock.
                if schema_version(conn) >= migration.version:
                    continue
                _apply(conn, migration)
                conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        except sqlite3.Error as exc:
            raise StoreError(
                f"{_db_file(conn)}: migration {migration.version} "
                f"({migration.description}) failed: {exc}"
            ) from exc
    return schema_version(conn)


def _apply(conn: sqlite3.Connection, migration: Migration) -> None:
    if callable(migration.apply):
        migration.apply(conn)
        return
    # Not executescript: it commits first, which would break the one-transaction rule.
    for statement in _statements(migration.apply):
        conn.execute(statement)


def _statements(script: str) -> Iterator[str]:
    """Split an SQL script at the `;` that end statements (not those in strings or triggers)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise StoreError(f"unterminated statement in migration: {pending.strip()[:60]!r}")


def _check_order(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migrations must be numbered 1, 2, 3, ... in order; got {versions}")


def _db_file(conn: sqlite3.Connection) -> str:
    for _seq, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(file) or "(in-memory store)"
    return "(store)"
