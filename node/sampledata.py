"""Synthetic clue data with planted overlaps, for the demo, tests and benchmarks.

Values are generated in canonical form first and only then written in the untidy spellings
that real exports contain, so the ground truth of every overlap is known without running the
normaliser that the data is meant to exercise. Nothing here is real data.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_AREAS = ("110105", "310104", "440305", "330106", "510107", "420106", "320102", "350102")
# ASCII to full-width forms (U+FF10.. digits, U+FF0B plus, U+FF0D minus, U+FF08/9, U+3000).
_FULLWIDTH = str.maketrans(
    "0123456789+-() ",
    "".join(map(chr, (*range(0xFF10, 0xFF1A), 0xFF0B, 0xFF0D, 0xFF08, 0xFF09, 0x3000))),
)

LABELS = ("fraud_ring", "fake_complaint", "mule_account", "identity_theft", "collection_abuse")


def phone(rng: random.Random) -> str:
    """A canonical mainland mobile number: +86 1[3-9]XXXXXXXXX."""
    return f"+861{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def id_card(rng: random.Random) -> str:
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(365 * 55))
    body = f"{rng.choice(_AREAS)}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


def bank_card(rng: random.Random) -> str:
    body = "62" + "".join(str(rng.randrange(10)) for _ in range(15))
    total = 0
    for i, d in enumerate(reversed(body)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return body + str((10 - total % 10) % 10)


def uscc(rng: random.Random) -> str:
    body = "91" + rng.choice(_AREAS) + "".join(rng.choice(_USCC_ALPHABET) for _ in range(9))
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC_ALPHABET[(31 - total % 31) % 31]


GENERATORS = {"phone": phone, "id_card": id_card, "bank_card": bank_card, "uscc": uscc}


def spell(kind: str, canonical: str, rng: random.Random) -> str:
    """Write a canonical value the way some member's export might."""
    if kind == "phone":
        n = canonical[3:]
        return rng.choice(
            (
                n,
                f"+86 {n[:3]}-{n[3:7]}-{n[7:]}",
                f"0086{n}",
                f"(+86){n[:3]} {n[3:7]} {n[7:]}",
                f"86-{n}",
                n.translate(_FULLWIDTH),
                f" {n[:3]} {n[3:7]} {n[7:]} ",
            )
        )
    if kind == "id_card":
        return rng.choice(
            (canonical, canonical.lower(), f"{canonical[:6]} {canonical[6:14]} {canonical[14:]}")
        )
    if kind == "bank_card":
        return rng.choice((canonical, " ".join(canonical[i : i + 4] for i in range(0, 19, 4))))
    if kind == "uscc":
        return rng.choice((canonical, canonical.lower()))
    return canonical


@dataclass
class MemberData:
    """One member's clues: kind -> canonical value -> labels."""

    name: str
    clues: dict[str, dict[str, list[str]]] = field(default_factory=dict)


@dataclass
class Federation:
    members: list[MemberData]

    def member(self, name: str) -> MemberData:
        return next(m for m in self.members if m.name == name)

    def expected_collisions(self, name: str) -> dict[tuple[str, str], dict[str, list[str]]]:
        """For `name`'s own clues: (kind, value) -> {other member: its labels}, where held."""
        own = self.member(name)
        found: dict[tuple[str, str], dict[str, list[str]]] = {}
        for kind, values in own.clues.items():
            for value in values:
                holders = {
                    other.name: sorted(other.clues[kind][value])
                    for other in self.members
                    if other.name != name and value in other.clues.get(kind, {})
                }
                if holders:
                    found[(kind, value)] = holders
        return found


def make_federation(
    names: Iterable[str],
    kinds: Iterable[str] = ("phone", "id_card", "bank_card"),
    size: int = 200,
    shared: int = 20,
    seed: int = 7,
) -> Federation:
    """Each member gets `size` clues per kind; `shared` of them are planted at every other
    member too, and as many again at just one other member."""
    rng = random.Random(seed)
    members = [MemberData(n) for n in names]
    for kind in kinds:
        gen = GENERATORS[kind]
        for m in members:
            m.clues[kind] = {gen(rng): _labels(rng) for _ in range(size)}
        for i, m in enumerate(members):
            values = list(m.clues[kind])
            for value in values[:shared]:
                for other in members:
                    if other is not m:
                        other.clues[kind].setdefault(value, _labels(rng))
            neighbour = members[(i + 1) % len(members)]
            for value in values[shared : 2 * shared]:
                neighbour.clues[kind].setdefault(value, _labels(rng))
    return Federation(members)


def _labels(rng: random.Random) -> list[str]:
    return sorted(rng.sample(LABELS, rng.randint(1, 2)))


def write_member_files(member: MemberData, folder: Path, seed: int = 0) -> dict[str, Path]:
    """Write one member's clues in the formats real exports come in; kind -> file."""
    rng = random.Random(f"{seed}:{member.name}")
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for i, (kind, values) in enumerate(sorted(member.clues.items())):
        items = list(values.items())
        rng.shuffle(items)
        if i % 2 == 0:
            path = folder / f"{kind}.csv"
            with path.open("w", newline="", encoding="utf-8-sig") as fh:
                w = csv.writer(fh)
                w.writerow([kind, "labels", "first_seen", "last_seen"])
                for value, labels in items:
                    seen = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(300))
                    w.writerow([spell(kind, value, rng), ";".join(labels), seen, seen])
        else:
            path = folder / f"{kind}.jsonl"
            with path.open("w", encoding="utf-8") as fh:
                for value, labels in items:
                    row = {kind: spell(kind, value, rng), "labels": labels}
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        files[kind] = path
    return files
