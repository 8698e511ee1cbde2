"""Real members for integration tests: each a data dir and an `aif-node serve` process.

Every command goes through the real CLI in a subprocess (`python -m node`), servers listen on
loopback ports found free at start, and all traffic is mutual TLS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port

TIMEOUT = 60


@dataclass
class Member:
    name: str
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / self.name

    @property
    def card_path(self) -> Path:
        return self.root / f"{self.name}.card.json"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.serve.log"

    def command(self, *args: str) -> list[str]:
        """The argv of `aif-node --data-dir DIR ARGS...` run as a real process."""
        return [sys.executable, "-m", "node", "--data-dir", str(self.data_dir), *args]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = self.command(*args)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        if check and done.returncode != 0:
            raise AssertionError(
                f"{self.name}: aif-node {' '.join(args)} exited {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}"
            )
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--format", "json").stdout)

    def init(self) -> None:
        self.cli("init", "--name", self.name, "--listen", f"127.0.0.1:{self.port}")
        self.card_path.write_text(self.cli("card").stdout)

    def healthy(self) -> bool:
        """`aif-node health` says SERVING."""
        return self.cli("health", "--timeout", "1", check=False).returncode == 0

    def start(self, probe: Callable[[Member], bool] | None = None, poll_s: float = 0.1) -> None:
        """Start `serve` and wait until `probe` (default: `healthy`, a CLI process per try)
        says it answers; a cheaper probe suits tests that restart servers often."""
        assert self.proc is None or self.proc.poll() is not None
        check = probe or Member.healthy
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command("serve"), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name}: serve exited: {self.log_path.read_text()}")
            if check(self):
                return
            time.sleep(poll_s)
        raise AssertionError(f"{self.name}: not healthy after {TIMEOUT}s")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=TIMEOUT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)

    def pin(self, other: Member, *options: str) -> None:
        self.cli("peers", "add", str(other.card_path), *options)

    def audit(self) -> list[dict[str, Any]]:
        return list(self.json("audit", "show", "--limit", "1000"))


@pytest.fixture
def members(tmp_path: Path) -> Iterator[Any]:
    """A factory of initialised members; every server is stopped at the end."""
    made: list[Member] = []

    def make(*names: str) -> list[Member]:
        for name in names:
            member = Member(name, tmp_path)
            member.init()
            made.append(member)
        return made[-len(names) :]

    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    yield make
    for member in made:
        member.kill()
