"""Three members on loopback, each a real `aif-node serve` process, matching over mutual TLS.

Expected collisions come from the sample generator's ground truth (canonical values planted
before they were spelled differently at each member), never from the code under test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.sampledata import Federation, make_federation, spell, write_member_files

from .conftest import Member

KINDS = ("phone", "id_card", "bank_card")


def _report(member: Member) -> dict[tuple[str, str], dict[str, list[str]]]:
    rows = member.json("report", "--min-peers", "1")
    for row in rows:
        assert sorted(row["peers"]) == sorted(row["labels"])
    return {(r["kind"], r["value"]): r["labels"] for r in rows}


def _setup(members: Any, tmp_path: Path, size: int = 60) -> tuple[list[Member], Federation]:
    fed = make_federation(("bank", "lender", "platform"), KINDS, size=size, shared=6, seed=11)
    trio = members("bank", "lender", "platform")
    for m in trio:
        for kind, path in write_member_files(fed.member(m.name), tmp_path / f"{m.name}-x").items():
            m.cli("import", str(path), "--kind", kind)
    return trio, fed


def _summary(match_json: list[dict[str, Any]], peer: str, kind: str) -> dict[str, Any]:
    entry = next(r for r in match_json if r["peer"] == peer)
    assert entry["ok"], entry
    return next(k for k in entry["kinds"] if k["kind"] == kind)


def test_every_member_learns_exactly_its_collisions_with_shared_labels(
    members: Any, tmp_path: Path
) -> None:
    (bank, lender, platform), fed = _setup(members, tmp_path)
    for a in (bank, lender, platform):
        for b in (bank, lender, platform):
            if a is not b:
                # The lender shows the bank only one label; everyone else shows all.
                extra = ("--labels", "fraud_ring") if (a, b) == (lender, bank) else ()
                a.pin(b, *extra)
    for m in (bank, lender, platform):
        m.start()
    for m in (bank, lender, platform):
        m.cli("match")

    for m in (bank, lender, platform):
        expected = fed.expected_collisions(m.name)
        if m is bank:
            expected = {
                key: {
                    peer: [lb for lb in labels if lb == "fraud_ring"]
                    if peer == "lender"
                    else labels
                    for peer, labels in holders.items()
                }
                for key, holders in expected.items()
            }
        assert _report(m) == expected
        assert len(expected) > 3 * 6  # every kind has planted overlaps
    # Different spellings met: the planted values were written differently at each member.
    assert {spell("phone", "+8613800138000", __import__("random").Random(s)) for s in range(20)} > {
        "13800138000"
    }
    for m in (bank, lender, platform):
        assert m.stop() == 0
        assert m.cli("audit", "verify").returncode == 0


def test_repeated_match_evaluates_only_new_records(members: Any, tmp_path: Path) -> None:
    (bank, lender, _platform), fed = _setup(members, tmp_path, size=100)
    bank.pin(lender)
    lender.pin(bank)
    lender.start()
    first = bank.json("match", "--peer", "lender")
    phones = len(fed.member("bank").clues["phone"])
    assert _summary(first, "lender", "phone")["evaluated"] == phones

    again = bank.json("match", "--peer", "lender")
    assert _summary(again, "lender", "phone")["evaluated"] == 0
    assert _summary(again, "lender", "phone")["cached"] == phones

    # 1% new records at the bank: two new phones, one of them held by the lender too.
    held_by_lender = next(
        v for v in fed.member("lender").clues["phone"] if v not in fed.member("bank").clues["phone"]
    )
    extra = tmp_path / "extra.csv"
    extra.write_text(f"phone\n{held_by_lender[3:]}\n+8613900000001\n")
    bank.cli("import", str(extra), "--kind", "phone")
    third = bank.json("match", "--peer", "lender")
    summary = _summary(third, "lender", "phone")
    assert summary["evaluated"] == 2
    assert summary["cached"] == phones
    assert ("phone", held_by_lender) in _report(bank)
    # The lender's audit records what it evaluated: the full set once, then the two new ones.
    evaluations = [e for e in lender.audit() if e["action"] == "evaluate" and e["status"] == "OK"]
    assert sorted(e["elements"] for e in evaluations) == sorted(
        [phones, 2] + [len(fed.member("bank").clues[k]) for k in ("id_card", "bank_card")]
    )


def test_key_rotation_forces_full_reevaluation_with_same_result(
    members: Any, tmp_path: Path
) -> None:
    (bank, lender, _platform), fed = _setup(members, tmp_path)
    bank.pin(lender)
    lender.pin(bank)
    lender.start()
    bank.cli("match", "--peer", "lender", "--kind", "phone")
    before = _report(bank)
    lender.cli("keys", "rotate")
    after_json = bank.json("match", "--peer", "lender", "--kind", "phone")
    summary = _summary(after_json, "lender", "phone")
    assert summary["evaluated"] == len(fed.member("bank").clues["phone"])
    assert summary["cached"] == 0
    assert _report(bank) == before
