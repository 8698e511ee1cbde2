"""The backup and restore procedure of docs/operations.md, run as written, on a live node.

The shell blocks under the `backup-steps` and `restore-steps` markers are run with bash, as
an operator would paste them, while the node serves and a peer keeps matching against it
(so the store is written to during the backup). The restored node must pass `config check`
and `audit verify`, hold the same records and matches, and serve the peer again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.integration.conftest import TIMEOUT, Member

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_steps(marker: str) -> str:
    """The fenced shell block that follows `<!-- marker: ... -->` in docs/operations.md."""
    text = OPERATIONS.read_text(encoding="utf-8")
    start = text.index(f"<!-- {marker}:")
    fence = text.index("```sh\n", start) + len("```sh\n")
    return text[fence : text.index("\n```", fence)]


def operator_shell(bin_dir: Path, **env: Path) -> dict[str, str]:
    """An environment in which `aif-node` and `python3` are this checkout's, as installed."""
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "aif-node"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m node "$@"\n')
    wrapper.chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        **{k: str(v) for k, v in env.items()},
    }


def run_steps(marker: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    steps = documented_steps(marker)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", steps],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{marker} failed:\n{steps}\n{done.stdout}\n{done.stderr}"
    return done


def state(member: Member) -> dict[str, Any]:
    return {
        "records": member.json("records"),
        "report": member.json("report"),
        "peers": member.json("peers", "list"),
        "card": member.cli("card").stdout,
    }


def test_backup_of_a_live_node_restores_whole(members: Any, tmp_path: Path) -> None:
    bank, lender = members("bank", "lender")
    shared = [f"+86138{i:08d}" for i in range(300)]
    bank_only = [f"+86139{i:08d}" for i in range(200)]
    lender_only = [f"+86137{i:08d}" for i in range(100)]
    for member, values in ((bank, shared + bank_only), (lender, shared + lender_only)):
        path = tmp_path / f"{member.name}.csv"
        path.write_text("phone\n" + "\n".join(values) + "\n")
        member.cli("import", str(path), "--kind", "phone", "--label", f"from_{member.name}")
    bank.pin(lender)
    lender.pin(bank)
    bank.start()
    lender.start()
    bank.cli("match")
    lender.cli("match")

    # The lender keeps matching the bank meanwhile: the bank's server writes audit entries and
    # budget charges into the store while it is being backed up.
    stop = threading.Event()
    rounds: list[int] = []

    def keep_matching() -> None:
        while not stop.is_set():
            lender.cli("match")
            rounds.append(1)

    matcher = threading.Thread(target=keep_matching)
    matcher.start()
    try:
        while len(rounds) < 2:
            stop.wait(0.05)
        backup = tmp_path / "backup" / "2026-01-01"
        env = operator_shell(
            tmp_path / "bin",
            AIF_NODE_DATA_DIR=bank.data_dir,
            BACKUP=backup,
            RESTORED=tmp_path / "restored",
        )
        run_steps("backup-steps", env)
    finally:
        stop.set()
        matcher.join(timeout=TIMEOUT)
    assert len(rounds) >= 3, "the backup ran while the peer was matching"
    original = state(bank)
    audit_before = bank.audit()
    bank.stop()

    restored_out = run_steps("restore-steps", env).stdout
    assert "audit log intact" in restored_out
    restored = Member("restored", tmp_path, port=bank.port)
    assert restored.data_dir == tmp_path / "restored"
    assert state(restored) == original
    assert len(original["report"]) == len(shared)
    # The restored log is the original's up to the moment of the backup.
    audit_after = restored.audit()
    assert audit_after == audit_before[-len(audit_after) :]
    assert len(audit_after) > 4

    # The restored node is the same member to its peer: it serves and is matched again.
    restored.start()
    try:
        lender.cli("match", "--peer", "bank")
        assert restored.cli("audit", "verify").returncode == 0
        assert len(lender.json("report")) == len(shared)
    finally:
        restored.kill()
