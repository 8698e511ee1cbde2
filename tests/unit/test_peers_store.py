"""Pinned peers in the store: pinning, lookup by name or ID, policies, removal."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.errors import InputError, UnknownPeer
from node.identity import NodeID
from node.store import MIGRATIONS, Store, open_connection
from node.store.migrations import migrate
from node.store.peers import UNCHANGED, PeerRecord

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def node_id(seed: str) -> str:
    return str(NodeID(hashlib.sha256(seed.encode()).digest()))


def peer(
    name: str,
    seed: str | None = None,
    *,
    kinds: tuple[str, ...] | None = None,
    labels: tuple[str, ...] | None = None,
    budget: int = 1000,
) -> PeerRecord:
    return PeerRecord(
        node_id=node_id(seed or name),
        name=name,
        cert_pem=CERT,
        addresses=("10.0.0.1:7443", "bank.example:7443"),
        kinds=kinds,
        labels=labels,
        budget=budget,
        policy_version=0,
        added_at="2024-05-01T10:00:00.000000+00:00",
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "aif.db") as s:
        yield s


def test_add_then_look_up(store: Store) -> None:
    given = peer("bank", kinds=("phone", "email", "phone"), labels=("fraud",))
    stored = store.peers.add(given)
    assert stored.kinds == ("email", "phone")
    assert stored.policy_version >= 1
    assert stored.node_id == given.node_id and stored.addresses == given.addresses
    assert store.peers.get_by_id(given.node_id) == stored
    assert store.peers.find("bank") == stored
    assert store.peers.list() == [stored]


def test_none_and_empty_policies_are_distinct(store: Store) -> None:
    everything = store.peers.add(peer("all"))
    nothing = store.peers.add(peer("none", kinds=(), labels=()))
    assert store.peers.find("all").kinds is None and everything.labels is None
    assert store.peers.find("none").kinds == () and nothing.labels == ()


def test_list_is_by_name(store: Store) -> None:
    for name in ("lender", "bank", "platform"):
        store.peers.add(peer(name))
    assert [p.name for p in store.peers.list()] == ["bank", "lender", "platform"]


def test_duplicates_are_refused(store: Store) -> None:
    first = store.peers.add(peer("bank"))
    with pytest.raises(InputError) as same_id:
        store.peers.add(peer("bank-2", seed="bank"))
    assert str(same_id.value) == (
        f"peer 'bank' is already pinned (node ID {first.node_id}); remove it first to re-pin"
    )
    with pytest.raises(InputError, match=r"'bank' is already pinned .*choose another name"):
        store.peers.add(peer("bank", seed="someone else"))
    assert store.peers.list() == [first]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"node_id": "not-an-id"}, "canonical"),
        ({"node_id": node_id("x").lower()}, "canonical"),
        ({"name": ""}, "empty"),
        ({"name": " bank"}, "spaces"),
        ({"name": "ba\x00nk"}, "control"),
        ({"cert_pem": "  "}, "certificate"),
        ({"budget": -1}, "budget"),
        ({"kinds": ("phone", "")}, "kind"),
        ({"labels": (" fraud",)}, "label"),
    ],
)
def test_bad_records_are_refused(store: Store, change: dict[str, object], message: str) -> None:
    record = PeerRecord(**{**peer("bank").__dict__, **change})  # type: ignore[arg-type]
    with pytest.raises(InputError, match=message):
        store.peers.add(record)
    assert store.peers.list() == []


def test_find_accepts_any_spelling_of_the_id(store: Store) -> None:
    stored = store.peers.add(peer("bank"))
    text = stored.node_id
    for spelling in (
        text,
        text.lower(),
        text.replace("-", " "),
        text.replace("-", ""),
        f"  {text.lower().replace('-', '')}  ",
        text[:7],
        text[:7].lower(),
        text[:9],  # "ABCDEFG-H"
        text.replace("-", "")[:20],
    ):
        assert store.peers.find(spelling) == stored, spelling


def test_find_refuses_short_prefixes_and_strangers(store: Store) -> None:
    stored = store.peers.add(peer("bank"))
    for query in (stored.node_id[:6], "Bank", "lender", node_id("lender")):
        with pytest.raises(UnknownPeer) as info:
            store.peers.find(query)
        assert str(info.value) == (
            f"no pinned peer named or with ID {query!r}; see: aif-node peers list"
        )


def test_ambiguous_prefix_names_the_candidates(store: Store) -> None:
    # The same first 5 digest bytes give the same first 8 base32 characters.
    a = store.peers.add(
        PeerRecord(**{**peer("a").__dict__, "node_id": str(NodeID(b"\x00" * 5 + b"\x01" * 27))})
    )
    b = store.peers.add(
        PeerRecord(**{**peer("b").__dict__, "node_id": str(NodeID(b"\x00" * 5 + b"\x02" * 27))})
    )
    assert a.node_id[:8] == b.node_id[:8]
    with pytest.raises(InputError, match=r"2 pinned peers \(a, b\); give more"):
        store.peers.find(a.node_id[:8])
    assert store.peers.find(a.node_id) == a
    assert store.peers.find(b.node_id.lower()) == b


def test_a_name_wins_over_an_id_prefix(store: Store) -> None:
    target = store.peers.add(peer("target"))
    prefix = target.node_id[:7]
    named = store.peers.add(peer(prefix, seed="other"))
    assert store.peers.find(prefix) == named
    assert store.peers.find(prefix.lower()) == target


def test_get_by_id_is_exact_and_a_primary_key_read(store: Store) -> None:
    stored = store.peers.add(peer("bank"))
    assert store.peers.get_by_id(stored.node_id.lower()) is None
    assert store.peers.get_by_id(stored.node_id.replace("-", "")) is None
    assert store.peers.get_by_id(node_id("nobody")) is None
    plan = " ".join(
        str(row[-1])
        for row in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM peers WHERE node_id = ?", (stored.node_id,)
        )
    )
    assert plan.startswith("SEARCH peers USING") and "(node_id=?)" in plan


def test_a_pin_is_seen_at_once_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    with Store.open(path) as cli, Store.open(path) as server:
        stored = cli.peers.add(peer("bank"))
        assert server.peers.get_by_id(stored.node_id) == stored
        cli.peers.remove("bank")
        assert server.peers.get_by_id(stored.node_id) is None


def _count(conn: sqlite3.Connection, table: str, peer_id: str) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE peer_id = ?"  # table names are the test's own
    return int(conn.execute(sql, (peer_id,)).fetchone()[0])


def _fill(store: Store, peer_id: str) -> None:
    """A row for the peer in each table of migration 3 that it owns."""
    conn = store.conn
    conn.execute(
        "INSERT INTO match_cache (peer_id, epoch, kind, record_id, tag, label_key) "
        "VALUES (?, 1, 'phone', 1, x'00', x'00')",
        (peer_id,),
    )
    conn.execute(
        "INSERT INTO peer_tagsets (peer_id, kind, epoch, version, policy_token) "
        "VALUES (?, 'phone', 1, 3, '7')",
        (peer_id,),
    )
    conn.execute(
        "INSERT INTO peer_tags (peer_id, kind, tag, sealed) VALUES (?, 'phone', x'01', x'02')",
        (peer_id,),
    )
    conn.execute(
        "INSERT INTO matches (peer_id, record_id, kind, labels, matched_at) "
        "VALUES (?, 1, 'phone', '[]', '2024-05-01T10:00:00.000000+00:00')",
        (peer_id,),
    )


def test_remove_takes_everything_kept_for_the_peer(store: Store) -> None:
    bank = store.peers.add(peer("bank"))
    lender = store.peers.add(peer("lender"))
    key = bytes(32)
    for p in (bank, lender):
        store.budget.charge(p.node_id, 1, b"batch", 10, p.budget, p.name)
        store.budget.charge(p.node_id, 2, b"batch", 10, p.budget, p.name)
        _fill(store, p.node_id)
        store.audit.append(
            key, "served", p.node_id, p.name, "evaluate", ["phone"], 10, 10, "OK", ""
        )

    removed = store.peers.remove(bank.node_id.lower())

    assert removed == bank
    assert store.peers.list() == [lender]
    tables = (
        "budget_usage",
        "budget_batches",
        "match_cache",
        "peer_tagsets",
        "peer_tags",
        "matches",
    )
    assert {t: _count(store.conn, t, bank.node_id) for t in tables} == dict.fromkeys(tables, 0)
    assert all(_count(store.conn, t, lender.node_id) > 0 for t in tables)
    assert _count(store.conn, "audit", bank.node_id) == 1
    assert store.audit.verify(key).ok


def test_remove_works_on_a_store_without_the_later_tables(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "aif.db")
    assert migrate(conn, MIGRATIONS[:2]) == 2
    with Store(conn) as store:
        bank = store.peers.add(peer("bank"))
        store.budget.charge(bank.node_id, 1, b"batch", 10, bank.budget, bank.name)
        assert store.peers.remove("bank") == bank
        assert store.budget.used(bank.node_id, 1) == 0
        assert _count(store.conn, "budget_batches", bank.node_id) == 0


def test_remove_is_all_or_nothing(store: Store) -> None:
    store.conn.execute(
        "CREATE TRIGGER keep BEFORE DELETE ON matches BEGIN SELECT RAISE(ABORT, 'kept'); END"
    )
    bank = store.peers.add(peer("bank"))
    store.budget.charge(bank.node_id, 1, b"batch", 10, bank.budget, bank.name)
    _fill(store, bank.node_id)
    with pytest.raises(sqlite3.IntegrityError, match="kept"):
        store.peers.remove("bank")
    assert store.peers.get_by_id(bank.node_id) == bank
    assert store.budget.used(bank.node_id, 1) == 10
    assert _count(store.conn, "match_cache", bank.node_id) == 1


def test_remove_unknown(store: Store) -> None:
    with pytest.raises(UnknownPeer, match="'bank'"):
        store.peers.remove("bank")


def test_re_pinning_never_reuses_a_policy_version(store: Store) -> None:
    first = store.peers.add(peer("bank"))
    store.peers.remove("bank")
    again = store.peers.add(peer("bank"))
    assert again.policy_version > first.policy_version


def test_update_policy_bumps_the_version_on_change_only(store: Store) -> None:
    store.peers.add(peer("other"))
    bank = store.peers.add(peer("bank", kinds=("phone",), labels=("fraud",), budget=100))

    same = store.peers.update_policy("bank", kinds=["phone"], budget=100)
    assert same == bank

    wider = store.peers.update_policy(bank.node_id, kinds=["email", "phone", "email"])
    assert wider.kinds == ("email", "phone")
    assert wider.labels == ("fraud",) and wider.budget == 100
    assert wider.policy_version > bank.policy_version
    assert store.peers.find("bank") == wider

    everything = store.peers.update_policy("bank", kinds=None, labels=None, budget=5)
    assert (everything.kinds, everything.labels, everything.budget) == (None, None, 5)
    assert everything.policy_version > wider.policy_version
    assert store.peers.find("bank") == everything

    untouched = store.peers.update_policy("bank", kinds=UNCHANGED)
    assert untouched == everything


def test_update_policy_refuses_bad_values(store: Store) -> None:
    bank = store.peers.add(peer("bank"))
    with pytest.raises(InputError, match="budget"):
        store.peers.update_policy("bank", budget=-5)
    with pytest.raises(UnknownPeer):
        store.peers.update_policy("lender", budget=5)
    assert store.peers.find("bank") == bank


def test_add_joins_the_callers_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.peers.add(peer("bank"))
        raise RuntimeError("the operator's command failed later")
    assert store.peers.list() == []
