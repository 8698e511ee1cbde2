"""The store collector: every figure read from a real store at scrape time, and a store that
cannot be read counted as a scrape error instead of breaking the scrape."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from transport_nodes import TNode, make_node

from node.errors import StoreError
from node.psi import tagset
from node.store import RecordIn, Store
from node.store.runs import MatchRun
from node.telemetry.collector import StoreCollector

DAY = "2024-05-01"


def _registry(node: TNode) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(StoreCollector(node.open_store, node.keyring.current_epoch))
    return registry


def _run(peer_id: str, status: str, at: str, trigger: str = "schedule") -> MatchRun:
    return MatchRun(peer_id, "ignored", trigger, at, at, status, "" if status == "OK" else "down")


def _families(registry: CollectorRegistry) -> dict[str, int]:
    """Samples per family name."""
    return {family.name: len(family.samples) for family in registry.collect()}


def test_a_fresh_store_has_its_epoch_and_no_figures(tmp_path: Path) -> None:
    registry = _registry(make_node(tmp_path, "alpha"))
    assert registry.get_sample_value("aif_epoch") == 1
    assert registry.get_sample_value("aif_scrape_errors_total") == 0
    samples = _families(registry)
    assert samples.pop("aif_epoch") == 1
    assert samples.pop("aif_scrape_errors") == 1
    assert set(samples.values()) == {0}
    assert "aif_tagset_size" in samples and "aif_match_runs" in samples


def test_figures_follow_the_store(tmp_path: Path) -> None:
    alpha, bravo, charlie = (make_node(tmp_path, n) for n in ("alpha", "bravo", "charlie"))
    alpha.pin(bravo, budget=500)
    alpha.pin(charlie)
    registry = _registry(alpha)
    b = str(bravo.node_id)
    with alpha.open_store() as store:
        store.records.upsert_batch(
            "phone", [RecordIn(f"1380013800{i}", (), DAY, DAY) for i in range(3)]
        )
        store.records.upsert_batch("email", [RecordIn("a@example.com", ("x",), DAY, DAY)])
        store.records.remove("phone", ["13800138000"])
        tagset.refresh(store, alpha.keyring)
        store.budget.charge(b, 1, b"batch-1", 7, 500, "bravo")
        store.grants.record(b, 4, 1000, 900, "2024-05-01T00:00:00+00:00")
        ids = [int(r) for (r,) in store.conn.execute("SELECT id FROM records WHERE removed = 0")]
        store.matches.replace_matches(b, "phone", [(ids[0], ()), (ids[1], ())], DAY)
        store.runs.record(_run(b, "OK", "2024-05-01T10:00:00+00:00", "manual"))
        store.runs.record(_run(b, "PeerUnavailable", "2024-05-02T10:00:00+00:00"))
        store.runs.record(_run(b, "PeerUnavailable", "2024-05-03T10:00:00+00:00"))
        store.runs.record(_run("GONE", "OK", "2024-05-03T10:00:00+00:00"))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("aif_records", kind="phone") == 2
    assert value("aif_records", kind="email") == 1
    assert value("aif_tagset_size", kind="phone") == 2
    assert value("aif_tagset_size", kind="email") == 1
    assert value("aif_budget_granted", peer="bravo") == 500
    assert value("aif_budget_used", peer="bravo") == 7
    assert value("aif_budget_used", peer="charlie") == 0
    assert value("aif_peer_budget_granted", peer="bravo") == 1000
    assert value("aif_peer_budget_remaining", peer="bravo") == 900
    assert value("aif_peer_budget_granted", peer="charlie") is None
    assert value("aif_matches", peer="bravo") == 2
    assert value("aif_matches", peer="charlie") == 0
    may_3 = datetime.fromisoformat("2024-05-03T10:00:00+00:00").timestamp()
    may_1 = datetime.fromisoformat("2024-05-01T10:00:00+00:00").timestamp()
    assert (
        value("aif_last_match_timestamp_seconds", peer="bravo", status="PeerUnavailable") == may_3
    )
    assert value("aif_last_successful_match_timestamp_seconds", peer="bravo") == may_1
    assert value("aif_last_match_timestamp_seconds", peer="charlie", status="OK") is None
    assert value("aif_match_runs_total", peer="bravo", trigger="manual", status="OK") == 1
    assert (
        value("aif_match_runs_total", peer="bravo", trigger="schedule", status="PeerUnavailable")
        == 2
    )
    # Runs of a peer no longer pinned are not labelled: peer names stay bounded.
    assert _families(registry)["aif_match_runs"] == 2


def test_a_store_that_cannot_be_read_is_a_counted_scrape_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alpha = make_node(tmp_path, "alpha")
    broken = [True]

    def open_store() -> Store:
        if broken[0]:
            raise StoreError(f"{alpha.db_path}: disk I/O error")
        return alpha.open_store()

    registry = CollectorRegistry()
    registry.register(StoreCollector(open_store, alpha.keyring.current_epoch))
    with caplog.at_level(logging.ERROR, logger="node.telemetry.collector"):
        first = _scrape(registry)
    assert first == {"aif_scrape_errors_total": 1}
    assert "disk I/O error" in caplog.text
    broken[0] = False
    second = _scrape(registry)
    assert second["aif_epoch"] == 1
    assert second["aif_scrape_errors_total"] == 1


def _scrape(registry: CollectorRegistry) -> dict[str, float]:
    """One scrape's unlabelled samples by name."""
    return {s.name: s.value for f in registry.collect() for s in f.samples if not s.labels}
