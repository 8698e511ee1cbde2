"""Building and maintaining the published tag sets: incremental refresh, versions,
crash safety, rotation, concurrency; and the per-kind OPRF keys they use."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from psi_nodes import Node, make_node, phones

from node.crypto import labels, oprf
from node.identifiers import oprf_input
from node.psi.tagset import refresh
from node.secretfile import read_private
from node.store import Store
from node.store.tagsets import TagSetUpdate


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    made = make_node(tmp_path, "node")
    yield made
    made.store.close()


def entries(node: Node, epoch: int = 1) -> dict[str, tuple[bytes, bytes, int, bool]]:
    """value -> (tag, label_key, version, removed) of the phone set."""
    rows = node.store.conn.execute(
        "SELECT r.value, e.tag, e.label_key, e.version, e.removed FROM tagset_entries AS e "
        "JOIN records AS r ON r.id = e.record_id WHERE e.kind = 'phone' AND e.epoch = ?",
        (epoch,),
    )
    return {v: (bytes(t), bytes(k), int(ver), bool(rem)) for v, t, k, ver, rem in rows}


def truth(node: Node, values: list[str], epoch: int = 1) -> dict[str, tuple[bytes, bytes]]:
    """Tags and label keys computed here from the seed file, independently of the keyring."""
    seed = read_private(node.root / "keys" / f"epoch-{epoch:06d}.key")
    secret, _ = oprf.derive_key_pair(seed, b"aif-node oprf epoch %d kind phone" % epoch)
    outs = [oprf.evaluate(secret, oprf_input("phone", v)) for v in values]
    return {v: labels.tag_and_key(out) for v, out in zip(values, outs, strict=True)}


def test_kind_keys_differ_per_kind_and_epoch_and_are_stable(node: Node) -> None:
    ring = node.keyring
    phone, email = ring.kind_key(1, "phone"), ring.kind_key(1, "email")
    assert phone.secret != email.secret and phone.secret != ring.current().secret
    assert ring.kind_key(1, "phone") == phone
    ring.rotate()
    assert ring.kind_key(2, "phone").secret != phone.secret
    assert ring.kind_key(1, "phone") == phone, "the previous epoch is still readable"


def test_refresh_builds_the_set_and_then_evaluates_only_changes(node: Node) -> None:
    values = phones(random.Random(1), 50)
    node.add("phone", values, {})
    (result,) = refresh(node.store, node.keyring, "phone", chunk=16)
    assert (result.evaluated, result.updated, result.removed) == (50, 0, 0)
    expected = truth(node, values)
    built = entries(node)
    assert {v: (t, k) for v, (t, k, _, _) in built.items()} == expected
    assert {ver for _, _, ver, _ in built.values()} == {1, 2, 3, 4}  # one version per chunk
    assert result.version == 4

    (again,) = refresh(node.store, node.keyring, "phone")
    assert (again.evaluated, again.updated, again.removed, again.version) == (0, 0, 0, 4)

    new = phones(random.Random(2), 3)
    node.add("phone", new, {})
    node.add("phone", values[:2], {values[0]: ("fraud_ring",), values[1]: ("fraud_ring",)})
    node.remove("phone", values[2:5])
    (result,) = refresh(node.store, node.keyring, "phone")
    assert (result.evaluated, result.updated, result.removed, result.version) == (3, 2, 3, 5)
    built = entries(node)
    changed = set(new) | set(values[:5])
    assert {v for v, (_, _, ver, _) in built.items() if ver == 5} == changed
    assert {v for v, (_, _, _, rem) in built.items() if rem} == set(values[2:5])
    assert built[new[0]][:2] == truth(node, new)[new[0]]

    # Imported again, a removed record comes back with its tag, without an evaluation.
    node.add("phone", values[2:3], {})
    (result,) = refresh(node.store, node.keyring, "phone")
    assert (result.evaluated, result.updated) == (0, 1)
    assert entries(node)[values[2]] == (*expected[values[2]], 6, False)


def test_a_crash_mid_refresh_loses_at_most_a_chunk(node: Node) -> None:
    values = phones(random.Random(3), 40)
    node.add("phone", values, {})

    def crash(kind: str, done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        refresh(node.store, node.keyring, "phone", chunk=15, progress=crash)
    assert len(entries(node)) == 15
    (result,) = refresh(node.store, node.keyring, "phone", chunk=15)
    assert result.evaluated == 25
    assert {v: (t, k) for v, (t, k, _, _) in entries(node).items()} == truth(node, values)


def test_a_chunk_computed_from_a_stale_state_is_not_written(node: Node) -> None:
    node.add("phone", phones(random.Random(4), 5), {})
    refresh(node.store, node.keyring, "phone")
    state = node.store.tagsets.state("phone", 1)
    assert state is not None
    stale = TagSetUpdate("phone", 1, state.record_seq - 1, state.record_seq + 7, [], [1], [])
    assert node.store.tagsets.apply(stale) is False
    assert node.store.tagsets.state("phone", 1) == state


def test_rotation_rebuilds_in_the_new_epoch_and_drops_the_old(node: Node) -> None:
    values = phones(random.Random(5), 20)
    node.add("phone", values, {})
    node.add("email", ["a@example.com"], {})
    refresh(node.store, node.keyring)
    node.keyring.rotate()
    results = refresh(node.store, node.keyring)
    assert [(r.kind, r.epoch, r.evaluated) for r in results] == [("email", 2, 1), ("phone", 2, 20)]
    assert entries(node, 1) == {}
    assert node.store.tagsets.state("phone", 1) is None
    rebuilt = {v: (t, k) for v, (t, k, _, _) in entries(node, 2).items()}
    assert rebuilt == truth(node, values, 2)
    assert not set(rebuilt.values()) & set(truth(node, values, 1).values())


def test_concurrent_refreshes_evaluate_each_record_once(node: Node) -> None:
    values = phones(random.Random(6), 120)
    node.add("phone", values, {})
    path = node.root / "store.db"
    evaluated: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Store.open(path) as store:
                (result,) = refresh(store, node.keyring, "phone", chunk=20)
                evaluated.append(result.evaluated)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(evaluated) == 120
    assert {v: (t, k) for v, (t, k, _, _) in entries(node).items()} == truth(node, values)
