"""How `serve` logs: `text` for a terminal, or `json`, one object per line for a log shipper.

A JSON line has `ts` (UTC, ISO 8601), `level`, `logger` and `message`, and the fields a
record carries as top-level keys: a session's end (event="session", from the transport) and
a match this process initiated (event="match", from `log_match`) carry peer, counts, status
and duration. Neither ever carries a clue value, tag, label, key or certificate: the events
are built from counts and names only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import IO

from pythonjsonlogger.json import JsonFormatter

from node.config import LoggingSettings
from node.matching import PeerOutcome

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_match_log = logging.getLogger("node.match")


class _Formatter(JsonFormatter):
    """python-json-logger's formatter with our key names and UTC ISO 8601 times."""

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def configure_logging(settings: LoggingSettings, stream: IO[str] | None = None) -> None:
    """Send every logger's records to `stream` (stderr) in the chosen format and level,
    replacing whatever handlers the root logger had."""
    handler = logging.StreamHandler(stream)
    if settings.format == "json":
        handler.setFormatter(_Formatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=settings.level.upper(), handlers=[handler], force=True)


def log_match(outcome: PeerOutcome) -> None:
    """One line for a match this process initiated: INFO when it went well, else WARNING."""
    run = outcome.run
    fields = {
        "event": "match",
        "direction": "initiated",
        "rpc": "match",
        "peer": run.peer_name,
        "peer_id": run.peer_id,
        "trigger": run.trigger,
        "status": run.status,
        "evaluated": run.evaluated,
        "matches": run.matches,
        "new_matches": run.new_matches,
        "duration_ms": round(outcome.duration_s * 1000, 3),
        "error": run.error,
    }
    if outcome.ok:
        _match_log.info(
            "match with peer %r (%s): %d evaluated, %d match(es), %d new, %.3f s",
            run.peer_name,
            run.trigger,
            run.evaluated,
            run.matches,
            run.new_matches,
            outcome.duration_s,
            extra=fields,
        )
    else:
        _match_log.warning(
            "match with peer %r (%s) failed after %.3f s: %s: %s",
            run.peer_name,
            run.trigger,
            outcome.duration_s,
            run.status,
            run.error,
            extra=fields,
        )
