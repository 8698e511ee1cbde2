"""Check one member's collision report (`aif-node report --format json`) against the ground truth.

The report must hold exactly the member's values that other members hold too (canonical form),
each with exactly the peers that hold it. The sample data carries no labels, so every peer's
label list must be empty. Exit 0 when the report is exact; else one line per difference, exit 1.

Run: ``aif-node report --format json | python deploy/mesh/check_report.py MEMBER GROUND_TRUTH``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

Key = tuple[str, str]


def expected(truth: dict[str, Any], member: str) -> dict[Key, set[str]]:
    """(kind, value) -> the other members that hold the value too."""
    out: dict[Key, set[str]] = {}
    for peer, kinds in truth["overlaps"][member].items():
        for kind, values in kinds.items():
            for value in values:
                out.setdefault((kind, value), set()).add(peer)
    return out


def differences(report: list[dict[str, Any]], want: dict[Key, set[str]]) -> list[str]:
    problems: list[str] = []
    got: dict[Key, set[str]] = {}
    for row in report:
        key = (row["kind"], row["value"])
        if key in got:
            problems.append(f"{key[0]} {key[1]}: reported twice")
        peers = set(row["peers"])
        got[key] = peers
        if set(row["labels"]) - peers or any(row["labels"].values()):
            problems.append(f"{key[0]} {key[1]}: labels {row['labels']} (the data has none)")
    for key in sorted(want.keys() - got.keys()):
        problems.append(f"{key[0]} {key[1]}: missing (held by {', '.join(sorted(want[key]))})")
    for key in sorted(got.keys() - want.keys()):
        problems.append(f"{key[0]} {key[1]}: reported, but no other member holds it")
    for key in sorted(got.keys() & want.keys()):
        if got[key] != want[key]:
            problems.append(
                f"{key[0]} {key[1]}: peers {sorted(got[key])}, expected {sorted(want[key])}"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("member")
    parser.add_argument("ground_truth", type=Path)
    args = parser.parse_args(argv)
    truth = json.loads(args.ground_truth.read_text(encoding="utf-8"))
    report = json.load(sys.stdin)
    want = expected(truth, args.member)
    problems = differences(report, want)
    for line in problems:
        print(f"{args.member}: {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"{args.member}: {len(want)} collision(s), as in the ground truth", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
