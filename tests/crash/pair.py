"""Two members that match against each other, and the ground truth of what the initiator
must have stored.

The truth comes from the canonical values the members were given (node.sampledata makes
them canonical first, then spells them untidily for the import) and from the changes the
test itself makes between matches; never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from node.datadir import DataDir
from node.ingest import import_file
from node.psi.matcher import Matcher
from node.psi.types import KindSummary
from node.sampledata import GENERATORS, LABELS, make_federation, write_member_files
from node.store import RecordIn, Store
from node.transport.client import PeerClient
from tests.integration.conftest import Member

KINDS = ("id_card", "phone")
SIZE = 180
SHARED = 15
BATCH = 128
"""Elements per evaluation batch: several batches per kind, so a kill can fall between them."""

Match = tuple[str, tuple[str, ...]]
"""(canonical value, the labels the peer shared), as the initiator stores a match."""


def open_store(member: Member) -> Store:
    """The member's store, for a look or a change between kills (no checks: see `checked`)."""
    return Store.open(DataDir(member.data_dir).db_path)


def _show(values: frozenset[Match]) -> str:
    shown = sorted(values)[:3]
    return f"{len(values)} e.g. {shown}"


@dataclass
class Pair:
    """`a` ("bank") matches against `b` ("lender"), which serves."""

    a: Member
    b: Member
    a_values: dict[str, set[str]]
    b_values: dict[str, dict[str, frozenset[str]]]
    rng: random.Random
    a_sees_b: str = ""
    """b's node ID as a's store keys it."""
    b_sees_a: str = ""
    stored: dict[str, frozenset[Match]] = field(default_factory=dict)
    """What a's store held for each kind at the last look: the complete previous result."""

    @classmethod
    def create(cls, root: Path, rng: random.Random) -> Pair:
        """Two members in `root`, pinned to each other, each holding its sample clues;
        a evaluates in batches of BATCH."""
        fed = make_federation(
            ("bank", "lender"), KINDS, size=SIZE, shared=SHARED, seed=rng.randrange(2**31)
        )
        a, b = Member("bank", root), Member("lender", root)
        for member in (a, b):
            member.init()
            files = write_member_files(fed.member(member.name), root / f"{member.name}-files")
            datadir = DataDir(member.data_dir)
            with datadir.open_store() as store:
                for kind, path in files.items():
                    import_file(store, path, kind, datadir.kinds())
        a.pin(b)
        b.pin(a)
        with (a.data_dir / "config.toml").open("a", encoding="utf-8") as fh:
            fh.write(f"\n[match]\nbatch_elements = {BATCH}\n")
        pair = cls(
            a=a,
            b=b,
            a_values={k: set(fed.member("bank").clues[k]) for k in KINDS},
            b_values={
                k: {v: frozenset(labels) for v, labels in fed.member("lender").clues[k].items()}
                for k in KINDS
            },
            rng=rng,
            stored={k: frozenset() for k in KINDS},
        )
        with open_store(a) as store:
            pair.a_sees_b = store.peers.find("lender").node_id
        with open_store(b) as store:
            pair.b_sees_a = store.peers.find("bank").node_id
        return pair

    # --- the ground truth ---------------------------------------------------------------------

    def expected(self, kind: str) -> frozenset[Match]:
        held = self.b_values[kind]
        return frozenset((v, tuple(sorted(held[v]))) for v in self.a_values[kind] if v in held)

    def check_matches(self, store: Store, context: str, *, complete: bool) -> None:
        """a's matches of each kind are the complete new result (`complete`), or else the
        complete new or the complete previous one: never a mixture."""
        for kind in KINDS:
            rows = store.conn.execute(
                "SELECT r.value, m.labels FROM matches AS m JOIN records AS r "
                "ON r.id = m.record_id WHERE m.peer_id = ? AND m.kind = ?",
                (self.a_sees_b, kind),
            ).fetchall()
            actual = frozenset((str(v), tuple(json.loads(labels))) for v, labels in rows)
            new, old = self.expected(kind), self.stored[kind]
            allowed = (new,) if complete else (old, new)
            assert actual in allowed, (
                f"{context}: {kind} matches are neither the "
                f"{'new' if complete else 'previous or the new'} result: "
                f"stored {_show(actual)}; new {_show(new)}; previous {_show(old)}; "
                f"missing from new {_show(new - actual)}; extra {_show(actual - new)}"
            )
            self.stored[kind] = actual

    # --- changes between matches --------------------------------------------------------------

    def mutate(self) -> None:
        """Change both members a little, so that every match has a new result to store:
        a gains a record b holds and one nobody holds; b gains a record a holds, drops one
        and adds a label to another (a removal and a label change must reach a's matches)."""
        rng = self.rng
        today = dt.date.today().isoformat()
        a_rows: dict[str, list[RecordIn]] = {}
        b_rows: dict[str, list[RecordIn]] = {}
        b_gone: dict[str, list[str]] = {}
        for kind in KINDS:
            mine, theirs = self.a_values[kind], self.b_values[kind]
            shared = sorted(v for v in mine if v in theirs)
            dropped, relabelled = rng.sample(shared, 2)
            only_b = rng.choice(sorted(set(theirs) - mine))
            only_a = rng.choice(sorted(mine - set(theirs)))
            fresh = GENERATORS[kind](rng)
            while fresh in mine or fresh in theirs:
                fresh = GENERATORS[kind](rng)
            added_label = rng.choice(LABELS)
            new_labels = frozenset(rng.sample(LABELS, rng.randint(1, 2)))
            a_rows[kind] = [RecordIn(v, ("fraud_ring",), today, today) for v in (only_b, fresh)]
            b_rows[kind] = [
                RecordIn(only_a, tuple(sorted(new_labels)), today, today),
                RecordIn(relabelled, (added_label,), today, today),
            ]
            b_gone[kind] = [dropped]
            mine.update((only_b, fresh))
            theirs[only_a] = new_labels
            theirs[relabelled] = theirs[relabelled] | {added_label}
            del theirs[dropped]
        self._write(self.a, a_rows, {})
        self._write(self.b, b_rows, b_gone)

    @staticmethod
    def _write(
        member: Member, rows: dict[str, list[RecordIn]], removed: dict[str, list[str]]
    ) -> None:
        with open_store(member) as store, store.transaction():
            for kind, batch in rows.items():
                store.records.upsert_batch(kind, batch)
            for kind, values in removed.items():
                store.records.remove(kind, values)

    def rotate(self) -> int:
        """What `aif-node keys rotate` does at b (but its audit entry): a new epoch, so a's
        next match evaluates everything again."""
        new = DataDir(self.b.data_dir).keyring.rotate()
        with open_store(self.b) as store:
            store.budget.forget_before(new.epoch - 1)
        return new.epoch

    def epoch(self) -> int:
        return DataDir(self.b.data_dir).keyring.current_epoch()

    # --- matching and budgets -----------------------------------------------------------------

    def match(self) -> list[KindSummary]:
        """a matches b in this process, as `aif-node match` does (without its audit entry)."""
        datadir = DataDir(self.a.data_dir)
        config = datadir.config()
        with datadir.open_store() as store:
            peer = store.peers.find("lender")
            with PeerClient(
                peer,
                datadir.identity(),
                config.match,
                max_message_bytes=config.serve.max_message_bytes,
            ) as client:
                return Matcher(
                    store, peer, client, batch_elements=config.match.batch_elements
                ).match()

    def answered(self, store: Store, epoch: int) -> dict[str, int]:
        """Per kind, a's records with a cached evaluation from b in `epoch`: all answered."""
        return {k: store.matches.cached_count(self.a_sees_b, k, epoch) for k in KINDS}

    def unanswered(self, store: Store, epoch: int) -> dict[str, int]:
        """Per kind, a's live records that a match in `epoch` still has to send b."""
        answered = self.answered(store, epoch)
        return {k: store.tagsets.live_size(k) - answered[k] for k in KINDS}

    def stage(self, answered: dict[str, int], to_send: dict[str, int]) -> str:
        """How far a killed match got, from what a stored (call it right after
        `check_matches`): kinds are matched in order, each evaluated, synced, then joined."""
        for kind in KINDS:
            if answered[kind] < to_send[kind]:
                first = kind == KINDS[0] and not answered[kind]
                return "before the first answer" if first else f"{kind} evaluating"
            if self.stored[kind] != self.expected(kind):
                return f"{kind} all answered, not joined"
        return "all joined"

    def charged(self, store: Store, epoch: int) -> int:
        """b's budget use by a in `epoch`, checked against the batches b recorded charging."""
        used = store.budget.used(self.b_sees_a, epoch)
        (batches,) = store.conn.execute(
            "SELECT coalesce(sum(n), 0) FROM budget_batches WHERE peer_id = ? AND epoch = ?",
            (self.b_sees_a, epoch),
        ).fetchone()
        assert used == batches, f"budget counter {used} but {batches} charged in batches"
        return used
