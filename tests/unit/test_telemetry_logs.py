"""serve's logging: text as before, or one JSON object per line with the event's fields."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from telemetry_outcomes import outcome

from node.config import LoggingSettings
from node.telemetry import configure_logging, log_match
from node.transport.events import SessionEvent


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The root logger's handlers and level are put back after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield io.StringIO()
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_and_the_event(stream: io.StringIO) -> None:
    configure_logging(LoggingSettings(format="json", level="info"), stream)
    event = SessionEvent("served", "evaluate", "ID", "bravo", "OK", 5, 5, ("phone",), 0.25, "")
    logging.getLogger("node.test").info("served %s", "bravo", extra=event.log_fields())
    logging.getLogger("node.test").debug("not at info")
    (line,) = _lines(stream)
    when = datetime.fromisoformat(str(line.pop("ts")))
    assert when.utcoffset() == timedelta(0)
    assert abs(datetime.now(when.tzinfo) - when) < timedelta(minutes=1)
    assert line == {
        "level": "INFO",
        "logger": "node.test",
        "message": "served bravo",
        **event.log_fields(),
        "duration_ms": 250.0,
    }


def test_an_exception_stays_inside_its_json_line(stream: io.StringIO) -> None:
    configure_logging(LoggingSettings(format="json", level="debug"), stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("node.test").exception("failed")
    (line,) = _lines(stream)
    assert line["level"] == "ERROR"
    assert "ValueError: boom" in str(line["exc_info"])


def test_text_is_the_format_serve_always_had(stream: io.StringIO) -> None:
    configure_logging(LoggingSettings(format="text", level="warning"), stream)
    logging.getLogger("node.test").info("quiet")
    logging.getLogger("node.test").warning("loud %d", 1)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING node\.test: loud 1\n", stream.getvalue()
    )


def test_a_match_is_one_event_info_when_ok_warning_when_not(stream: io.StringIO) -> None:
    configure_logging(LoggingSettings(format="json", level="info"), stream)
    log_match(outcome(ok=True, duration_s=2.5))
    log_match(outcome(ok=False, duration_s=3.0))
    ok, failed = _lines(stream)
    assert (ok["level"], failed["level"]) == ("INFO", "WARNING")
    assert ok["event"] == failed["event"] == "match"
    assert (
        ok["message"]
        == "match with peer 'bravo' (schedule): 40 evaluated, 4 match(es), 1 new, 2.500 s"
    )
    assert {k: ok[k] for k in ("peer", "status", "trigger", "evaluated", "duration_ms")} == {
        "peer": "bravo",
        "status": "OK",
        "trigger": "schedule",
        "evaluated": 40,
        "duration_ms": 2500.0,
    }
    assert failed["status"] == "PeerUnavailable"
    assert "unreachable" in str(failed["error"])
