"""Files tests leave for people to look at (screenshots), listed at the end of the run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
_STARTED = pytest.StashKey[float]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STARTED] = time.time()


@pytest.fixture
def artifact_dir() -> Path:
    """test-artifacts/ at the repository root (ignored by git): CI keeps it as the run's output."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    started = config.stash.get(_STARTED, time.time())
    written = (
        sorted(p for p in ARTIFACTS.glob("*") if p.is_file() and p.stat().st_mtime >= started)
        if ARTIFACTS.is_dir()
        else []
    )
    if written:
        terminalreporter.write_sep("-", "test artifacts written")
        for path in written:
            terminalreporter.write_line(f"{path} ({path.stat().st_size:,} bytes)")
