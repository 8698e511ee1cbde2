"""Schema migrations: upgrading old stores, refusing newer ones, failing without damage."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from node.errors import StoreError
from node.store import MIGRATIONS, Migration, RecordIn, RecordStore, Store, open_connection
from node.store.migrations import latest_version, migrate, schema_version

LATEST = MIGRATIONS[-1].version
ROW = RecordIn("13800138000", ("mule",), "2024-01-01", "2024-02-01", "C-7")


def tables(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def make_v1_store(path: Path) -> None:
    """A store as the first release wrote it, holding one record."""
    conn = open_connection(path)
    try:
        assert migrate(conn, MIGRATIONS[:1]) == 1
        RecordStore(conn).upsert_batch("phone", [ROW])
    finally:
        conn.close()


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert all(m.description and "\n" not in m.description for m in MIGRATIONS)


def test_a_new_store_gets_the_latest_schema(tmp_path: Path) -> None:
    with Store.open(tmp_path / "aif.db") as s:
        assert schema_version(s.conn) == latest_version() == LATEST
        assert {"records", "meta"} <= tables(s.conn)
        assert s.records.current_seq() == 0


def test_a_version_1_store_is_upgraded_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    make_v1_store(path)
    with Store.open(path) as s:
        assert schema_version(s.conn) == LATEST
        got = s.records.get("phone", ROW.value)
        assert got is not None
        assert (got.labels, got.first_seen, got.last_seen, got.ref) == (
            ROW.labels,
            ROW.first_seen,
            ROW.last_seen,
            ROW.ref,
        )
        assert s.records.current_seq() == got.seq == 1


def _add_source_column(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE records ADD COLUMN source TEXT")
    conn.execute("UPDATE records SET source = 'import'")


def test_appended_migrations_run_on_old_data(tmp_path: Path) -> None:
    """What the next engineer will do: append a script and a callable."""
    path = tmp_path / "aif.db"
    make_v1_store(path)
    extra = (
        Migration(LATEST + 1, "scratch table", "CREATE TABLE scratch_test (n INTEGER, note TEXT);"),
        Migration(LATEST + 2, "record source", _add_source_column),
    )
    conn = open_connection(path)
    try:
        assert migrate(conn, MIGRATIONS + extra) == LATEST + 2
        assert "scratch_test" in tables(conn)
        assert conn.execute("SELECT value, source FROM records").fetchall() == [
            (ROW.value, "import")
        ]
        assert migrate(conn, MIGRATIONS + extra) == LATEST + 2  # idempotent
    finally:
        conn.close()


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    make_v1_store(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST + 6}")
    conn.close()
    expected = (
        f"schema version {LATEST + 6} is newer than this aif-node supports ({LATEST}); "
        "upgrade aif-node"
    )
    with pytest.raises(StoreError, match=re.escape(expected)) as info:
        Store.open(path)
    assert str(path) in str(info.value)
    conn = sqlite3.connect(path)
    assert schema_version(conn) == LATEST + 6  # untouched
    conn.close()


def test_a_failing_script_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    make_v1_store(path)
    broken = Migration(
        LATEST + 1,
        "half-done change",
        "CREATE TABLE extra_test (a INTEGER); DELETE FROM records; INSERT INTO missing VALUES (1);",
    )
    conn = open_connection(path)
    try:
        with pytest.raises(StoreError, match=rf"migration {LATEST + 1} \(half-done change\)"):
            migrate(conn, (*MIGRATIONS, broken))
        assert schema_version(conn) == LATEST
        assert "extra_test" not in tables(conn)
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 1
        assert not conn.in_transaction
    finally:
        conn.close()
    with Store.open(path) as s:  # and the current code still opens it
        assert s.records.get("phone", ROW.value) is not None


def test_a_failing_callable_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    make_v1_store(path)

    def explode(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE extra_test (a INTEGER)")
        raise ValueError("bad data in row 3")

    conn = open_connection(path)
    try:
        with pytest.raises(ValueError, match="bad data in row 3"):
            migrate(conn, (*MIGRATIONS, Migration(LATEST + 1, "explodes", explode)))
        assert schema_version(conn) == LATEST
        assert "extra_test" not in tables(conn)
    finally:
        conn.close()


def test_scripts_split_at_statement_ends_only(tmp_path: Path) -> None:
    script = """
        CREATE TABLE scratch_notes (body TEXT);  -- a comment; with a semicolon
        CREATE TRIGGER scratch_copy AFTER INSERT ON scratch_notes BEGIN
            INSERT INTO scratch_log VALUES (new.body); SELECT 1;
        END;
        CREATE TABLE scratch_log (body TEXT);
        INSERT INTO scratch_notes VALUES ('a; b');
    """
    conn = open_connection(tmp_path / "aif.db")
    try:
        migrate(conn, (*MIGRATIONS, Migration(LATEST + 1, "notes", script)))
        assert conn.execute("SELECT body FROM scratch_log").fetchall() == [("a; b",)]
    finally:
        conn.close()


def test_unterminated_script_is_refused(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "aif.db")
    try:
        bad = Migration(LATEST + 1, "unterminated", "CREATE TABLE x (a TEXT DEFAULT 'oops;)")
        with pytest.raises(StoreError, match="unterminated statement"):
            migrate(conn, (*MIGRATIONS, bad))
        assert schema_version(conn) == LATEST
    finally:
        conn.close()


@pytest.mark.parametrize("versions", [(1, 3), (2,), (1, 1)])
def test_misnumbered_migrations_are_refused(tmp_path: Path, versions: tuple[int, ...]) -> None:
    conn = open_connection(tmp_path / "aif.db")
    try:
        migrations = [Migration(v, f"m{v}", "SELECT 1;") for v in versions]
        with pytest.raises(StoreError, match="numbered 1, 2, 3"):
            migrate(conn, migrations)
        assert schema_version(conn) == 0
    finally:
        conn.close()
