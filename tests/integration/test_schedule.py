"""`serve` re-matches its peers on the schedule: real servers, real mTLS, no manual `match`.

The bank schedules matches every two seconds with fast back-off; the lender is up, the
platform is pinned but down at first. Collisions with the lender must appear on their own,
the dead platform must be retried without holding the lender up, and it must be matched
once it comes up.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import Member

PHONES_BANK = ["+8613800138000", "+8613800138001", "+8613800138002"]
PHONES_LENDER = ["+8613800138001", "+8613800138002", "+8613900000000"]
PHONES_PLATFORM = ["+8613800138000"]

SCHEDULE = """
[schedule]
match_interval = "2s"
jitter = 0.0
retry_initial = 1
retry_max = 3

[match]
connect_timeout_s = 1
call_timeout_s = 3
"""


def _import(member: Member, tmp_path: Path, phones: list[str]) -> None:
    path = tmp_path / f"{member.name}-{len(phones)}-{time.monotonic_ns()}.csv"
    path.write_text("value\n" + "\n".join(phones) + "\n")
    member.cli("import", str(path), "--kind", "phone")


def _runs(member: Member) -> list[tuple[str, str, str]]:
    """(peer name, trigger, status) of every recorded match run, oldest first."""
    conn = sqlite3.connect(f"file:{member.data_dir / 'store.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT peer_name, trigger, status FROM match_runs ORDER BY id")
        return [(str(p), str(t), str(s)) for p, t, s in rows]
    finally:
        conn.close()


def _collided(member: Member) -> set[tuple[str, str]]:
    """(value, peer) for every collision in the report."""
    return {(row["value"], peer) for row in member.json("report") for peer in row["peers"]}


def _wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_schedule_matches_peers_and_backs_off_from_a_dead_one(members: Any, tmp_path: Path) -> None:
    bank, lender, platform = members("bank", "lender", "platform")
    _import(bank, tmp_path, PHONES_BANK)
    _import(lender, tmp_path, PHONES_LENDER)
    _import(platform, tmp_path, PHONES_PLATFORM)
    for a, b in ((bank, lender), (lender, bank), (bank, platform), (platform, bank)):
        a.pin(b)
    with (bank.data_dir / "config.toml").open("a") as config:
        config.write(SCHEDULE)
    lender.start()
    bank.start()

    expected_lender = {(p, "lender") for p in set(PHONES_BANK) & set(PHONES_LENDER)}
    _wait_for("the scheduled match with the lender", lambda: _collided(bank) >= expected_lender)

    def platform_failed_twice_lender_ok_twice() -> bool:
        runs = _runs(bank)
        failed = [r for r in runs if r[0] == "platform" and r[2] != "OK"]
        ok = [r for r in runs if r[0] == "lender" and r[2] == "OK"]
        return len(failed) >= 2 and len(ok) >= 2

    _wait_for(
        "retries of the dead platform beside regular lender matches",
        platform_failed_twice_lender_ok_twice,
    )
    runs = _runs(bank)
    assert {trigger for _peer, trigger, _status in runs} == {"schedule"}
    assert {s for p, _t, s in runs if p == "platform"} == {"PeerUnavailable"}

    # New clues reach the report on the next round, with no one running `match`.
    _import(bank, tmp_path, ["+8613900000000"])
    _wait_for(
        "a clue imported while serving to be matched",
        lambda: ("+8613900000000", "lender") in _collided(bank),
    )

    # The platform comes up: the back-off (at most retry_max = 3 s) finds it.
    platform.start()
    _wait_for(
        "the platform to be matched once it is up",
        lambda: ("+8613800138000", "platform") in _collided(bank),
        timeout=30,
    )
    audit = bank.audit()
    assert any(
        e["direction"] == "initiated" and e["peer"] == "platform" and e["status"] == "OK"
        for e in audit
    )
    assert bank.stop() == 0


def test_manual_match_refuses_while_a_match_with_that_peer_runs(
    members: Any, tmp_path: Path
) -> None:
    bank, lender = members("bank", "lender")
    bank.pin(lender)
    lender.pin(bank)
    lender.start()
    lender_id = bank.json("peers", "list")[0]["node_id"]
    lock_dir = bank.data_dir / "locks"
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(lock_dir / f"match-{lender_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = bank.cli("match", check=False)
        assert done.returncode == 1
        assert "a match with this peer is already running" in done.stderr
    finally:
        os.close(fd)
    assert bank.cli("match").returncode == 0
