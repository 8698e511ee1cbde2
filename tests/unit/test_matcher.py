"""The matcher against real evaluators of other nodes: exact intersections and labels,
caching, delta syncs, removals on either side, epoch rotation, budgets and policies.

Expected results come from plain set intersection over the values each test put in."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from psi_nodes import (
    LocalRemote,
    Node,
    emails,
    expected_matches,
    make_node,
    phones,
    random_labels,
)

from node.errors import BudgetExhausted, PermissionDenied
from node.psi import evaluator as evaluator_module
from node.psi.types import EvalBatch, EvalResult, KindSummary, TagChunk

SHOWN = ("fraud_ring", "mule_account")


@dataclass
class World:
    """Two nodes and what each holds, kept in plain sets for the ground truth."""

    a: Node
    b: Node
    held: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    labels: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def add(self, node: Node, kind: str, values: list[str], rng: random.Random) -> None:
        labels = random_labels(rng, values)
        node.add(kind, values, labels)
        self.held.setdefault(node.name, {}).setdefault(kind, set()).update(values)
        self.labels.setdefault(node.name, {}).update(labels)

    def remove(self, node: Node, kind: str, values: list[str]) -> None:
        node.remove(kind, values)
        self.held[node.name][kind] -= set(values)

    def relabel(self, node: Node, kind: str, value: str, extra: str) -> None:
        node.add(kind, [value], {value: (extra,)})
        merged = set(self.labels[node.name].get(value, ())) | {extra}
        self.labels[node.name][value] = tuple(sorted(merged))

    def expected(
        self, me: Node, them: Node, shown: tuple[str, ...] | None
    ) -> dict[tuple[str, str], tuple[str, ...]]:
        return expected_matches(
            self.held[me.name], self.held[them.name], self.labels[them.name], shown
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    rng = random.Random(7)
    a, b = make_node(tmp_path, "alpha"), make_node(tmp_path, "bravo")
    world = World(a, b)
    shared_phones, shared_emails = phones(rng, 60), emails(rng, 10)
    own_a, own_b = phones(rng, 480), emails(rng, 90)
    world.add(a, "phone", shared_phones + own_a[:240], rng)
    world.add(a, "email", shared_emails + own_b[:40], rng)
    world.add(b, "phone", shared_phones + own_a[240:], rng)
    world.add(b, "email", shared_emails + own_b[40:], rng)
    a.pin(b)  # bravo sees all of alpha's labels
    b.pin(a, labels=SHOWN)  # alpha sees only two of bravo's labels
    yield world
    a.store.close()
    b.store.close()


def phones_only(
    matches: dict[tuple[str, str], tuple[str, ...]],
) -> dict[tuple[str, str], tuple[str, ...]]:
    return {k: v for k, v in matches.items() if k[0] == "phone"}


def by_kind(summaries: list[KindSummary]) -> dict[str, KindSummary]:
    return {s.kind: s for s in summaries}


def test_both_sides_find_exactly_the_intersection_with_the_labels_allowed(world: World) -> None:
    a, b = world.a, world.b
    summary = by_kind(a.matcher(b).match())
    expected = world.expected(a, b, SHOWN)
    assert len(expected) == 70
    assert a.matched("bravo") == expected
    assert summary["phone"].evaluated == 300 and summary["email"].evaluated == 50
    assert summary["phone"].cached == 0 and summary["phone"].full_sync
    assert summary["phone"].matches == summary["phone"].new_matches == 60
    assert summary["email"].matches == 10
    assert summary["phone"].tags_received == 300 and summary["phone"].peer_set_size == 300
    assert summary["phone"].labels_undecryptable == 0
    # Bravo charged alpha for exactly the records alpha holds.
    assert b.store.budget.used(a.node_id, 1) == 350
    # Some shared records carry labels outside the policy: they were filtered, not lost.
    assert any(set(world.labels["bravo"][v]) - set(SHOWN) for _, v in expected)

    b.matcher(a).match()
    assert b.matched("alpha") == world.expected(b, a, None)
    assert set(b.matched("alpha")) == set(expected)


def test_a_repeated_match_evaluates_only_new_records(world: World) -> None:
    a, b = world.a, world.b
    a.matcher(b).match()
    rng = random.Random(11)
    both = phones(rng, 1)
    world.add(a, "phone", both + phones(rng, 2), rng)  # 1% of alpha's 300 phones
    world.add(b, "phone", both, rng)
    remote = a.remote(b)
    summary = by_kind(a.matcher(b, remote, at="later").match())
    assert summary["phone"].evaluated == 3 and summary["phone"].cached == 300
    assert summary["email"].evaluated == 0 and summary["email"].cached == 50
    assert remote.batches == 1
    assert b.store.budget.used(a.node_id, 1) == 353
    assert not summary["phone"].full_sync and summary["phone"].tags_received == 1
    assert summary["phone"].matches == 61 and summary["phone"].new_matches == 1
    assert a.matched("bravo") == world.expected(a, b, SHOWN)
    when = {c.value: p.matched_at for c in a.store.matches.collisions(1) for p in c.peers}
    assert when[both[0]] == "later"
    assert set(when.values()) == {"later", "2024-05-02T00:00:00"}, "first-found times are kept"

    again = by_kind(a.matcher(b).match())
    assert (again["phone"].evaluated, again["phone"].tags_received, again["phone"].matches) == (
        0,
        0,
        61,
    )


def test_changes_at_the_peer_arrive_as_a_delta(world: World) -> None:
    a, b = world.a, world.b
    a.matcher(b).match()
    shared = sorted(world.held["alpha"]["phone"] & world.held["bravo"]["phone"])
    only_a = sorted(world.held["alpha"]["phone"] - world.held["bravo"]["phone"])
    world.add(b, "phone", only_a[:2], random.Random(3))
    world.remove(b, "phone", shared[:3])
    relabelled = next(v for v in shared[3:] if "mule_account" not in world.labels["bravo"][v])
    world.relabel(b, "phone", relabelled, "mule_account")
    summary = by_kind(a.matcher(b).match())
    phone = summary["phone"]
    assert not phone.full_sync
    assert (phone.evaluated, phone.tags_received, phone.tags_removed) == (0, 3, 3)
    assert phone.matches == 60 + 2 - 3
    matched = a.matched("bravo")
    assert matched == world.expected(a, b, SHOWN)
    assert "mule_account" in matched[("phone", relabelled)]
    assert not any(("phone", v) in matched for v in shared[:3])


def test_own_removals_drop_matches_and_revivals_cost_nothing(world: World) -> None:
    a, b = world.a, world.b
    a.matcher(b).match()
    shared = sorted(world.held["alpha"]["email"] & world.held["bravo"]["email"])
    world.remove(a, "email", shared[:4])
    summary = by_kind(a.matcher(b).match())
    assert summary["email"].matches == 6 and summary["email"].evaluated == 0
    assert a.matched("bravo") == world.expected(a, b, SHOWN)
    # Imported again: the cached evaluation still holds, nothing is charged.
    world.add(a, "email", shared[:4], random.Random(5))
    used = b.store.budget.used(a.node_id, 1)
    summary = by_kind(a.matcher(b).match())
    assert summary["email"].matches == 10 and summary["email"].evaluated == 0
    assert b.store.budget.used(a.node_id, 1) == used


def test_a_policy_change_brings_a_full_sync_with_the_new_labels(world: World) -> None:
    a, b = world.a, world.b
    a.matcher(b).match()
    b.store.peers.update_policy(a.name, labels=["fake_complaint"])
    summary = by_kind(a.matcher(b).match())
    assert summary["phone"].full_sync and summary["phone"].tags_received == 300
    assert summary["phone"].evaluated == 0
    assert a.matched("bravo") == world.expected(a, b, ("fake_complaint",))


def test_epoch_rotation_at_the_peer_reevaluates_everything(world: World) -> None:
    a, b = world.a, world.b
    a.matcher(b).match()
    before = a.matched("bravo")
    only_a = sorted(world.held["alpha"]["phone"] - world.held["bravo"]["phone"])
    world.remove(a, "phone", only_a[:1])  # its cached result must go with the old epoch too
    b.keyring.rotate()
    summary = by_kind(a.matcher(b).match())
    assert summary["phone"].evaluated == 299 and summary["phone"].cached == 0
    assert summary["email"].evaluated == 50 and summary["phone"].full_sync
    assert a.matched("bravo") == before == world.expected(a, b, SHOWN)
    stale = a.store.conn.execute("SELECT count(*) FROM match_cache WHERE epoch <> 2").fetchone()
    assert stale[0] == 0
    assert b.store.budget.used(a.node_id, 2) == 349
    # The old epoch's tag set is gone at bravo.
    old = b.store.conn.execute("SELECT count(*) FROM tagset_entries WHERE epoch = 1").fetchone()
    assert old[0] == 0


def test_rotation_during_a_match_restarts_it_under_the_new_epoch(world: World) -> None:
    a, b = world.a, world.b

    class RotatesOnSync(LocalRemote):
        rotated = False

        def sync_tags(
            self, kind: str, epoch: int, since_version: int, policy_token: str
        ) -> Iterator[TagChunk]:
            if not self.rotated:
                self.rotated = True
                b.keyring.rotate()
            return super().sync_tags(kind, epoch, since_version, policy_token)

    summary = by_kind(a.matcher(b, RotatesOnSync(b, a.node_id)).match())
    assert summary["phone"].evaluated == 300 and summary["email"].evaluated == 50
    assert a.matched("bravo") == world.expected(a, b, SHOWN)


def test_rotation_before_the_evaluation_restarts_the_match(world: World) -> None:
    a, b = world.a, world.b

    class RotatesOnEvaluate(LocalRemote):
        rotated = False

        def evaluate(
            self, epoch: int, kind: str, batches: Iterator[EvalBatch]
        ) -> Iterator[EvalResult]:
            if not self.rotated:
                self.rotated = True
                b.keyring.rotate()
            return super().evaluate(epoch, kind, batches)

    remote = RotatesOnEvaluate(b, a.node_id)
    summary = by_kind(a.matcher(b, remote).match())
    assert summary["phone"].evaluated == 300 and summary["email"].evaluated == 50
    assert a.matched("bravo") == world.expected(a, b, SHOWN)
    assert b.store.budget.used(a.node_id, 1) == 0 and b.store.budget.used(a.node_id, 2) == 350


def test_budget_exhausted_mid_match_stores_no_half_matches(world: World) -> None:
    a, b = world.a, world.b
    b.store.peers.update_policy(a.name, budget=350 + 100)
    a.matcher(b).match()
    before = a.matched("bravo")
    # Alpha's new records include some bravo holds, and bravo changed its set meanwhile:
    # a partial update would show.
    rng = random.Random(13)
    new = phones(rng, 200)
    world.add(a, "phone", new, rng)
    world.add(b, "phone", new[:20], rng)
    world.remove(
        b, "phone", sorted(world.held["alpha"]["phone"] & world.held["bravo"]["phone"])[:5]
    )
    with pytest.raises(BudgetExhausted, match="36 of 450 left in epoch 1"):
        a.matcher(b, batch=64).match()
    assert a.matched("bravo") == before
    assert b.store.budget.used(a.node_id, 1) == 350 + 64
    # What was paid for is kept: with more budget, only the rest is evaluated.
    b.store.peers.update_policy(a.name, budget=10_000)
    summary = by_kind(a.matcher(b, batch=64).match())
    assert summary["phone"].evaluated == 200 - 64 and summary["phone"].cached == 300 + 64
    assert a.matched("bravo") == world.expected(a, b, SHOWN)


def test_a_kind_the_peer_does_not_offer_is_skipped_and_its_matches_dropped(world: World) -> None:
    a, b = world.a, world.b
    a.matcher(b).match()
    b.store.peers.update_policy(a.name, kinds=["email"])
    summary = by_kind(a.matcher(b).match())
    assert summary["phone"].skipped is not None and "does not offer" in summary["phone"].skipped
    assert summary["email"].skipped is None and summary["email"].matches == 10
    expected = {k: v for k, v in world.expected(a, b, SHOWN).items() if k[0] == "email"}
    assert len(expected) == 10
    assert a.matched("bravo") == expected
    # Asking anyway is refused by bravo, before anything is charged.
    alpha = b.store.peers.get_by_id(a.node_id)
    assert alpha is not None
    used = b.store.budget.used(a.node_id, 1)
    with pytest.raises(PermissionDenied):
        b.evaluator.evaluate(alpha, 1, "phone", EvalBatch(bytes(16), bytes(32)))
    with pytest.raises(PermissionDenied):
        b.evaluator.sync_tags(alpha, "phone", 1, 0, "")
    assert b.store.budget.used(a.node_id, 1) == used


def test_labels_that_do_not_open_are_counted_not_stored(world: World) -> None:
    a, b = world.a, world.b

    class Tampers(LocalRemote):
        def sync_tags(
            self, kind: str, epoch: int, since_version: int, policy_token: str
        ) -> Iterator[TagChunk]:
            for chunk in super().sync_tags(kind, epoch, since_version, policy_token):
                sealed = tuple(s[:-1] + bytes([s[-1] ^ 1]) for s in chunk.added_sealed)
                yield replace(chunk, added_sealed=sealed)

    summary = by_kind(a.matcher(b, Tampers(b, a.node_id)).match())
    assert summary["phone"].labels_undecryptable == 60 and summary["phone"].matches == 0
    assert a.matched("bravo") == {}


def test_an_interrupted_full_sync_is_redone_in_full(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = world.a, world.b
    a.matcher(b).match(["phone"])
    b.store.peers.update_policy(a.name, labels=None)
    monkeypatch.setattr(evaluator_module, "MAX_TAG_CHUNK", 50)

    class Breaks(LocalRemote):
        def sync_tags(
            self, kind: str, epoch: int, since_version: int, policy_token: str
        ) -> Iterator[TagChunk]:
            chunks = super().sync_tags(kind, epoch, since_version, policy_token)
            yield next(chunks)
            raise ConnectionError("link lost")

    with pytest.raises(ConnectionError):
        a.matcher(b, Breaks(b, a.node_id)).match(["phone"])
    assert a.matched("bravo") == phones_only(world.expected(a, b, SHOWN)), "matches untouched"
    summary = by_kind(a.matcher(b).match(["phone"]))
    assert summary["phone"].full_sync and summary["phone"].tags_received == 300
    assert a.matched("bravo") == phones_only(world.expected(a, b, None))


def test_three_members_collide(tmp_path: Path, world: World) -> None:
    a, b = world.a, world.b
    c = make_node(tmp_path, "charlie")
    rng = random.Random(17)
    a_phones = world.held["alpha"]["phone"]
    with_b = sorted(a_phones & world.held["bravo"]["phone"])
    c_values = with_b[:15] + sorted(a_phones - set(with_b))[:25] + phones(rng, 50)
    c_labels = random_labels(rng, c_values)
    c.add("phone", c_values, c_labels)
    a.pin(c)
    c.pin(a)
    a.matcher(b).match()
    a.matcher(c).match()
    in_b = world.held["bravo"]["phone"]
    expected = {v for v in c_values if v in in_b and v in a_phones}
    assert len(expected) == 15
    collisions = a.store.matches.collisions(min_peers=2)
    assert {c.value for c in collisions} == expected
    for hit in collisions:
        assert [p.peer for p in hit.peers] == ["bravo", "charlie"]
        shown_b = tuple(x for x in world.labels["bravo"][hit.value] if x in SHOWN)
        assert hit.peers[0].labels == shown_b
        assert hit.peers[1].labels == c_labels[hit.value]
        assert hit.own_labels == world.labels["alpha"][hit.value]
    # Unpinning charlie takes its matches with it.
    a.store.peers.remove("charlie")
    assert a.store.matches.collisions(min_peers=2) == []
    c.store.close()
