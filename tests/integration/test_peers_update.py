"""`peers update`: a peer's policy and card change in place, on a running server, without
losing what was matched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.ports import free_port

from .conftest import Member


def _import(member: Member, tmp_path: Path, kind: str, values: list[str]) -> None:
    path = tmp_path / f"{member.name}-{kind}.csv"
    path.write_text("value\n" + "\n".join(values) + "\n")
    member.cli("import", str(path), "--kind", kind)


def _peer(member: Member, name: str) -> dict[str, Any]:
    return next(p for p in member.json("peers", "list") if p["name"] == name)


def test_policy_changes_take_effect_on_the_running_server(members: Any, tmp_path: Path) -> None:
    bank, lender = members("bank", "lender")
    phones = ["+8613800138000", "+8613800138001"]
    emails = ["mule@example.com"]
    for m in (bank, lender):
        _import(m, tmp_path, "phone", phones)
        _import(m, tmp_path, "email", emails)
    bank.pin(lender)
    lender.pin(bank)
    lender.start()
    bank.cli("match")
    assert len(bank.json("report")) == 3

    lender.cli("peers", "update", "bank", "--kinds", "email", "--budget", "10")
    assert (_peer(lender, "bank")["kinds"], _peer(lender, "bank")["budget"]) == (["email"], 10)
    bank.cli("match")
    assert {r["kind"] for r in bank.json("report")} == {"email"}

    lender.cli("peers", "update", "bank", "--kinds", "all")
    assert _peer(lender, "bank")["kinds"] is None
    bank.cli("match")
    assert len(bank.json("report")) == 3
    actions = [e["action"] for e in lender.audit() if e["direction"] == "local"]
    assert actions.count("peers.update") == 2

    done = lender.cli("peers", "update", "bank", "--kinds", "no such kind", check=False)
    assert done.returncode == 2 and "no such kind" in done.stderr


def test_a_new_card_moves_a_peer_without_re_pinning(members: Any, tmp_path: Path) -> None:
    bank, lender = members("bank", "lender")
    _import(bank, tmp_path, "phone", ["+8613800138000"])
    _import(lender, tmp_path, "phone", ["+8613800138000"])
    bank.pin(lender)
    lender.pin(bank)
    lender.start()
    bank.cli("match")
    assert len(bank.json("report")) == 1
    lender.stop()

    # The lender moves to a new port and hands out a new card for the same key.
    lender.port = free_port()
    config = lender.data_dir / "config.toml"
    config.write_text(
        "\n".join(
            f'listen = "127.0.0.1:{lender.port}"' if line.startswith("listen") else line
            for line in config.read_text().splitlines()
        )
        + "\n"
    )
    lender.card_path.write_text(lender.cli("card").stdout)
    lender.start()
    assert bank.cli("match", check=False).returncode == 1  # still dialling the old address

    bank.cli("peers", "update", "lender", "--card", str(lender.card_path))
    assert _peer(bank, "lender")["addresses"] == [f"127.0.0.1:{lender.port}"]
    bank.cli("match")
    assert len(bank.json("report")) == 1

    other = members("platform")[0]
    done = bank.cli("peers", "update", "lender", "--card", str(other.card_path), check=False)
    assert done.returncode == 2
    assert "a new key is a new node" in done.stderr
