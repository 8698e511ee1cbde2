"""Evaluation budgets: exact counting, idempotent retries, refusals with the figures."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.errors import BudgetExhausted, ProtocolViolation, UnknownPeer
from node.identity import NodeID
from node.store import Store
from node.store.budget import batch_key
from node.store.peers import PeerRecord


def pin(store: Store, name: str, budget: int = 1000) -> PeerRecord:
    return store.peers.add(
        PeerRecord(
            node_id=str(NodeID(hashlib.sha256(name.encode()).digest())),
            name=name,
            cert_pem="PEM",
            addresses=(),
            kinds=None,
            labels=None,
            budget=budget,
            policy_version=0,
            added_at="2024-05-01T10:00:00.000000+00:00",
        )
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "aif.db") as s:
        yield s


@pytest.fixture
def lender(store: Store) -> PeerRecord:
    return pin(store, "lender")


def test_charge_counts_and_returns_the_remainder(store: Store, lender: PeerRecord) -> None:
    pid = lender.node_id
    assert store.budget.used(pid, 3) == 0
    assert store.budget.remaining(pid, 3, 1000) == 1000
    assert store.budget.charge(pid, 3, b"a", 100, 1000, "lender") == 900
    assert store.budget.charge(pid, 3, b"b", 250, 1000, "lender") == 650
    assert store.budget.used(pid, 3) == 350
    assert store.budget.remaining(pid, 3, 1000) == 650
    # Epochs and peers are counted apart.
    assert store.budget.used(pid, 4) == 0
    assert store.budget.charge(pid, 4, b"a", 1, 1000, "lender") == 999
    bank = pin(store, "bank")
    assert store.budget.charge(bank.node_id, 3, b"a", 7, 10, "bank") == 3
    assert store.budget.used(pid, 3) == 350


def test_a_retry_is_not_charged_again(store: Store, lender: PeerRecord) -> None:
    pid = lender.node_id
    assert store.budget.charge(pid, 3, b"a", 100, 1000, "lender") == 900
    assert store.budget.charge(pid, 3, b"b", 50, 1000, "lender") == 850
    # A retry answers with the current remainder, not the one of its first charge.
    assert store.budget.charge(pid, 3, b"a", 100, 1000, "lender") == 850
    assert store.budget.used(pid, 3) == 150


def test_a_retry_with_another_size_is_a_violation(store: Store, lender: PeerRecord) -> None:
    store.budget.charge(lender.node_id, 3, b"\x01\x02", 100, 1000, "lender")
    with pytest.raises(ProtocolViolation, match="batch 0102 was charged for 100 evaluations"):
        store.budget.charge(lender.node_id, 3, b"\x01\x02", 99, 1000, "lender")
    assert store.budget.used(lender.node_id, 3) == 100


def test_over_budget_is_refused_with_the_figures(store: Store, lender: PeerRecord) -> None:
    pid = lender.node_id
    budget = 1_000_000
    assert store.budget.charge(pid, 3, b"a", budget - 1200, budget, "lender") == 1200
    with pytest.raises(BudgetExhausted) as info:
        store.budget.charge(pid, 3, b"b", 4096, budget, "lender")
    assert str(info.value) == (
        "budget exhausted for peer 'lender': a batch of 4,096 evaluations, "
        "1,200 of 1,000,000 left in epoch 3"
    )
    # A refused batch charges nothing and is not remembered: it may come back smaller.
    assert store.budget.used(pid, 3) == budget - 1200
    assert store.budget.charge(pid, 3, b"b", 1200, budget, "lender") == 0
    with pytest.raises(BudgetExhausted, match="a batch of 1 evaluations, 0 of 1,000,000 left"):
        store.budget.charge(pid, 3, b"c", 1, budget, "lender")
    assert store.budget.remaining(pid, 3, budget) == 0


def test_a_budget_cut_below_the_usage_leaves_nothing(store: Store, lender: PeerRecord) -> None:
    pid = lender.node_id
    store.budget.charge(pid, 3, b"a", 500, 1000, "lender")
    assert store.budget.remaining(pid, 3, 200) == 0
    with pytest.raises(BudgetExhausted, match="0 of 200 left in epoch 3"):
        store.budget.charge(pid, 3, b"b", 1, 200, "lender")
    assert store.budget.charge(pid, 3, b"a", 500, 200, "lender") == 0  # a retry still answers


def test_only_pinned_peers_are_charged(store: Store, lender: PeerRecord) -> None:
    stranger = str(NodeID(bytes(32)))
    with pytest.raises(UnknownPeer, match=f"node ID {stranger} is not a pinned peer"):
        store.budget.charge(stranger, 3, b"a", 1, 1000, "stranger")
    store.peers.remove("lender")
    with pytest.raises(UnknownPeer):
        store.budget.charge(lender.node_id, 3, b"a", 1, 1000, "lender")
    assert store.budget.used(lender.node_id, 3) == 0


@pytest.mark.parametrize(
    ("n", "budget", "epoch"), [(0, 10, 1), (-1, 10, 1), (1, -1, 1), (1, 10, -1)]
)
def test_nonsense_arguments(
    store: Store, lender: PeerRecord, n: int, budget: int, epoch: int
) -> None:
    with pytest.raises(ValueError, match="must"):
        store.budget.charge(lender.node_id, epoch, b"a", n, budget, "lender")


def test_forget_before_drops_old_epochs(store: Store, lender: PeerRecord) -> None:
    for epoch in (1, 2, 3):
        store.budget.charge(lender.node_id, epoch, b"a", epoch, 1000, "lender")
    assert store.budget.forget_before(3) == 2
    assert [store.budget.used(lender.node_id, e) for e in (1, 2, 3)] == [0, 0, 3]
    # The batch of epoch 1 is forgotten with its counter.
    assert store.budget.charge(lender.node_id, 1, b"a", 1, 1000, "lender") == 999


def test_batch_key_binds_the_id_and_the_elements() -> None:
    blinded = bytes(range(64))
    key = batch_key(b"id", blinded)
    assert len(key) == 32
    assert batch_key(b"id", blinded) == key
    assert batch_key(b"id", blinded[:32] + bytes(32)) != key
    assert batch_key(b"id2", blinded) != key
    # The boundary between ID and elements is part of the key.
    assert batch_key(b"ab", b"c") != batch_key(b"a", b"bc")


# --- concurrency ---------------------------------------------------------------------------
# Every batch has N elements, so whatever the interleaving exactly BUDGET // N batches fit,
# and the remainders handed out are BUDGET - N, BUDGET - 2N, ... each exactly once.

N = 7
BUDGET = 1000
FITTING = BUDGET // N  # 142


def _charge_many(path: Path, peer_id: str, worker: int, batches: int) -> tuple[list[int], int]:
    """Charge `batches` fresh batches, then retry every accepted one; return the remainders
    of the accepted charges and the number of refusals."""
    accepted: dict[bytes, int] = {}
    refused = 0
    with Store.open(path) as store:
        for i in range(batches):
            batch = f"{worker}/{i}".encode()
            try:
                accepted[batch] = store.budget.charge(peer_id, 5, batch, N, BUDGET, "lender")
            except BudgetExhausted:
                refused += 1
        for batch, first in accepted.items():
            assert store.budget.charge(peer_id, 5, batch, N, BUDGET, "lender") <= first
    return list(accepted.values()), refused


def _check_exact(store: Store, peer_id: str, results: list[tuple[list[int], int]]) -> None:
    remainders = [left for accepted, _ in results for left in accepted]
    refused = sum(r for _, r in results)
    attempts = len(remainders) + refused
    assert attempts > FITTING  # the test does reach the boundary
    assert len(remainders) == FITTING
    assert refused == attempts - FITTING
    assert Counter(remainders) == Counter(BUDGET - N * k for k in range(1, FITTING + 1))
    assert store.budget.used(peer_id, 5) == N * FITTING
    assert store.conn.execute("SELECT count(*) FROM budget_batches").fetchone()[0] == FITTING


def test_threads_with_their_own_connections_count_exactly(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    threads, batches = 6, 30
    with Store.open(path) as store:
        peer_id = pin(store, "lender").node_id
        start = threading.Barrier(threads)
        results: list[tuple[list[int], int]] = []
        errors: list[BaseException] = []

        def run(worker: int) -> None:
            try:
                start.wait()
                results.append(_charge_many(path, peer_id, worker, batches))
            except BaseException as exc:
                errors.append(exc)

        pool = [threading.Thread(target=run, args=(w,)) for w in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert errors == []
        _check_exact(store, peer_id, results)


def _charge_after(path: Path, peer_id: str, worker: int, batches: int, start: Any) -> Any:
    start.wait()
    return _charge_many(path, peer_id, worker, batches)


def _charge_shared(path: Path, peer_id: str, batches: int, start: Any) -> list[int]:
    """Every process charges the same batch IDs: each must be charged once in all."""
    with Store.open(path) as store:
        start.wait()
        return [
            store.budget.charge(peer_id, 6, b"shared%d" % i, 5, 10**6, "x") for i in range(batches)
        ]


def _report(target: Any, args: tuple[Any, ...], out: Any) -> None:
    """Run in a child: send back the result, or the failure (so the parent does not wait)."""
    try:
        out.put(("ok", target(*args)))
    except BaseException as exc:
        out.put(("failed", repr(exc)))
        raise


def _run_processes(target: Any, args: list[tuple[Any, ...]]) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(len(args), timeout=60)
    out = ctx.Queue()
    procs = [ctx.Process(target=_report, args=(target, (*a, start), out)) for a in args]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [r for r in results if r[0] != "ok"] == []
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return [r[1] for r in results]


def test_processes_count_exactly(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    with Store.open(path) as store:
        peer_id = pin(store, "lender").node_id
        results = _run_processes(_charge_after, [(path, peer_id, w, 45) for w in range(4)])
        _check_exact(store, peer_id, results)


def test_processes_charge_a_shared_batch_once(tmp_path: Path) -> None:
    path = tmp_path / "aif.db"
    batches = 25
    with Store.open(path) as store:
        peer_id = pin(store, "lender").node_id
        results = _run_processes(_charge_shared, [(path, peer_id, batches) for _ in range(3)])
        assert store.budget.used(peer_id, 6) == 5 * batches
        # Each process saw the remainder fall (or stay, on another's charge) as it went.
        for remainders in results:
            assert remainders == sorted(remainders, reverse=True)
            assert remainders[-1] >= 10**6 - 5 * batches
