"""Telemetry for `serve`: one object that owns the metrics endpoint and takes what to report.

`start_telemetry` binds the metrics endpoint (when the config asks for one) before the gRPC
server starts, so a taken port stops `serve` at once with a ConfigError naming the address.
The server gets `listeners`; whatever initiates matches (the schedule) hands each outcome
to `observe_match`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, disable_created_metrics

from node import __version__
from node.closeable import Closeable
from node.config import NodeConfig
from node.datadir import DataDir
from node.matching import PeerOutcome
from node.telemetry.collector import StoreCollector
from node.telemetry.endpoint import MetricsEndpoint
from node.telemetry.logs import log_match
from node.telemetry.metrics import SessionMetrics
from node.transport.events import SessionListener


class Telemetry(Closeable):
    """What `serve` reports besides its log lines; `close()` (or `with`) stops the endpoint."""

    def __init__(
        self, metrics: SessionMetrics | None = None, endpoint: MetricsEndpoint | None = None
    ) -> None:
        self._metrics = metrics
        self._endpoint = endpoint

    @property
    def listeners(self) -> tuple[SessionListener, ...]:
        """For NodeServer(listeners=...): each served session's event goes to the metrics."""
        return () if self._metrics is None else (self._metrics.observe_session,)

    def observe_match(self, outcome: PeerOutcome) -> None:
        """Log one match this process initiated (event="match") and count it."""
        log_match(outcome)
        if self._metrics is not None:
            self._metrics.observe_match(outcome)

    def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()


def start_telemetry(datadir: DataDir, config: NodeConfig) -> Telemetry:
    """Telemetry for the node in `datadir`; serving metrics if `config.metrics.listen` is set.

    ConfigError if the metrics address cannot be bound."""
    if not config.metrics.listen:
        return Telemetry()
    # A `_created` series beside every counter is noise to an operator.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
    registry = CollectorRegistry()
    metrics = SessionMetrics(
        registry, version=__version__, node_id=str(datadir.identity().node_id), name=config.name
    )
    registry.register(StoreCollector(datadir.open_store, datadir.keyring.current_epoch))
    return Telemetry(metrics, MetricsEndpoint(config.metrics.listen, registry))
