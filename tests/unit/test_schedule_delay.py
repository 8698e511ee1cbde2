"""The schedule's waits: the interval after success, doubling back-off after failures."""

import random

import pytest

from node.config import ScheduleSettings
from node.schedule import next_delay

SETTINGS = ScheduleSettings(match_interval=3600, jitter=0.0, retry_initial=60, retry_max=900)


def test_success_waits_the_interval() -> None:
    assert next_delay(SETTINGS, 0, random.Random(1)) == 3600


@pytest.mark.parametrize(
    ("failures", "expected"), [(1, 60), (2, 120), (3, 240), (4, 480), (5, 900), (40, 900)]
)
def test_failures_back_off_doubling_up_to_retry_max(failures: int, expected: float) -> None:
    assert next_delay(SETTINGS, failures, random.Random(1)) == expected


def test_back_off_never_exceeds_the_interval() -> None:
    short = ScheduleSettings(match_interval=300, jitter=0.0, retry_initial=60, retry_max=3600)
    assert next_delay(short, 10, random.Random(1)) == 300
    assert next_delay(short, 10_000, random.Random(1)) == 300


def test_jitter_spreads_within_its_fraction() -> None:
    jittered = ScheduleSettings(match_interval=1000, jitter=0.2, retry_initial=10, retry_max=100)
    rng = random.Random(7)
    waits = [next_delay(jittered, 0, rng) for _ in range(2000)]
    assert all(800 <= w <= 1200 for w in waits)
    assert max(waits) - min(waits) > 300  # spread, not constant
    backoffs = [next_delay(jittered, 2, rng) for _ in range(2000)]
    assert all(16 <= w <= 24 for w in backoffs)
