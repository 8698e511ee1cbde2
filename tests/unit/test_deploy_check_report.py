"""deploy/mesh/check_report.py, which `make mesh` trusts to say a member's report is exact.

Reports are built here from the committed ground truth by a separate route (inverting it per
value), then spoiled one way at a time: each spoiled report must be refused, naming the value.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CHECK = DEPLOY / "mesh" / "check_report.py"
TRUTH = DEPLOY / "mesh" / "data" / "ground_truth.json"


def exact_report(member: str) -> list[dict[str, Any]]:
    truth = json.loads(TRUTH.read_text(encoding="utf-8"))["overlaps"][member]
    holders: dict[tuple[str, str], list[str]] = {}
    for peer in sorted(truth):
        for kind in sorted(truth[peer]):
            for value in truth[peer][kind]:
                holders.setdefault((kind, value), []).append(peer)
    return [
        {"kind": k, "value": v, "peers": peers, "labels": {p: [] for p in peers}}
        for (k, v), peers in sorted(holders.items())
    ]


def check(member: str, report: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), member, str(TRUTH)],
        input=json.dumps(report),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("member", ["bank", "lender", "platform"])
def test_an_exact_report_passes(member: str) -> None:
    report = exact_report(member)
    assert any(len(r["peers"]) == 2 for r in report)  # the data plants three-way clues
    done = check(member, report)
    assert done.returncode == 0, done.stderr
    assert f"{len(report)} collision(s)" in done.stderr


def test_every_kind_of_difference_is_named() -> None:
    exact = exact_report("bank")
    two_peers = next(r for r in exact if len(r["peers"]) == 2)
    spoiled = {
        "missing": [r for r in exact if r is not exact[0]],
        "no other member holds it": [
            *exact,
            {"kind": "phone", "value": "+8614700000000", "peers": ["lender"], "labels": {}},
        ],
        "expected": [
            {**r, "peers": r["peers"][:1], "labels": {r["peers"][0]: []}} if r is two_peers else r
            for r in exact
        ],
        "the data has none": [
            {**r, "labels": {p: ["fraud_ring"] for p in r["peers"]}} if r is exact[0] else r
            for r in exact
        ],
        "reported twice": [*exact, exact[0]],
    }
    for reason, report in spoiled.items():
        done = check("bank", report)
        assert done.returncode == 1, reason
        assert reason in done.stderr, (reason, done.stderr)


def test_a_report_for_the_wrong_member_fails() -> None:
    done = check("lender", exact_report("bank"))
    assert done.returncode == 1
    assert "missing" in done.stderr
