"""Metrics, JSON logs and `status` of real `aif-node serve` processes after a real match.

Expected figures come from the sample generator's ground truth and from the audit log (the
record of every session), never from the metrics code under test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from node.sampledata import Federation, make_federation, write_member_files
from tests.ports import free_port

from .conftest import TIMEOUT, Member

KINDS = ("phone", "id_card", "bank_card")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _serve(member: Member, *args: str) -> int:
    """Start `serve --metrics 127.0.0.1:PORT ARGS` with stdout and stderr in files of their
    own; return the metrics port once the server answers its health check."""
    port = free_port()
    with (
        (member.root / f"{member.name}.stdout").open("ab") as stdout,
        (member.root / f"{member.name}.stderr").open("ab") as stderr,
    ):
        member.proc = subprocess.Popen(
            member.command("serve", "--metrics", f"127.0.0.1:{port}", *args),
            stdout=stdout,
            stderr=stderr,
        )
    deadline = time.monotonic() + TIMEOUT
    while not member.healthy():
        assert member.proc.poll() is None, _stderr(member)
        assert time.monotonic() < deadline, f"{member.name} not healthy"
        time.sleep(0.1)
    return port


def _stderr(member: Member) -> str:
    return (member.root / f"{member.name}.stderr").read_text()


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 for a labelled series not yet created."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def _until(port: int, ready: Callable[[Samples], bool]) -> Samples:
    """Scrape until `ready` holds: the server finishes a session just after the client did."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        samples = _scrape(port)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def _import(member: Member, fed: Federation, tmp_path: Path) -> None:
    for kind, path in write_member_files(fed.member(member.name), tmp_path / member.name).items():
        member.cli("import", str(path), "--kind", kind)


def _served(member: Member, peer: str) -> list[dict[str, Any]]:
    return [e for e in member.audit() if e["direction"] == "served" and e["peer"] == peer]


def test_metrics_and_json_logs_of_a_real_match(members: Any, tmp_path: Path) -> None:
    fed = make_federation(("bank", "lender"), KINDS, size=40, shared=5, seed=3)
    bank, lender = members("bank", "lender")
    for m in (bank, lender):
        _import(m, fed, tmp_path / "data")
    bank.pin(lender)
    lender.pin(bank)
    lender_port = _serve(lender, "--log-format", "json")
    bank_port = _serve(bank, "--log-format", "json")
    lender_records = {k: len(fed.member("lender").clues[k]) for k in KINDS}
    bank_records = {k: len(fed.member("bank").clues[k]) for k in KINDS}

    # The tag-set refresh runs in the background: its sizes reach the records'.
    before = _until(
        lender_port,
        lambda s: all(_get(s, "aif_tagset_size", kind=k) == n for k, n in lender_records.items()),
    )
    for kind, n in lender_records.items():
        assert _get(before, "aif_records", kind=kind) == n
        assert _get(before, "aif_tagset_size", kind=kind) == n
    assert _get(before, "aif_epoch") == 1
    assert _get(before, "aif_budget_used", peer="bank") == 0
    assert _get(before, "aif_budget_granted", peer="bank") == 1_000_000
    bank_before = _scrape(bank_port)
    assert ("aif_last_successful_match_timestamp_seconds", frozenset({("peer", "lender")})) not in (
        bank_before
    )
    audited_before = len(_served(lender, "bank"))

    started = datetime.now(UTC).replace(microsecond=0).timestamp()
    summary = bank.json("match", "--peer", "lender")
    finished = time.time()
    (entry,) = summary
    assert entry["ok"], entry
    evaluated = sum(k["evaluated"] for k in entry["kinds"])
    assert evaluated == sum(bank_records.values())

    def sessions(s: Samples, rpc: str, status: str = "OK") -> float:
        labels = {"peer": "bank", "direction": "served", "rpc": rpc, "status": status}
        return _get(s, "aif_sessions_total", **labels)

    # The match ends with one tag sync per kind; the server audits each just after it ends.
    new_sessions = _new_sessions(lender, audited_before, until_syncs=len(KINDS))
    rpcs = ("node_info", "evaluate", "sync_tags")
    after = _until(
        lender_port,
        lambda s: sum(sessions(s, r) - sessions(before, r) for r in rpcs) == len(new_sessions),
    )
    for rpc in rpcs:
        audited = sum(1 for e in new_sessions if e["action"] == rpc and e["status"] == "OK")
        assert audited >= 1
        assert sessions(after, rpc) - sessions(before, rpc) == audited, rpc
    assert sum(1 for e in new_sessions if e["action"] == "evaluate") == len(KINDS)
    duration = ("aif_session_duration_seconds_count", {"direction": "served", "rpc": "evaluate"})
    assert _get(after, duration[0], **duration[1]) - _get(before, duration[0], **duration[1]) == 3
    assert _get(after, "aif_elements_evaluated_total", peer="bank") == evaluated
    assert _get(after, "aif_budget_used", peer="bank") == evaluated

    bank_after = _scrape(bank_port)
    last_ok = _get(bank_after, "aif_last_successful_match_timestamp_seconds", peer="lender")
    assert started <= last_ok <= finished
    assert _get(bank_after, "aif_last_match_timestamp_seconds", peer="lender", status="OK") == (
        last_ok
    )
    assert (
        _get(bank_after, "aif_match_runs_total", peer="lender", trigger="manual", status="OK") == 1
    )
    assert _get(bank_after, "aif_matches", peer="lender") == len(
        [key for key, holders in fed.expected_collisions("bank").items() if "lender" in holders]
    )
    assert _get(bank_after, "aif_peer_budget_granted", peer="lender") == 1_000_000
    assert _get(bank_after, "aif_peer_budget_remaining", peer="lender") == 1_000_000 - evaluated

    assert lender.stop() == 0
    assert bank.stop() == 0
    _check_logs(lender, len(_served(lender, "bank")), fed, tmp_path / "data")
    _check_logs(bank, 0, fed, tmp_path / "data")


