"""What a running node tells its operators: Prometheus metrics and structured logs.

Above the transport: it listens to the transport's SessionEvents and reads the store; the
transport never imports it.
"""

from node.telemetry.logs import configure_logging, log_match
from node.telemetry.service import Telemetry, start_telemetry

__all__ = ["Telemetry", "configure_logging", "log_match", "start_telemetry"]
