"""Mesh tests need a Docker engine and Compose; without either they skip, saying which is missing.

The timings the mesh tests record (build, healthy mesh, each fault scenario) are printed in the
terminal summary, so `make test` shows them without `-s`.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.external import unavailable
from tests.mesh.compose_mesh import TIMINGS


def _answers(cmd: list[str]) -> bool:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def compose_command() -> list[str]:
    """The Compose command line this host has (`docker compose` or `docker-compose`); skips
    when no Docker engine answers or neither Compose is installed."""
    if shutil.which("docker") is None:
        unavailable("mesh tests need Docker: no `docker` command on this host")
    if not _answers(["docker", "info"]):
        unavailable("mesh tests need Docker: no Docker engine answers (`docker info` failed)")
    if _answers(["docker", "compose", "version"]):
        return ["docker", "compose"]
    if shutil.which("docker-compose") and _answers(["docker-compose", "version"]):
        return ["docker-compose"]
    unavailable("mesh tests need Compose: neither `docker compose` nor `docker-compose` works")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("mesh timings")
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{name:<48} {seconds:7.1f} s")
