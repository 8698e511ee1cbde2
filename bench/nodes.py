"""One benchmark member: a data dir driven only through the real CLI (`python -m node`)."""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data import KIND
from bench.proc import Finished, Running, Server, run

LONG_S = 6 * 3600.0
"""Generous limit for one step: a full match at n = 1,000,000 takes minutes."""
SHORT_S = 120.0
TAGSET_LINE = r"tag set (\S+) epoch (\d+): (\d+) new"
SERVING_LINE = r"serving on "


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Member:
    name: str
    root: Path
    port: int
    advertise_port: int
    """Where peers dial it: the port of the relay in front of it."""

    @property
    def data_dir(self) -> Path:
        return self.root / self.name

    @property
    def card_path(self) -> Path:
        return self.root / f"{self.name}.card.json"

    @property
    def logs(self) -> Path:
        path = self.root / "logs"
        path.mkdir(exist_ok=True)
        return path

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "node", "--data-dir", str(self.data_dir), *args]

    def cli(self, tag: str, *args: str, timeout_s: float = SHORT_S) -> Finished:
        return run(self.command(*args), self.logs, f"{self.name}.{tag}", timeout_s)

    def init(self) -> None:
        self.cli(
            "init",
            "init",
            "--name",
            self.name,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--advertise",
            f"127.0.0.1:{self.advertise_port}",
        )
        self.card_path.write_text(self.cli("card", "card").stdout, encoding="utf-8")

    def pin(self, other: Member, budget: int) -> None:
        self.cli("pin", "peers", "add", str(other.card_path), "--budget", str(budget))

    def import_csv(self, path: Path, tag: str) -> Finished:
        return self.cli(
            tag, "import", str(path), "--kind", KIND, "--label", "bench", timeout_s=LONG_S
        )

    def serve(self) -> Server:
        return Server(self.command("serve"), self.logs / f"{self.name}.serve.log")

    def start_match(self, peer: Member, tag: str) -> Running:
        cmd = self.command("match", "--peer", peer.name, "--kind", KIND, "--format", "json")
        return Running(cmd, self.logs, f"{self.name}.{tag}", LONG_S)


def match_summary(done: Finished, peer: str) -> dict[str, Any]:
    """The kind summary of one `match --format json` run; RuntimeError when it failed."""
    if done.returncode != 0:
        raise RuntimeError(f"match failed ({done.returncode}): {done.stderr[-4000:]}")
    results = json.loads(done.stdout)
    entry = next(r for r in results if r["peer"] == peer)
    if not entry["ok"]:
        raise RuntimeError(f"match with {peer} failed: {entry['error']}")
    summary: dict[str, Any] = next(k for k in entry["kinds"] if k["kind"] == KIND)
    return summary
