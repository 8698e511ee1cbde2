"""The audit log: a keyed hash chain whose every alteration, deletion or truncation is named."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import multiprocessing
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.store import Store
from node.store.audit import AuditEntry, VerifyResult

KEY = hashlib.sha256(b"test audit key").digest()
BANK = "AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH"
LENDER = "LLLLLLL-MMMMMMM-NNNNNNN-OOOOOOO-PPPPPPP-QQQQQQQ-RRRRRRR-SSSSSSS"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "aif.db") as s:
        yield s


def append(store: Store, i: int, peer: tuple[str, str] = (BANK, "bank")) -> AuditEntry:
    return store.audit.append(
        KEY,
        "served",
        peer[0],
        peer[1],
        "evaluate",
        ["phone", "email"],
        100 * i,
        100 * i,
        "OK",
        f"#{i}",
    )


@pytest.fixture
def five(store: Store) -> list[AuditEntry]:
    return [append(store, i) for i in range(1, 6)]


def expected_mac(prev: bytes, entry: AuditEntry) -> bytes:
    """The chain mac as the spec defines it, computed here without the module's helpers."""
    fields = {
        "id": entry.id,
        "at": entry.at,
        "direction": entry.direction,
        "peer_id": entry.peer_id,
        "peer_name": entry.peer_name,
        "action": entry.action,
        "kinds": list(entry.kinds),
        "elements": entry.elements,
        "results": entry.results,
        "status": entry.status,
        "detail": entry.detail,
    }
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hmac.new(KEY, prev + text.encode(), hashlib.sha256).digest()


def test_entries_form_the_specified_chain(store: Store, five: list[AuditEntry]) -> None:
    assert [e.id for e in five] == [1, 2, 3, 4, 5]
    rows = store.conn.execute("SELECT id, prev_mac, mac FROM audit ORDER BY id").fetchall()
    prev = bytes(32)
    for entry, (entry_id, prev_mac, mac) in zip(five, rows, strict=True):
        assert entry_id == entry.id
        assert prev_mac == prev
        assert mac == expected_mac(prev, entry)
        prev = mac
    result = store.audit.verify(KEY)
    assert (result.ok, result.entries, result.first_broken, result.reason) == (True, 5, None, "")


