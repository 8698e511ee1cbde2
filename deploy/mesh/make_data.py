"""Sample clue lists for the three-member test mesh, with planted overlaps.

Writes ``data/{bank,lender,platform}/{phone,id_card}.csv`` (one column headed by the kind) and
``data/ground_truth.json``. The same seed always gives the same bytes, so the files are committed
and a test checks they are current.

Members write shared clues in their own spellings ("+86 138-0013-8000" at one, "13800138000" at
another), as real members do, so a match only happens after normalisation. The ground truth is in
the node's canonical form (phone: E.164, +86 and 11 digits; id_card: 18 characters, upper-case X)
and is recomputed from the written rows, not from the plan, before it is saved.

Run: ``python deploy/mesh/make_data.py [--out DIR] [--seed N]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

MEMBERS = ("bank", "lender", "platform")
KINDS = ("phone", "id_card")
DEFAULT_SEED = 20240611
DEFAULT_OUT = Path(__file__).resolve().parent / "data"

# Clues only one member holds, per member and kind.
OWN_COUNT = {"phone": 40, "id_card": 30}
# Clues planted at every group of two or more members, per kind.
BANK_LENDER, BANK_PLATFORM, LENDER_PLATFORM = ("bank", "lender"), ("bank", "platform"), MEMBERS[1:]
SHARED_COUNT = {
    "phone": {BANK_LENDER: 6, BANK_PLATFORM: 4, LENDER_PLATFORM: 5, MEMBERS: 3},
    "id_card": {BANK_LENDER: 4, BANK_PLATFORM: 3, LENDER_PLATFORM: 2, MEMBERS: 2},
}

# Mobile number prefixes in use on the mainland (China Mobile, Unicom, Telecom, Broadnet).
PHONE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *("150", "151", "152", "153", "155", "156", "157", "158", "159", "166"),
    *("173", "175", "176", "177", "178"),
    *(f"18{d}" for d in range(10)),
    *("191", "192", "198", "199"),
)
# Real county-level administrative division codes (GB/T 2260).
AREA_CODES = (
    *("110101", "110105", "310101", "310115", "440106", "440305", "330106", "320102"),
    *("420106", "510107", "610113", "500103", "370102", "410105", "430104", "350203"),
    *("210102", "230103", "120101", "530102"),
)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
BIRTH_FIRST = dt.date(1955, 1, 1)
BIRTH_LAST = dt.date(2005, 12, 31)
# ASCII digit -> full-width digit (U+FF10..U+FF19), as some exports write them.
FULLWIDTH = {ord(d): ord(d) + 0xFEE0 for d in "0123456789"}
ASCII_DIGITS = {full: ascii_ for ascii_, full in FULLWIDTH.items()}


@dataclass(frozen=True)
class Clue:
    """One canonical value and the members that hold it."""

    kind: str
    value: str
    holders: tuple[str, ...]


def id_check_char(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of a resident ID number."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11]


def random_phone(rng: random.Random) -> str:
    return rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def random_id_card(rng: random.Random) -> str:
    days = (BIRTH_LAST - BIRTH_FIRST).days
    birth = BIRTH_FIRST + dt.timedelta(days=rng.randrange(days + 1))
    first17 = rng.choice(AREA_CODES) + birth.strftime("%Y%m%d") + f"{rng.randrange(1, 1000):03d}"
    return first17 + id_check_char(first17)


# Spellings a member's export might use; each maps a canonical value to what is written.
PHONE_SPELLINGS: tuple[Callable[[str], str], ...] = (
    lambda p: p,
    lambda p: f"+86 {p[:3]}-{p[3:7]}-{p[7:]}",
    lambda p: f"+86{p}",
    lambda p: f"{p[:3]} {p[3:7]} {p[7:]}",
    lambda p: f"{p[:3]}-{p[3:7]}-{p[7:]}",
    lambda p: p.translate(FULLWIDTH),
)
ID_SPELLINGS: tuple[Callable[[str], str], ...] = (
    lambda i: i,
    lambda i: i.lower(),
    lambda i: f"{i[:6]} {i[6:14]} {i[14:]}".lower(),
    lambda i: i.translate(FULLWIDTH),
)
SPELLINGS = {"phone": PHONE_SPELLINGS, "id_card": ID_SPELLINGS}
MAKERS: dict[str, Callable[[random.Random], str]] = {
    "phone": random_phone,
    "id_card": random_id_card,
}


def canonical(kind: str, written: str) -> str:
    """Undo the spellings above, into the node's canonical form; its normaliser does more."""
    text = written.translate(ASCII_DIGITS)
    text = text.replace(" ", "").replace("-", "")
    if kind == "phone":
        return "+86" + text.removeprefix("+86")
    return text.upper()


def plan(rng: random.Random) -> list[Clue]:
    """Every clue of every kind with its holders; values are unique per kind."""
    clues: list[Clue] = []
    for kind in KINDS:
        seen: set[str] = set()
        groups: list[tuple[tuple[str, ...], int]] = [
            ((m,), OWN_COUNT[kind]) for m in MEMBERS
        ] + list(SHARED_COUNT[kind].items())
        for holders, count in groups:
            for _ in range(count):
                value = MAKERS[kind](rng)
                while value in seen:
                    value = MAKERS[kind](rng)
                seen.add(value)
                clues.append(Clue(kind, value, holders))
    return clues


def render(rng: random.Random, clues: Iterable[Clue]) -> dict[tuple[str, str], list[str]]:
    """Rows per (member, kind), shuffled; a shared clue gets a different spelling at each holder."""
    rows: dict[tuple[str, str], list[str]] = {(m, k): [] for m in MEMBERS for k in KINDS}
    for clue in clues:
        spellings = list(SPELLINGS[clue.kind])
        rng.shuffle(spellings)
        # Distinct strings, not just distinct rules: lower() leaves an ID without X unchanged.
        written = list(dict.fromkeys(spell(clue.value) for spell in spellings))
        if len(written) < len(clue.holders):
            raise ValueError(f"too few distinct spellings for {clue.kind} held {clue.holders}")
        for holder, text in zip(clue.holders, written, strict=False):
            rows[holder, clue.kind].append(text)
    for values in rows.values():
        rng.shuffle(values)
    return rows


def ground_truth(rows: dict[tuple[str, str], list[str]]) -> dict[str, object]:
    """For each member and each other member, which of the first's values the second holds."""
    held = {key: {canonical(key[1], v) for v in values} for key, values in rows.items()}
    overlaps = {
        member: {
            other: {kind: sorted(held[member, kind] & held[other, kind]) for kind in KINDS}
            for other in MEMBERS
            if other != member
        }
        for member in MEMBERS
    }
    return {
        "canonical_form": {
            "phone": "E.164: +86 and the 11-digit mobile number",
            "id_card": "18 characters, upper-case X",
        },
        "counts": {m: {k: len(held[m, k]) for k in KINDS} for m in MEMBERS},
        "overlaps": overlaps,
    }


def csv_text(kind: str, values: Iterable[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([kind])
    writer.writerows([v] for v in values)
    return buf.getvalue()


def generate(seed: int) -> dict[str, str]:
    """File contents by path relative to the data directory."""
    rng = random.Random(seed)  # reproducible sample data, not secrets
    rows = render(rng, plan(rng))
    truth = {"seed": seed, **ground_truth(rows)}
    files = {f"{m}/{k}.csv": csv_text(k, rows[m, k]) for m in MEMBERS for k in KINDS}
    files["ground_truth.json"] = json.dumps(truth, indent=2, ensure_ascii=False) + "\n"
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="data directory")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    for name, text in generate(args.seed).items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
