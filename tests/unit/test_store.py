"""The embedded store: connection settings, merging, removal, counts, transactions."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import InputError, StoreError
from node.store import Record, RecordIn, Store, UpsertResult

D1, D2, D3 = "2024-01-01", "2024-02-01", "2024-03-01"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "aif.db") as s:
        yield s


def rec(
    value: str,
    labels: tuple[str, ...] = (),
    first: str = D2,
    last: str = D2,
    ref: str | None = None,
) -> RecordIn:
    return RecordIn(value, labels, first, last, ref)


def other_connection(path: Path) -> sqlite3.Connection:
    """A second reader, as another process would see the file."""
    return sqlite3.connect(path)


# --- the file and the connection -----------------------------------------------------------


def test_file_and_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    old = os.umask(0o022)
    try:
        with Store.open(path) as s:
            s.records.upsert_batch("phone", [rec("13800138000")])
            for name in ("aif.db", "aif.db-wal", "aif.db-shm"):
                mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
                assert mode == 0o600, (name, oct(mode))
        assert os.umask(0o022) == 0o022, "the umask is restored after opening"
    finally:
        os.umask(old)


def test_connection_settings(store: Store) -> None:
    def pragma(name: str) -> object:
        return store.conn.execute(f"PRAGMA {name}").fetchone()[0]

    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 2  # FULL
    assert pragma("foreign_keys") == 1
    assert pragma("busy_timeout") == 15000
    assert store.conn.isolation_level is None


def test_open_refuses_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    path.write_bytes(b"this is not a database at all, just some text\n" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store.open(path)


def test_open_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the store"):
        Store.open(tmp_path / "nowhere" / "aif.db")


def test_integrity_of_a_sound_store(store: Store) -> None:
    store.records.upsert_batch("phone", [rec(f"1380013{i:04d}") for i in range(100)])
    assert store.check_integrity() == []


def test_integrity_reports_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    with Store.open(path) as s:
        s.records.upsert_batch("phone", [rec(f"1380013{i:04d}", ("x" * 50,)) for i in range(3000)])
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    for offset in range(10 * page, 14 * page):  # scribble over a few pages in the middle
        data[offset] = 0x5A
    path.write_bytes(bytes(data))
    with Store.open(path) as s:
        assert s.check_integrity() != []


# --- inserting and merging -----------------------------------------------------------------


def test_insert_then_get(store: Store) -> None:
    result = store.records.upsert_batch(
        "phone", [rec("13800138000", ("b", "a", "b"), D1, D2, "C-1")]
    )
    assert result == UpsertResult(inserted=1, merged=0, changed=0)
    got = store.records.get("phone", "13800138000")
    assert got == Record("phone", "13800138000", ("a", "b"), D1, D2, "C-1", 1, False)
    assert store.records.current_seq() == 1
    assert store.records.get("phone", "13900000000") is None
    assert store.records.get("bank_card", "13800138000") is None


def test_merge_unites_labels_and_widens_dates(store: Store) -> None:
    records = store.records
    records.upsert_batch("phone", [rec("1", ("scam", "mule"), D2, D2)])
    result = records.upsert_batch("phone", [rec("1", ("mule", "诈骗", "account"), D1, D3)])
    assert result == UpsertResult(inserted=0, merged=1, changed=1)
    got = records.get("phone", "1")
    assert got is not None
    assert got.labels == tuple(sorted({"scam", "mule", "诈骗", "account"}))
    assert (got.first_seen, got.last_seen) == (D1, D3)
    assert got.seq == 2
    # Narrower dates and known labels change nothing.
    result = records.upsert_batch("phone", [rec("1", ("scam",), D2, D2)])
    assert result == UpsertResult(inserted=0, merged=1, changed=0)
    assert records.get("phone", "1") == got
    assert records.current_seq() == 2


def test_ref_is_kept_unless_empty(store: Store) -> None:
    records = store.records
    records.upsert_batch("phone", [rec("1"), rec("2", ref="A")])
    records.upsert_batch("phone", [rec("1", ref="B"), rec("2", ref="B"), rec("2", ref="")])
    refs = {v: records.get("phone", v) for v in ("1", "2")}
    assert {v: r.ref for v, r in refs.items() if r} == {"1": "B", "2": "A"}
    records.upsert_batch("phone", [rec("3", ref="")])
    got = records.get("phone", "3")
    assert got is not None and got.ref is None


def test_duplicates_within_a_batch_merge(store: Store) -> None:
    result = store.records.upsert_batch(
        "phone", [rec("1", ("a",), D2, D2), rec("1", ("b",), D1, D2), rec("1", ("a",), D2, D2)]
    )
    assert result == UpsertResult(inserted=1, merged=2, changed=1)
    got = store.records.get("phone", "1")
    assert got is not None
    assert (got.labels, got.first_seen, got.last_seen) == (("a", "b"), D1, D2)


def test_kinds_are_separate(store: Store) -> None:
    store.records.upsert_batch("phone", [rec("1", ("a",))])
    result = store.records.upsert_batch("device_id", [rec("1", ("b",))])
    assert result.inserted == 1
    phone, device = store.records.get("phone", "1"), store.records.get("device_id", "1")
    assert phone is not None and device is not None
    assert (phone.labels, device.labels) == (("a",), ("b",))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (RecordIn("1", (), "2024-13-01", "2024-13-01"), "not an ISO date"),
        (RecordIn("1", (), "2024/01/01", "2024/01/01"), "not an ISO date"),
        (RecordIn("1", (), "", D1), "not an ISO date"),
        (RecordIn("1", (), D2, D1), "first_seen 2024-02-01 is after last_seen 2024-01-01"),
        (RecordIn("1", ("",), D1, D1), "empty label"),
        (RecordIn("1", ("a\nb",), D1, D1), "control character"),
    ],
)
def test_bad_rows_are_refused(store: Store, row: RecordIn, message: str) -> None:
    with pytest.raises(InputError, match=message):
        store.records.upsert_batch("phone", [rec("0"), row])
    assert store.records.get("phone", "0") is None
    assert store.records.current_seq() == 0


def test_labels_are_trimmed(store: Store) -> None:
    store.records.upsert_batch("phone", [rec("1", (" a ", "a"))])
    got = store.records.get("phone", "1")
    assert got is not None and got.labels == ("a",)


def test_stored_label_text_is_canonical_json(store: Store) -> None:
    """Merged label sets must read back as what a fresh insert of the same set writes."""
    store.records.upsert_batch("phone", [rec("1", ('q"uote', "诈骗")), rec("2", ("b\\s", "a"))])
    store.records.upsert_batch("phone", [rec("1", ("a",)), rec("2", ("a",))])
    store.records.upsert_batch(
        "phone", [rec("3", ('q"uote', "诈骗", "a")), rec("4", ("b\\s", "a"))]
    )
    stored = dict(store.conn.execute("SELECT value, labels FROM records"))
    assert stored["1"] == stored["3"]
    assert stored["2"] == stored["4"]
    assert json.loads(stored["1"]) == sorted({'q"uote', "诈骗", "a"})


# --- removal and revival -------------------------------------------------------------------


def test_remove_tombstones_and_revival_starts_afresh(store: Store) -> None:
    records = store.records
    records.upsert_batch("phone", [rec("1", ("old",), D1, D2, "R-old"), rec("2")])
    assert records.remove("phone", ["1", "1", "9"]) == 1
    assert records.get("phone", "1") is None
    tomb = records.get("phone", "1", include_removed=True)
    assert tomb is not None and tomb.removed and tomb.seq == 3
    assert records.remove("phone", ["1"]) == 0
    assert records.current_seq() == 3

    result = records.upsert_batch(
        "phone", [rec("1", ("new",), D3, D3), rec("1", ("more",), D3, D3)]
    )
    assert result == UpsertResult(inserted=1, merged=1, changed=1)
    got = records.get("phone", "1")
    assert got == Record("phone", "1", ("more", "new"), D3, D3, None, 5, False)


def test_remove_nothing(store: Store) -> None:
    assert store.records.remove("phone", []) == 0
    assert store.records.current_seq() == 0


# --- counts and changes --------------------------------------------------------------------


def test_counts_per_kind_and_label(store: Store) -> None:
    rows = {
        "phone": [rec("1", ("a", "b")), rec("2", ("a",)), rec("3"), rec("4", ("b",))],
        "email": [rec("x@y.cn", ("a",)), rec("z@y.cn", ("c",))],
    }
    for kind, batch in rows.items():
        store.records.upsert_batch(kind, batch)
    store.records.remove("phone", ["4"])
    live = {
        (k, r.value): r
        for k, batch in rows.items()
        for r in batch
        if (k, r.value) != ("phone", "4")
    }
    expected: Counter[tuple[str, str | None]] = Counter()
    for (kind, _value), r in live.items():
        expected[(kind, None)] += 1
        for label in set(r.labels):
            expected[(kind, label)] += 1
    got = store.records.counts()
    assert sorted(got, key=lambda t: (t[0], t[1] or "")) == got
    assert {(k, label): n for k, label, n in got} == dict(expected)
    assert got[0] == ("email", None, 2)


def test_counts_of_an_empty_store(store: Store) -> None:
    assert store.records.counts() == []


def test_iter_changed_pages_in_sequence_order(store: Store) -> None:
    records = store.records
    records.upsert_batch("phone", [rec(str(i)) for i in range(10)])
    records.upsert_batch("email", [rec("a@b.cn")])
    mark = records.current_seq()
    records.upsert_batch("phone", [rec("3", ("x",)), rec("11")])
    records.remove("phone", ["5"])
    everything = [r for page in records.iter_changed("phone", 0, batch=4) for r in page]
    assert [len(page) for page in records.iter_changed("phone", 0, batch=4)] == [4, 4, 3]
    assert sorted(r.value for r in everything) == sorted(str(i) for i in range(12) if i != 10)
    seqs = [r.seq for r in everything]
    assert seqs == sorted(set(seqs))
    since = [(r.value, r.removed) for page in records.iter_changed("phone", mark) for r in page]
    assert since == [("3", False), ("11", False), ("5", True)]
    assert list(records.iter_changed("phone", records.current_seq())) == []
    with pytest.raises(ValueError, match="batch"):
        next(records.iter_changed("phone", 0, batch=0))


def test_sequence_numbers_stay_unique_across_kinds(store: Store) -> None:
    records = store.records
    records.upsert_batch("phone", [rec("1"), rec("2"), rec("3")])
    records.upsert_batch("phone", [rec("1"), rec("4"), rec("2")])  # only "4" is written
    records.upsert_batch("email", [rec("e1"), rec("e2")])
    records.remove("phone", ["1"])
    seqs = [s for (s,) in store.conn.execute("SELECT seq FROM records")]
    assert len(seqs) == len(set(seqs)) == 6
    assert records.current_seq() == max(seqs)


# --- transactions --------------------------------------------------------------------------


def test_rollback_on_exception_mid_import(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    with Store.open(path) as s:
        s.records.upsert_batch("phone", [rec("0")])
        before = s.records.current_seq()
        with pytest.raises(RuntimeError, match="disk on fire"), s.transaction():
            s.records.upsert_batch("phone", [rec(str(i)) for i in range(1, 100)])
            s.records.upsert_batch("phone", [rec("0", ("x",))])
            s.records.remove("phone", ["5"])
            raise RuntimeError("disk on fire")
        assert s.records.current_seq() == before
        assert s.records.counts() == [("phone", None, 1)]
        got = s.records.get("phone", "0")
        assert got is not None and got.labels == ()
    with Store.open(path) as s:
        assert s.records.counts() == [("phone", None, 1)]


def test_writes_in_a_transaction_are_invisible_until_commit(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    reader = other_connection(path)
    try:
        with Store.open(path) as s:
            with s.transaction():
                s.records.upsert_batch("phone", [rec("1")])
                assert reader.execute("SELECT count(*) FROM records").fetchone()[0] == 0
            assert reader.execute("SELECT count(*) FROM records").fetchone()[0] == 1
            # Outside a transaction a write commits on its own.
            s.records.upsert_batch("phone", [rec("2")])
            assert reader.execute("SELECT count(*) FROM records").fetchone()[0] == 2
    finally:
        reader.close()


def test_transactions_do_not_nest(store: Store) -> None:
    with store.transaction(), pytest.raises(sqlite3.OperationalError):  # noqa: SIM117
        with store.transaction():
            pass
    assert not store.conn.in_transaction


# --- merging is order-free -----------------------------------------------------------------

VALUES = st.sampled_from([f"1380013800{i}" for i in range(6)])
DATES = st.sampled_from(["2023-12-31", "2024-01-01", "2024-02-29", "2024-10-01"])
ROWS = st.lists(
    st.tuples(
        VALUES,
        st.lists(st.sampled_from(["a", "b", "诈骗", "mule"]), max_size=3),
        DATES,
        DATES,
        st.booleans(),
    ).map(
        lambda t: RecordIn(
            t[0], tuple(t[1]), min(t[2], t[3]), max(t[2], t[3]), f"R-{t[0]}" if t[4] else None
        )
    ),
    min_size=1,
    max_size=25,
)


def merged_model(rows: list[RecordIn]) -> dict[str, tuple[tuple[str, ...], str, str, str | None]]:
    """What the store must hold, computed without it. A value has one possible ref here:
    ref is the one field whose merge depends on order (first non-empty wins)."""
    out: dict[str, tuple[tuple[str, ...], str, str, str | None]] = {}
    for r in rows:
        if r.value in out:
            labels, first, last, ref = out[r.value]
            out[r.value] = (
                tuple(sorted(set(labels) | set(r.labels))),
                min(first, r.first_seen),
                max(last, r.last_seen),
                ref or r.ref,
            )
        else:
            out[r.value] = (tuple(sorted(set(r.labels))), r.first_seen, r.last_seen, r.ref)
    return out


@settings(max_examples=40, deadline=None)
@given(rows=ROWS, data=st.data())
def test_any_split_in_any_order_gives_the_same_records(
    rows: list[RecordIn], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(rows))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(rows)), max_size=4)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if a < b]
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "aif.db") as s:
        for batch in batches:
            s.records.upsert_batch("phone", batch)
        got = {
            r.value: (r.labels, r.first_seen, r.last_seen, r.ref)
            for page in s.records.iter_changed("phone", 0)
            for r in page
        }
        assert got == merged_model(rows)
        assert s.records.counts()[0] == ("phone", None, len(got))
