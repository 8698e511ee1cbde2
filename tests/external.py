"""Tests that need a program from outside Python (a browser, PostgreSQL, Docker).

On a developer's machine without it such a test skips, saying what is missing. CI sets
AIF_NODE_REQUIRE_ALL=1 after installing everything, and then a missing program fails the
test instead, so nothing is silently left untested there.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ALL = "AIF_NODE_REQUIRE_ALL"


def unavailable(reason: str) -> NoReturn:
    """Skip for `reason`, or fail when the environment requires everything to run."""
    if os.environ.get(REQUIRE_ALL) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ALL}=1, so this must not be skipped)", pytrace=False)
    pytest.skip(reason)
