"""Metrics read from the store at scrape time: records, tag sets, budgets, matches, runs.

Each scrape opens its own store connection (the HTTP server's thread is not the one that made
any other) and runs only index-backed counts and per-peer primary-key reads; on a store of
100,000 records and three peers a scrape takes a few tens of milliseconds. A scrape that
cannot read the store logs why, skips these figures and counts `aif_scrape_errors_total`: the
in-process metrics are still served.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.store import Store
from node.store.runs import MatchRun

_log = logging.getLogger(__name__)


class StoreCollector(Collector):
    """Figures for the current epoch, per pinned peer (labelled by name) and per kind."""

    def __init__(self, open_store: Callable[[], Store], current_epoch: Callable[[], int]) -> None:
        self._open_store = open_store
        self._current_epoch = current_epoch
        self._lock = threading.Lock()
        self._errors = 0

    def describe(self) -> list[Metric]:
        """Nothing: registering must not read the store (prometheus_client would collect)."""
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            families = self.read()
        except Exception:
            _log.exception("metrics scrape: cannot read the store's figures")
            with self._lock:
                self._errors += 1
            families = []
        yield from families
        with self._lock:
            errors = self._errors
        yield CounterMetricFamily(
            "aif_scrape_errors", "Scrapes whose store figures could not be read.", value=errors
        )

    def read(self) -> list[Metric]:
        """Every store figure, read in one connection; raises whatever the store raises."""
        epoch = self._current_epoch()
        with self._open_store() as store:
            figures = _Figures(epoch)
            for kind, n in sorted(store.records.live_counts().items()):
                figures.records.add_metric([kind], n)
            for kind, n in sorted(store.tagsets.live_sizes(epoch).items()):
                figures.tagset.add_metric([kind], n)
            names = {}
            for peer in store.peers.list():
                names[peer.node_id] = peer.name
                figures.add_peer(store, peer.node_id, peer.name, peer.budget)
            for peer_id, trigger, status, n in store.runs.counts():
                if peer_id in names:  # a removed peer's runs stay, its label does not
                    figures.runs.add_metric([names[peer_id], trigger, status], n)
        return figures.families()


class _Figures:
    """The metric families of one scrape, filled in as the store is read."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.records = GaugeMetricFamily("aif_records", "Live records per kind.", labels=["kind"])
        self.tagset = GaugeMetricFamily(
            "aif_tagset_size",
            "Live entries of this node's tag set per kind, current epoch.",
            labels=["kind"],
        )
        self.granted = GaugeMetricFamily(
            "aif_budget_granted",
            "Evaluations per epoch this node grants the peer.",
            labels=["peer"],
        )
        self.used = GaugeMetricFamily(
            "aif_budget_used",
            "Evaluations the peer used in this node's current epoch.",
            labels=["peer"],
        )
        self.peer_granted = GaugeMetricFamily(
            "aif_peer_budget_granted",
            "Evaluations per epoch the peer grants this node, as it last said.",
            labels=["peer"],
        )
        self.peer_remaining = GaugeMetricFamily(
            "aif_peer_budget_remaining",
            "What is left of the budget the peer grants this node, as it last said.",
            labels=["peer"],
        )
        self.matches = GaugeMetricFamily(
            "aif_matches",
            "Our records the peer holds too, as of the last match.",
            labels=["peer"],
        )
        self.last = GaugeMetricFamily(
            "aif_last_match_timestamp_seconds",
            "When this node's newest match with the peer finished, labelled with its status.",
            labels=["peer", "status"],
        )
        self.last_ok = GaugeMetricFamily(
            "aif_last_successful_match_timestamp_seconds",
            "When this node's newest successful match with the peer finished.",
            labels=["peer"],
        )
        self.runs = CounterMetricFamily(
            "aif_match_runs",
            "Matches this node initiated (by hand or on the schedule), by outcome.",
            labels=["peer", "trigger", "status"],
        )

    def add_peer(self, store: Store, peer_id: str, name: str, budget: int) -> None:
        self.granted.add_metric([name], budget)
        self.used.add_metric([name], store.budget.used(peer_id, self.epoch))
        grant = store.grants.get(peer_id)
        if grant is not None:
            self.peer_granted.add_metric([name], grant.budget_total)
            self.peer_remaining.add_metric([name], grant.budget_remaining)
        self.matches.add_metric([name], store.matches.match_count(peer_id))
        last = store.runs.last(peer_id)
        if last is not None:
            self.last.add_metric([name, last.status], _finished(last))
            last_ok = last if last.ok else store.runs.last(peer_id, ok_only=True)
            if last_ok is not None:
                self.last_ok.add_metric([name], _finished(last_ok))

    def families(self) -> list[Metric]:
        epoch = GaugeMetricFamily("aif_epoch", "This node's current key epoch.", value=self.epoch)
        return [
            epoch,
            self.records,
            self.tagset,
            self.granted,
            self.used,
            self.peer_granted,
            self.peer_remaining,
            self.matches,
            self.last,
            self.last_ok,
            self.runs,
        ]


def _finished(run: MatchRun) -> float:
    return datetime.fromisoformat(run.finished_at).timestamp()
