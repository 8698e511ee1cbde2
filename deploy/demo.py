"""`make demo`: a three-member federation on this machine, from nothing to collision reports.

A bank, a consumer-finance company and a platform each create a node, import generated
sample data (CSV and JSON Lines, identifiers spelled differently at each member, overlaps
planted), exchange member cards, serve on loopback, match against each other, print their
collision reports and write each one's HTML report to a folder that outlives the demo. Every
step is the `aif-node` command an operator would type.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from node.sampledata import make_federation, write_member_files

MEMBERS = ("bank", "lender", "platform")
KINDS = ("phone", "id_card", "bank_card")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(data_dir: Path, *args: str, quiet: bool = False) -> str:
    cmd = [sys.executable, "-m", "node", "--data-dir", str(data_dir), *args]
    if not quiet:
        print(f"$ aif-node {shlex.join(args)}", flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"demo: `aif-node {shlex.join(args)}` failed ({done.returncode})")
    if not quiet and done.stdout.strip():
        print(done.stdout.rstrip(), flush=True)
    return done.stdout


def _wait_healthy(data_dir: Path, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    cmd = [sys.executable, "-m", "node", "--data-dir", str(data_dir), "health"]
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: server in {data_dir} exited with {proc.returncode}")
        if subprocess.run(cmd, capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise SystemExit(f"demo: server in {data_dir} not healthy after {timeout:.0f}s")


def main() -> None:
    federation = make_federation(MEMBERS, KINDS, size=150, shared=4, seed=2026)
    servers: list[subprocess.Popen[bytes]] = []
    # The HTML reports outlive the demo's data dirs, so they can be opened afterwards; the
    # folder is private (mkdtemp makes it 0700) because the reports hold clue values.
    reports = Path(tempfile.mkdtemp(prefix="aif-demo-reports-"))
    with tempfile.TemporaryDirectory(prefix="aif-demo-") as tmp:
        root = Path(tmp)
        try:
            dirs = {}
            for name in MEMBERS:
                print(f"\n== {name}: create the node and import its clues", flush=True)
                data_dir = root / name
                dirs[name] = data_dir
                port = _free_port()
                _run(data_dir, "init", "--name", name, "--listen", f"127.0.0.1:{port}")
                files = write_member_files(federation.member(name), root / f"{name}-exports")
                for kind, path in files.items():
                    _run(data_dir, "import", str(path), "--kind", kind)
                _run(data_dir, "records")
                (root / f"{name}.card.json").write_text(_run(data_dir, "card", quiet=True))

            print("\n== members exchange cards and pin each other", flush=True)
            for name in MEMBERS:
                for other in MEMBERS:
                    if other != name:
                        _run(dirs[name], "peers", "add", str(root / f"{other}.card.json"))

            print("\n== every member serves its peers", flush=True)
            log_dir = root / "logs"
            log_dir.mkdir()
            for name in MEMBERS:
                log = (log_dir / f"{name}.log").open("wb")
                cmd = [sys.executable, "-m", "node", "--data-dir", str(dirs[name]), "serve"]
                servers.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            for name, proc in zip(MEMBERS, servers, strict=True):
                _wait_healthy(dirs[name], proc)
                print(f"{name}: serving", flush=True)

            print("\n== every member matches against every other", flush=True)
            for name in MEMBERS:
                _run(dirs[name], "match")

            for name in MEMBERS:
                print(f"\n== {name}: clues that both other members hold too", flush=True)
                _run(dirs[name], "report", "--min-peers", "2")
                held = json.loads(_run(dirs[name], "report", "--format", "json", quiet=True))
                print(
                    f"({len(held)} of {name}'s clues are held by at least one other member: "
                    "aif-node report --min-peers 1)",
                    flush=True,
                )
                page = reports / f"{name}-report.html"
                _run(dirs[name], "report", "--format", "html", "--output", str(page))
                print(f"{name}'s report for an investigator: {page}", flush=True)
        finally:
            for proc in servers:
                proc.send_signal(signal.SIGTERM)
            codes = []
            for proc in servers:
                try:
                    codes.append(proc.wait(timeout=30))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    codes.append(proc.wait())
        if any(codes):
            raise SystemExit(f"demo: a server did not stop cleanly (exit codes {codes})")
        print("\ndemo finished: all members stopped cleanly", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
