"""The three-member compose mesh (deploy/docker-compose.yml), driven through docker and Compose.

Every action is what an operator would do on the host: `docker exec MEMBER aif-node ...`,
`docker kill`, `docker network disconnect`, Compose to re-create a member. Containers are found
by their Compose labels, so Compose v1 (`bank_1`) and v2 (`bank-1`) naming both work.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
GROUND_TRUTH = DEPLOY / "mesh" / "data" / "ground_truth.json"
MEMBERS = ("bank", "lender", "platform")
DATA_DIR = "/var/lib/aif-node"
TIMEOUT = 120.0

TIMINGS: dict[str, float] = {}
"""Seconds per named step, in order; printed in the terminal summary (conftest)."""

# Run in a member with the node's own interpreter: SQLite's integrity and foreign-key checks.
INTEGRITY = """
import os, sys
from node.store import Store
with Store.open(os.path.join(os.environ["AIF_NODE_DATA_DIR"], "store.db")) as store:
    problems = store.check_integrity()
print("\\n".join(problems) if problems else "ok")
sys.exit(1 if problems else 0)
"""

# Run in the initiator: wait until it holds at least N cached evaluations from a peer.
CACHED_AT_LEAST = """
import os, sys, time
from node.store import Store
peer_id, kind = sys.argv[1], sys.argv[2]
epoch, least, timeout = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
end = time.monotonic() + timeout
with Store.open(os.path.join(os.environ["AIF_NODE_DATA_DIR"], "store.db")) as store:
    while True:
        n = store.matches.cached_count(peer_id, kind, epoch)
        if n >= least or time.monotonic() > end:
            print(n)
            sys.exit(0 if n >= least else 1)
        time.sleep(0.02)