def test_entry_fields(store: Store) -> None:
    before = dt.datetime.now(dt.UTC)
    entry = store.audit.append(KEY, "local", None, None, "keys.rotate", [], 0, 0, "OK", "epoch 4")
    after = dt.datetime.now(dt.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", entry.at)
    assert before <= dt.datetime.fromisoformat(entry.at) <= after
    assert (entry.peer_id, entry.peer_name, entry.kinds) == (None, None, ())
    assert list(store.audit.iterate()) == [entry]
    assert store.audit.verify(KEY).ok


def test_an_empty_log_is_sound(store: Store) -> None:
    assert store.audit.verify(KEY) == VerifyResult(True, 0, None, "")


def test_another_key_fails_at_the_first_entry(store: Store, five: list[AuditEntry]) -> None:
    result = store.audit.verify(bytes(32))
    assert (result.ok, result.first_broken) == (False, 1)
    assert "audit key" in result.reason


def test_bad_arguments(store: Store) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        store.audit.append(b"short", "local", None, None, "x", [], 0, 0, "OK", "")
    with pytest.raises(ValueError, match="32 bytes"):
        store.audit.verify(b"short")
    with pytest.raises(ValueError, match="direction"):
        store.audit.append(KEY, "sideways", None, None, "x", [], 0, 0, "OK", "")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        store.audit.append(KEY, "local", None, None, "x", [], -1, 0, "OK", "")


# --- tampering -----------------------------------------------------------------------------

TAMPERINGS = {
    "at": "'2020-01-01T00:00:00.000000+00:00'",
    "direction": "'initiated'",
    "peer_id": f"'{LENDER}'",
    "peer_name": "'lender'",
    "action": "'sync_tags'",
    "kinds": "'[\"phone\"]'",
    "elements": "elements + 1",
    "results": "0",
    "status": "'RESOURCE_EXHAUSTED'",
    "detail": "'nothing to see'",
    "mac": "zeroblob(32)",
}


@pytest.mark.parametrize("entry_id", [1, 3, 5])
@pytest.mark.parametrize("column", sorted(TAMPERINGS))
def test_an_altered_field_is_named(
    store: Store, five: list[AuditEntry], column: str, entry_id: int
) -> None:
    store.conn.execute(
        f"UPDATE audit SET {column} = {TAMPERINGS[column]} WHERE id = ?", (entry_id,)
    )
    result = store.audit.verify(KEY)
    assert (result.ok, result.entries, result.first_broken) == (False, 5, entry_id)
    assert result.reason.startswith(f"entry {entry_id}: mac mismatch: the entry was altered")


def test_null_peer_fields_are_covered(store: Store) -> None:
    store.audit.append(KEY, "local", None, None, "keys.rotate", [], 0, 0, "OK", "")
    store.conn.execute(f"UPDATE audit SET peer_id = '{BANK}'")
    assert store.audit.verify(KEY).first_broken == 1


def test_a_relinked_entry_is_named(store: Store, five: list[AuditEntry]) -> None:
    store.conn.execute("UPDATE audit SET prev_mac = zeroblob(32) WHERE id = 3")
    result = store.audit.verify(KEY)
    assert (result.ok, result.first_broken) == (False, 3)
    assert result.reason.startswith("entry 3: prev_mac does not link to entry 2")


@pytest.mark.parametrize(
    ("deleted", "first_broken", "reason"),
    [
        ((3,), 3, "entry 3 deleted: the log goes from entry 2 to entry 4"),
        ((2, 3), 2, "entries 2-3 deleted: the log goes from entry 1 to entry 4"),
        ((1,), 1, "entry 1 deleted: the log goes from entry 0 to entry 2"),
        ((5,), 5, "the log ends at entry 4 but the head records 5: the last entries were deleted"),
        (
            (4, 5),
            4,
            "the log ends at entry 3 but the head records 5: the last entries were deleted",
        ),
    ],
)
def test_a_deletion_is_named(
    store: Store, five: list[AuditEntry], deleted: tuple[int, ...], first_broken: int, reason: str
) -> None:
    store.conn.executemany("DELETE FROM audit WHERE id = ?", [(i,) for i in deleted])
    result = store.audit.verify(KEY)
    assert (result.ok, result.entries, result.first_broken, result.reason) == (
        False,
        5 - len(deleted),
        first_broken,
        reason,
    )


def test_deleting_everything_is_caught_by_the_head(store: Store, five: list[AuditEntry]) -> None:
    store.conn.execute("DELETE FROM audit")
    result = store.audit.verify(KEY)
    assert (result.ok, result.entries, result.first_broken) == (False, 0, 1)


def test_a_renumbered_deletion_is_named(store: Store, five: list[AuditEntry]) -> None:
    store.conn.execute("DELETE FROM audit WHERE id = 3")
    store.conn.execute("UPDATE audit SET id = id - 1 WHERE id > 3")
    store.conn.execute("UPDATE audit_head SET entries = 4")
    result = store.audit.verify(KEY)
    assert (result.ok, result.first_broken) == (False, 3)
    assert "prev_mac does not link to entry 2" in result.reason


def test_truncation_with_a_rewritten_head_is_caught(store: Store, five: list[AuditEntry]) -> None:
    last_mac = store.conn.execute("SELECT mac FROM audit WHERE id = 4").fetchone()[0]
    store.conn.execute("DELETE FROM audit WHERE id = 5")
    store.conn.execute("UPDATE audit_head SET entries = 4, last_mac = ?", (last_mac,))
    result = store.audit.verify(KEY)
    assert (result.ok, result.entries, result.first_broken) == (False, 4, None)
    assert result.reason == "the audit head was altered (entry count or last mac)"


def test_a_head_stripped_of_its_mac_is_caught(store: Store, five: list[AuditEntry]) -> None:
    store.conn.execute("UPDATE audit_head SET mac = NULL")
    result = store.audit.verify(KEY)
    assert (result.ok, result.first_broken) == (False, None)
    assert result.reason == "the audit head was altered (entry count or last mac)"


def test_a_wiped_log_with_a_reset_head_reads_as_new(store: Store, five: list[AuditEntry]) -> None:
    """The documented limit: this is exactly the state of a new store."""
    store.conn.execute("DELETE FROM audit")
    store.conn.execute("UPDATE audit_head SET entries = 0, last_mac = zeroblob(32), mac = NULL")
    assert store.audit.verify(KEY) == VerifyResult(True, 0, None, "")


def _swap(store: Store, a: int, b: int) -> None:
    conn = store.conn
    conn.execute("UPDATE audit SET id = -1 WHERE id = ?", (a,))
    conn.execute("UPDATE audit SET id = ? WHERE id = ?", (a, b))
    conn.execute("UPDATE audit SET id = ? WHERE id = -1", (b,))


@pytest.mark.parametrize(("a", "b"), [(2, 3), (1, 5), (4, 5)])
def test_reordering_is_named(store: Store, five: list[AuditEntry], a: int, b: int) -> None:
    _swap(store, a, b)
    result = store.audit.verify(KEY)
    assert (result.ok, result.first_broken) == (False, a)
    assert result.reason.startswith(f"entry {a}: prev_mac does not link")


def test_an_entry_slipped_in_at_the_end_is_named(store: Store, five: list[AuditEntry]) -> None:
    # Even with a correct mac (made with the key), an entry the head does not know is caught.
    last = store.conn.execute("SELECT mac FROM audit WHERE id = 5").fetchone()[0]
    forged = AuditEntry(6, five[-1].at, "local", None, None, "x", (), 0, 0, "OK", "")
    store.conn.execute(
        "INSERT INTO audit VALUES (6, ?, 'local', NULL, NULL, 'x', '[]', 0, 0, 'OK', '', ?, ?)",
        (forged.at, last, expected_mac(last, forged)),
    )
    result = store.audit.verify(KEY)
    assert (result.ok, result.entries, result.first_broken) == (False, 6, 6)
    assert result.reason == "entry 6 was added after the last recorded entry 5"


def test_a_replaced_last_entry_is_named(store: Store, five: list[AuditEntry]) -> None:
    # Rewritten with the key, so it links and its mac holds; only the head knows.
    prev = store.conn.execute("SELECT mac FROM audit WHERE id = 4").fetchone()[0]
    forged = AuditEntry(5, five[-1].at, "local", None, None, "x", (), 0, 0, "OK", "")
    store.conn.execute("DELETE FROM audit WHERE id = 5")
    store.conn.execute(
        "INSERT INTO audit VALUES (5, ?, 'local', NULL, NULL, 'x', '[]', 0, 0, 'OK', '', ?, ?)",
        (forged.at, prev, expected_mac(prev, forged)),
    )
    result = store.audit.verify(KEY)
    assert (result.ok, result.first_broken) == (False, 5)
    assert result.reason == "entry 5 is not the last entry the head recorded"


def test_appending_after_a_deletion_keeps_the_gap(store: Store, five: list[AuditEntry]) -> None:
    store.conn.execute("DELETE FROM audit WHERE id = 5")
    assert append(store, 6).id == 6
    result = store.audit.verify(KEY)
    assert (result.ok, result.first_broken) == (False, 5)


def test_the_first_break_is_reported(store: Store, five: list[AuditEntry]) -> None:
    store.conn.execute("UPDATE audit SET detail = 'x' WHERE id = 4")
    store.conn.execute("DELETE FROM audit WHERE id = 2")
    assert store.audit.verify(KEY).first_broken == 2


# --- transactions and concurrency ----------------------------------------------------------


def test_append_joins_the_callers_transaction(store: Store) -> None:
    append(store, 1)
    with pytest.raises(RuntimeError), store.transaction():
        append(store, 2)
        raise RuntimeError("the action failed")
    result = store.audit.verify(KEY)
    assert (result.ok, result.entries) == (True, 1)
    assert append(store, 3).id == 2


def _appender(path: Path, worker: int, count: int, start: Any, out: Any) -> None:
    try:
        with Store.open(path) as store:
            start.wait()
            peer = (BANK, f"w{worker}")
            out.put((worker, [append(store, worker * 1000 + i, peer).id for i in range(count)]))
    except BaseException as exc:
        out.put((worker, repr(exc)))  # fail the test at once, not at the queue's timeout
        raise


def test_processes_append_to_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    workers, count = 4, 20
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(workers, timeout=60), ctx.Queue()
    procs = [
        ctx.Process(target=_appender, args=(path, w, count, start, out)) for w in range(workers)
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert {w: r for w, r in results.items() if not isinstance(r, list)} == {}
    assert [p.exitcode for p in procs] == [0] * workers
    with Store.open(path) as store:
        result = store.audit.verify(KEY)
        assert (result.ok, result.entries) == (True, workers * count)
        all_ids = sorted(i for ids in results.values() for i in ids)
        assert all_ids == list(range(1, workers * count + 1))
        for worker, ids in results.items():
            details = {e.id: e.detail for e in store.audit.iterate(peer=f"w{worker}")}
            assert sorted(details) == ids
            assert sorted(details.values()) == sorted(f"#{worker * 1000 + i}" for i in range(count))


# --- reading -------------------------------------------------------------------------------


def test_iterate_newest_first_with_filters(store: Store) -> None:
    entries = [
        append(store, i, (BANK, "bank") if i % 2 else (LENDER, "lender")) for i in range(1, 7)
    ]
    assert list(store.audit.iterate()) == entries[::-1]
    assert list(store.audit.iterate(limit=2)) == entries[:-3:-1]
    bank = [e for e in entries[::-1] if e.peer_name == "bank"]
    assert list(store.audit.iterate(peer="bank")) == bank
    assert list(store.audit.iterate(peer=BANK.lower().replace("-", " "))) == bank
    assert list(store.audit.iterate(limit=1, peer=LENDER)) == [entries[5]]
    since = dt.datetime.fromisoformat(entries[3].at).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert list(store.audit.iterate(since=since)) == entries[:2:-1]
    assert list(store.audit.iterate(since=since, peer="bank")) == [entries[4]]
    with pytest.raises(ValueError, match="aware"):
        store.audit.iterate(since=dt.datetime(2024, 1, 1))
