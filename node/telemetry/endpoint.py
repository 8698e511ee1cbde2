"""The metrics endpoint: Prometheus's text format over plain HTTP, on a daemon thread.

It serves one registry of this node's own, never the process-wide default, so what it shows
is exactly what `node.telemetry` put there.
"""

from __future__ import annotations

import errno
import logging

from prometheus_client import CollectorRegistry, start_http_server

from node.closeable import Closeable
from node.errors import ConfigError
from node.identity import split_host_port

_log = logging.getLogger(__name__)


class MetricsEndpoint(Closeable):
    """Serving `registry` at http://LISTEN/metrics from construction until `close()`."""

    def __init__(self, listen: str, registry: CollectorRegistry) -> None:
        host, port = split_host_port(listen, source="metrics listen address")
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {listen}: {_bind_problem(exc)}") from exc
        self.listen = listen
        _log.info("metrics on http://%s/metrics", listen)

    def close(self) -> None:
        """Stop serving and wait for the server's thread; a scrape in flight is finished."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _bind_problem(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    return (exc.strerror or str(exc)).lower()