"""

CACHED = """
import os, sys
from node.store import Store
with Store.open(os.path.join(os.environ["AIF_NODE_DATA_DIR"], "store.db")) as store:
    print(store.matches.cached_count(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def run(
    cmd: list[str],
    *,
    check: bool = True,
    timeout: float = TIMEOUT,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        input=stdin,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"`{' '.join(cmd)}` exited {done.returncode}\n"
            f"stdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
        )
    return done


class Background:
    """A command running while the test does other things (kills, cuts); its end is timed on a
    thread of its own, so a slow `docker` call in the test never counts as the command's time."""

    def __init__(self, cmd: list[str]) -> None:
        self.cmd = cmd
        self.started = time.monotonic()
        self.ended: float | None = None
        self.out = self.err = ""
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        self.out, self.err = self._proc.communicate()
        self.ended = time.monotonic()

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str, str, float]:
        """(exit code, stdout, stderr, seconds it ran); kills it after `timeout`."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._proc.kill()
            self._thread.join()
            raise AssertionError(f"`{' '.join(self.cmd)}` ran over {timeout} s")
        assert self.ended is not None
        return self._proc.returncode, self.out, self.err, self.ended - self.started

    def stop(self) -> None:
        """Kill it if it still runs (cleanup after a failed step)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._thread.join()


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Record how long the block took under `name` (also when it fails)."""
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS[name] = time.monotonic() - start


def expected_report(member: str) -> dict[tuple[str, str], set[str]]:
    """(kind, value) -> the other members holding it, from the sample data's ground truth."""
    truth = json.loads(GROUND_TRUTH.read_text(encoding="utf-8"))
    out: dict[tuple[str, str], set[str]] = {}
    for peer, kinds in truth["overlaps"][member].items():
        for kind, values in kinds.items():
            for value in values:
                out.setdefault((kind, value), set()).add(peer)
    return out


@dataclass
class Mesh:
    """One Compose project of the test mesh. `down()` removes its containers, network and
    volumes."""

    project: str
    compose_cmd: list[str]
    image: str
    _cids: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "AIF_NODE_IMAGE": self.image}

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [*self.compose_cmd, "-f", str(COMPOSE_FILE), "-p", self.project, *args]
        return run(cmd, check=check, env=self.env)

    def up(self, *services: str) -> None:
        self.compose("up", "--detach", "--no-build", *services)
        for member in services or MEMBERS:
            self._cids.pop(member, None)

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)

    def leftovers(self) -> list[str]:
        """Containers, networks and volumes of this project that still exist."""
        label = f"label=com.docker.compose.project={self.project}"
        found = []
        for what in (["ps", "-a"], ["network", "ls"], ["volume", "ls"]):
            out = run(["docker", *what, "-q", "--filter", label], check=False).stdout
            found += out.split()
        return found

    # --- containers -----------------------------------------------------------------------

    def cid(self, member: str) -> str:
        """The member's container (running or not)."""
        if member not in self._cids:
            out = run(
                [
                    "docker",
                    "ps",
                    "-a",
                    "-q",
                    "--filter",
                    f"label=com.docker.compose.project={self.project}",
                    "--filter",
                    f"label=com.docker.compose.service={member}",
                ]
            ).stdout.split()
            assert len(out) == 1, f"{member}: expected one container, found {out}"
            self._cids[member] = out[0]
        return self._cids[member]

    def state(self, member: str) -> str:
        return run(
            ["docker", "inspect", "--format", "{{.State.Status}}", self.cid(member)]
        ).stdout.strip()

    def network(self) -> str:
        out = run(
            [
                "docker",
                "network",
                "ls",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
                "--format",
                "{{.Name}}",
            ]
        ).stdout.split()
        assert len(out) == 1, f"expected one network for {self.project}, found {out}"
        return out[0]

    def volume(self, name: str) -> str:
        out = run(
            [
                "docker",
                "volume",
                "ls",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
                "--filter",
                f"label=com.docker.compose.volume={name}",
                "--format",
                "{{.Name}}",
            ]
        ).stdout.split()
        assert len(out) == 1, f"expected one volume {name}, found {out}"
        return out[0]

    def logs(self, member: str) -> str:
        done = run(["docker", "logs", self.cid(member)], check=False)
        return done.stdout + done.stderr

    # --- the node in a member -------------------------------------------------------------

    def node(
        self, member: str, *args: str, check: bool = True, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """`aif-node ARGS` in the member's running container."""
        return run(
            ["docker", "exec", self.cid(member), "aif-node", *args], check=check, timeout=timeout
        )

    def node_json(self, member: str, *args: str) -> Any:
        return json.loads(self.node(member, *args, "--format", "json").stdout)

    def offline(self, member: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`aif-node ARGS` on a stopped member's volumes, in a one-off container without network."""
        cmd = ["docker", "run", "--rm", "--network", "none", "--volumes-from", self.cid(member)]
        return run([*cmd, self.image, *args])

    def offline_python(self, member: str, code: str, *args: str) -> str:
        """Python code on a stopped member's volumes, in a one-off container without network."""
        cmd = ["docker", "run", "--rm", "--network", "none", "--volumes-from", self.cid(member)]
        cmd += ["--entrypoint", "python", self.image, "-c", code, *args]
        return run(cmd).stdout.strip()

    def python(self, member: str, code: str, *args: str, timeout: float = TIMEOUT) -> str:
        """Python code in the member's container, with the node's interpreter and package."""
        return run(
            ["docker", "exec", self.cid(member), "python", "-c", code, *args], timeout=timeout
        ).stdout.strip()

    def status(self, member: str) -> dict[str, Any]:
        return dict(self.node_json(member, "status"))

    def node_id(self, member: str) -> str:
        return str(self.status(member)["node_id"])

    def cached(self, member: str, peer_id: str, kind: str, epoch: int) -> int:
        return int(self.python(member, CACHED, peer_id, kind, str(epoch)))

    def read_file(self, member: str, path: str) -> str:
        return run(["docker", "exec", self.cid(member), "cat", path]).stdout

    def write_file(self, member: str, path: str, text: str) -> None:
        run(
            ["docker", "exec", "-i", self.cid(member), "sh", "-c", 'cat >"$1"', "sh", path],
            stdin=text,
        )

    def copy_in(self, member: str, source: Path, dest: str) -> None:
        run(["docker", "cp", str(source), f"{self.cid(member)}:{dest}"])

    # --- waiting and checking -------------------------------------------------------------

    def wait_healthy(self, *members: str, timeout: float = TIMEOUT) -> None:
        """Until each member's own server answers SERVING (its health check)."""
        deadline = time.monotonic() + timeout
        pending = list(members or MEMBERS)
        while pending:
            for member in list(pending):
                state = self.state(member)
                if state not in ("running", "created", "restarting"):
                    raise AssertionError(f"{member} is {state}:\n{self.logs(member)[-3000:]}")
                if self.node(member, "health", "--timeout", "2", check=False).returncode == 0:
                    pending.remove(member)
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"not healthy after {timeout:.0f} s: {pending}")
            if pending:
                time.sleep(0.5)

    def wait_pinned(self, member: str, others: tuple[str, ...], timeout: float = TIMEOUT) -> None:
        """Until the member has pinned each of `others` (its start script pins their cards)."""
        deadline = time.monotonic() + timeout
        while True:
            names = {p["name"] for p in self.node_json(member, "peers", "list")}
            if set(others) <= names:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{member} pinned only {sorted(names)} after {timeout:.0f} s")
            time.sleep(0.5)

    def assert_intact(self, member: str) -> None:
        """The store passes SQLite's integrity and foreign-key checks; the audit chain verifies."""
        assert self.python(member, INTEGRITY) == "ok"
        assert "intact" in self.node(member, "audit", "verify").stdout

    def assert_report(self, member: str) -> None:
        """The member's collision report is exactly the ground truth: values, peers, no labels."""
        report = self.node_json(member, "report")
        got = {(r["kind"], r["value"]): set(r["peers"]) for r in report}
        assert len(got) == len(report), "a value is reported twice"
        want = expected_report(member)
        wrong = [(k, got[k], want[k]) for k in got.keys() & want.keys() if got[k] != want[k]]
        assert got == want, (
            f"{member}: missing {sorted(want.keys() - got.keys())}, "
            f"unexpected {sorted(got.keys() - want.keys())}, wrong peers {wrong}"
        )
        for row in report:
            assert row["labels"] == {p: [] for p in row["peers"]}, row
