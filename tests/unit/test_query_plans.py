"""Paged reads must walk an index in page order: a page that sorts or rescans the whole set
makes a match quadratic in the set size (it took minutes at a million records). Checked on
SQLite's own query plans, not on timings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.store import Store

PENDING = (
    "SELECT r.id, r.value FROM records AS r NOT INDEXED "
    "WHERE r.kind = ? AND r.removed = 0 AND r.id > ? AND NOT EXISTS (SELECT 1 FROM match_cache "
    "AS c WHERE c.peer_id = ? AND c.kind = r.kind AND c.record_id = r.id AND c.epoch = ?) "
    "ORDER BY r.id LIMIT ?"
)
ENTRIES = (
    "SELECT e.record_id, e.tag, e.label_key, e.version, e.removed, r.labels "
    "FROM tagset_entries AS e JOIN records AS r ON r.id = e.record_id "
    "WHERE e.kind = ? AND e.epoch = ? AND e.version >= ? AND e.version <= ? "
    "AND (e.version, e.record_id) > (?, ?) AND (? OR e.removed = 0) "
    "ORDER BY e.version, e.record_id LIMIT ?"
)


def _plan(store: Store, sql: str, params: tuple[Any, ...]) -> str:
    return " | ".join(row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_queries_checked_here_are_the_ones_the_store_runs() -> None:
    root = Path(__file__).resolve().parents[2] / "node" / "store"
    flat = " ".join(_source(root / "matches.py").split()).replace('" "', "")
    assert "FROM records AS r NOT INDEXED" in flat
    entries = " ".join(_source(root / "tagsets.py").split()).replace('" "', "")
    assert "e.version >= ? AND e.version <= ?" in entries


def test_pending_records_are_read_in_id_order_from_an_index(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        plan = _plan(store, PENDING, ("phone", 100, "peer", 1, 4096))
    assert "SEARCH r USING INTEGER PRIMARY KEY (rowid>?)" in plan
    assert "TEMP B-TREE" not in plan


def test_tag_entries_are_read_from_the_page_s_version_on(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        plan = _plan(store, ENTRIES, ("phone", 1, 7, 9, 7, 100, 0, 8192))
    assert "tagset_entries_version (kind=? AND epoch=? AND version>? AND version<?)" in plan
    assert "TEMP B-TREE" not in plan


def _steps(store: Store, read: Any) -> int:
    """SQLite virtual-machine steps (in hundreds) that `read()` costs: a count, not a time."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    store.conn.set_progress_handler(tick, 100)
    try:
        read()
    finally:
        store.conn.set_progress_handler(None, 0)
    return steps


def test_a_late_page_costs_what_an_early_page_costs(tmp_path: Path) -> None:
    from node.store import RecordIn

    n, versions, page = 6000, 60, 50
    with Store.open(tmp_path / "s.db") as store:
        store.records.upsert_batch(
            "phone",
            [RecordIn(f"+86138{i:08d}", (), "2025-01-01", "2025-01-01") for i in range(n)],
        )
        ids = [r[0] for r in store.conn.execute("SELECT id FROM records ORDER BY id")]
        with store.transaction():
            store.conn.executemany(
                "INSERT INTO tagset_entries VALUES ('phone', 1, ?, ?, ?, ?, 0)",
                [(rid, bytes(16), bytes(32), 1 + i * versions // n) for i, rid in enumerate(ids)],
            )

        def page_at(version: int) -> Any:
            return lambda: store.tagsets.entries(
                "phone",
                1,
                since_version=0,
                upto_version=versions,
                after=(version, 0),
                include_removed=False,
                limit=page,
            )

        first, last = _steps(store, page_at(1)), _steps(store, page_at(versions - 1))
        assert len(page_at(versions - 1)()) == page
        assert last <= 3 * max(first, 1), (first, last)

        def pending_after(position: int) -> Any:
            return lambda: store.matches.pending("peer", "phone", 1, ids[position], page)

        first, last = _steps(store, pending_after(0)), _steps(store, pending_after(n - 2 * page))
        assert last <= 3 * max(first, 1), (first, last)
