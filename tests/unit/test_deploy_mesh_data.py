"""The test mesh's sample data (deploy/mesh/make_data.py and the committed files it writes).

Validity and overlaps are checked here with rules written independently of the generator
(NFKC for full-width digits, the GB 11643 check from its definition), then once more through
the node's own normaliser, since the mesh imports these files with it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from node.identifiers import normalize

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "deploy" / "mesh" / "make_data.py"
DATA = REPO / "deploy" / "mesh" / "data"
MEMBERS = ("bank", "lender", "platform")
KINDS = ("phone", "id_card")
MOBILE = re.compile(r"1[3-9]\d{9}")


def run_generator(out: Path, *args: str) -> dict[str, bytes]:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out), *args],
        check=True,
        capture_output=True,
    )
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def rows(member: str, kind: str, root: Path = DATA) -> list[str]:
    with (root / member / f"{kind}.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == [kind]
        return [row[0] for row in reader]


def plain(raw: str) -> str:
    return re.sub(r"[ \-]", "", unicodedata.normalize("NFKC", raw))


def phone_canonical(raw: str) -> str:
    digits = plain(raw).removeprefix("+86")
    assert MOBILE.fullmatch(digits), raw
    return "+86" + digits


def id_canonical(raw: str) -> str:
    text = plain(raw).upper()
    assert re.fullmatch(r"\d{17}[\dX]", text), raw
    weights = [pow(2, 17 - i, 11) for i in range(17)]  # GB 11643: W_i = 2^(i-1) mod 11
    remainder = sum(int(d) * w for d, w in zip(text[:17], weights, strict=True)) % 11
    assert text[17] == "10X98765432"[remainder], raw
    born = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))  # raises if not a date
    assert dt.date(1900, 1, 1) <= born <= dt.date.today(), raw
    return text


CANONICAL = {"phone": phone_canonical, "id_card": id_canonical}


def held() -> dict[tuple[str, str], dict[str, str]]:
    """Canonical value -> written spelling, per (member, kind); asserts no duplicate values."""
    out = {}
    for member in MEMBERS:
        for kind in KINDS:
            written = rows(member, kind)
            spelled = {CANONICAL[kind](raw): raw for raw in written}
            assert len(spelled) == len(written), f"{member}/{kind} repeats a value"
            out[member, kind] = spelled
    return out


def test_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    committed = {
        str(p.relative_to(DATA)): p.read_bytes() for p in sorted(DATA.rglob("*")) if p.is_file()
    }
    assert run_generator(tmp_path) == committed


def test_seed_decides_the_output(tmp_path: Path) -> None:
    first = run_generator(tmp_path / "a", "--seed", "7")
    assert run_generator(tmp_path / "b", "--seed", "7") == first
    assert run_generator(tmp_path / "c", "--seed", "8") != first


def test_every_value_is_valid_and_unique_per_file() -> None:
    for (member, kind), values in held().items():
        assert len(values) >= 20, f"{member}/{kind}"


def test_ground_truth_is_the_intersection_of_the_files() -> None:
    truth = json.loads((DATA / "ground_truth.json").read_text(encoding="utf-8"))
    values = held()
    for member in MEMBERS:
        assert truth["counts"][member] == {k: len(values[member, k]) for k in KINDS}
        others = truth["overlaps"][member]
        assert sorted(others) == sorted(set(MEMBERS) - {member})
        for other, by_kind in others.items():
            for kind in KINDS:
                expected = sorted(values[member, kind].keys() & values[other, kind].keys())
                assert by_kind[kind] == expected
                assert expected, f"nothing planted between {member} and {other} for {kind}"
                assert by_kind[kind] == truth["overlaps"][other][member][kind]


def test_every_kind_has_a_clue_all_three_members_hold() -> None:
    values = held()
    for kind in KINDS:
        common = set.intersection(*(set(values[m, kind]) for m in MEMBERS))
        assert common, kind


def test_shared_values_are_spelled_differently_by_each_holder() -> None:
    values = held()
    for kind in KINDS:
        for value in set().union(*(values[m, kind].keys() for m in MEMBERS)):
            spellings = [values[m, kind][value] for m in MEMBERS if value in values[m, kind]]
            assert len(set(spellings)) == len(spellings), (kind, spellings)
    phones = {raw for m in MEMBERS for raw in values[m, "phone"].values()}
    assert any(raw.startswith("+86 ") and "-" in raw for raw in phones)
    assert any(raw.isascii() and raw.isdigit() for raw in phones)


@pytest.mark.parametrize("kind", KINDS)
def test_the_nodes_normaliser_agrees(kind: str) -> None:
    for member in MEMBERS:
        for raw in rows(member, kind):
            assert normalize(kind, raw) == CANONICAL[kind](raw)