def _new_sessions(member: Member, before: int, until_syncs: int) -> list[dict[str, Any]]:
    """The sessions `member` served the bank after the first `before`, once the audit holds
    `until_syncs` tag syncs among them."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        served = _served(member, "bank")
        new = served[: len(served) - before]  # newest first
        if sum(e["action"] == "sync_tags" for e in new) >= until_syncs:
            return new
        assert time.monotonic() < deadline, new
        time.sleep(0.2)


def _check_logs(member: Member, sessions: int, fed: Federation, data: Path) -> None:
    """Every stderr line is a JSON object, one event per session, and nothing secret."""
    assert (member.root / f"{member.name}.stdout").read_text() == ""
    text = _stderr(member)
    lines = [json.loads(line) for line in text.splitlines()]
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    events = [line for line in lines if line.get("event") == "session"]
    assert len(events) == sessions
    for event in events:
        assert (event["peer"], event["direction"]) == ("bank", "served")
        assert {"peer_id", "rpc", "status", "elements", "results", "duration_ms"} <= set(event)
    # No clue value in any spelling, no label, and no key material.
    secrets = [v for m in fed.members for values in m.clues.values() for v in values]
    secrets += [line.split(",")[0] for line in _data_lines(data)]
    secrets += [
        label for m in fed.members for v in m.clues.values() for ls in v.values() for label in ls
    ]
    root = member.data_dir
    for key in [root / "keys" / "audit.key", *(root / "keys").glob("epoch-*.key")]:
        secrets += [key.read_bytes().hex(), key.read_bytes().hex().upper()]
    secrets += (root / "node.key").read_text().splitlines()[1:-1]
    assert len(secrets) > 200
    leaked = [s for s in secrets if s and s in text]
    assert leaked == []


def _data_lines(data: Path) -> list[str]:
    """Every imported row's first field as written (CSV) or its whole line (JSON lines)."""
    rows = []
    for path in data.rglob("*"):
        if path.suffix == ".csv":
            rows += path.read_text(encoding="utf-8-sig").splitlines()[1:]
        elif path.suffix == ".jsonl":
            rows += [
                str(next(iter(json.loads(line).values()))) for line in path.read_text().splitlines()
            ]
    return rows


def test_a_taken_metrics_port_stops_serve_with_exit_3(members: Any) -> None:
    (bank,) = members("bank")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        done = bank.cli("serve", "--metrics", address, check=False)
    assert done.returncode == 3, done.stderr
    assert f"cannot serve metrics on {address}: address already in use" in done.stderr
    assert not bank.healthy()


def test_status_probes_peers_and_shows_the_last_match(members: Any, tmp_path: Path) -> None:
    fed = make_federation(("bank", "lender", "platform"), ("phone",), size=20, shared=3, seed=5)
    bank, lender, platform = members("bank", "lender", "platform")
    _import(bank, fed, tmp_path / "data")
    _import(lender, fed, tmp_path / "data")
    for other in (lender, platform):
        bank.pin(other)
        other.pin(bank)
    lender.start()
    bank.cli("match", "--peer", "lender")
    audit_before = lender.audit()

    status = bank.json("status", "--timeout", "2")
    peers = {p["name"]: p for p in status["peers"]}
    assert (status["name"], status["epoch"]) == ("bank", 1)
    assert status["records"] == {"phone": len(fed.member("bank").clues["phone"])}
    up, down = peers["lender"], peers["platform"]
    assert up["reachability"]["reachable"] is True
    assert up["reachability"]["address"] == f"127.0.0.1:{lender.port}"
    assert 0 < up["reachability"]["latency_ms"] < 2000
    assert down["reachability"]["reachable"] is False
    assert down["reachability"]["error"].startswith(f"127.0.0.1:{platform.port}: ")
    assert "refused" in down["reachability"]["error"].lower()
    assert (up["last_match"]["status"], up["last_match"]["trigger"]) == ("OK", "manual")
    assert up["last_successful_match"] == up["last_match"]
    assert up["matches"] == up["last_match"]["matches"] > 0
    assert up["grant"]["budget_remaining"] == 1_000_000 - up["last_match"]["evaluated"]
    assert down["last_match"] is None and down["grant"] is None

    table = bank.cli("status").stdout
    lender_row = next(line for line in table.splitlines() if "lender" in line)
    platform_row = next(line for line in table.splitlines() if "platform" in line)
    assert "reachable (" in lender_row and "unreachable" not in lender_row
    assert " OK" in lender_row
    assert "unreachable: " in platform_row and "never" in platform_row
    assert "not probed" in bank.cli("status", "--no-probe").stdout

    # Probing is the health service: no session at the peer, no budget spent.
    assert lender.audit() == audit_before
    (seen_by_lender,) = lender.json("status", "--no-probe")["peers"]
    assert seen_by_lender["used_this_epoch"] == up["last_match"]["evaluated"]
