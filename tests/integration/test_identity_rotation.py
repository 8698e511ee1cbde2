"""A member replaces its key: peers refuse it until they pin its new card, then match again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import Member


def _import(member: Member, tmp_path: Path, values: list[str]) -> None:
    path = tmp_path / f"{member.name}.csv"
    path.write_text("value\n" + "\n".join(values) + "\n")
    member.cli("import", str(path), "--kind", "phone")


def test_peers_follow_a_new_identity_only_once_they_pin_it(members: Any, tmp_path: Path) -> None:
    bank, lender = members("bank", "lender")
    _import(bank, tmp_path, ["+8613800138000", "+8613800138001"])
    _import(lender, tmp_path, ["+8613800138001"])
    bank.pin(lender)
    lender.pin(bank)
    bank.start()
    lender.start()
    lender.cli("match")
    old_id = lender.json("peers", "list")[0]["node_id"]
    epoch_before = bank.json("status", "--no-probe")["epoch"]

    done = bank.cli("identity", "rotate", check=False)  # no terminal: must not wait for an answer
    assert done.returncode == 1 and "Aborted" in done.stderr
    rotated = bank.cli("identity", "rotate", "--yes").stdout
    bank.stop()
    bank.start()
    bank.card_path.write_text(bank.cli("card").stdout)
    new_id = bank.json("status", "--no-probe")["node_id"]
    assert new_id != old_id and new_id in rotated
    assert bank.json("status", "--no-probe")["epoch"] == epoch_before + 1
    actions = [e["action"] for e in bank.audit() if e["direction"] == "local"]
    assert "identity.rotate" in actions and "keys.rotate" in actions
    assert bank.cli("config", "check").returncode == 0

    # The lender still has the old card pinned: the new key is refused in the handshake.
    assert lender.cli("match", check=False).returncode == 1
    lender.cli("peers", "remove", "bank")
    lender.pin(bank)
    lender.cli("match")
    assert [r["value"] for r in lender.json("report")] == ["+8613800138001"]
    # And the bank, dialling with its new certificate, is accepted by the lender.
    bank.cli("match")
    assert [r["value"] for r in bank.json("report")] == ["+8613800138001"]
