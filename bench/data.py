"""The benchmark's two member sets, generated as a stream with the overlaps planted.

Every phone number comes from an index through a bijection of [0, 10^9), so numbers never
repeat by accident and the expected intersections are arithmetic on index ranges: nothing
is held in memory, whatever n is. Values are written in their canonical form (what
`aif-node import` stores), so the baseline is fed exactly the strings our OPRF hashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KIND = "phone"
_SPACE = 10**9
# Coprime with 10^9 (= 2^9 * 5^9), so i -> (i * _MUL + _ADD) mod 10^9 is a bijection.
_MUL = 387_420_489  # 3^18
_ADD = 123_456_789


def phone(index: int) -> str:
    """The canonical (E.164) mainland mobile number for an index in [0, 10^9)."""
    if not 0 <= index < _SPACE:
        raise ValueError(f"index {index} is outside [0, {_SPACE})")
    return f"+8613{(index * _MUL + _ADD) % _SPACE:09d}"


@dataclass(frozen=True)
class Plan:
    """Sizes of the run at one n: each side holds n records, `overlap` of them shared; then
    each side adds `delta` new records, `delta_overlap` of them shared with the other's."""

    n: int
    overlap: int
    delta: int
    delta_overlap: int

    @classmethod
    def for_n(cls, n: int, overlap_fraction: float = 0.10, change_fraction: float = 0.01) -> Plan:
        if n < 10:
            raise ValueError(f"n must be at least 10, not {n}")
        overlap = max(1, round(n * overlap_fraction))
        delta = max(1, round(n * change_fraction))
        delta_overlap = min(delta, max(1, round(delta * overlap_fraction)))
        return cls(n, overlap, delta, delta_overlap)

    # Index ranges, laid end to end: shared base | A only | B only | shared new | A new | B new.
    def base(self, side: str) -> Iterator[int]:
        """Indices of one side's initial n records ("a" or "b")."""
        _check_side(side)
        yield from range(self.overlap)
        first = self.overlap if side == "a" else self.n
        yield from range(first, first + self.n - self.overlap)

    def added(self, side: str) -> Iterator[int]:
        """Indices of the records one side adds for the re-match."""
        _check_side(side)
        shared = 2 * self.n - self.overlap
        yield from range(shared, shared + self.delta_overlap)
        own = self.delta - self.delta_overlap
        first = shared + self.delta_overlap + (0 if side == "a" else own)
        yield from range(first, first + own)

    @property
    def expected_after_change(self) -> int:
        """Records both sides hold once both added theirs."""
        return self.overlap + self.delta_overlap

    @property
    def total_after_change(self) -> int:
        """Records each side holds once it added its own."""
        return self.n + self.delta


def _check_side(side: str) -> None:
    if side not in ("a", "b"):
        raise ValueError(f"side must be 'a' or 'b', not {side!r}")


def write_csv(path: Path, indices: Iterator[int]) -> int:
    """Write a one-column CSV of the numbers for `indices`; return the row count."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(f"{KIND}\n")
        for index in indices:
            out.write(phone(index) + "\n")
            rows += 1
    return rows


def read_values(path: Path) -> list[str]:
    """The values of a CSV written by `write_csv` (for the baseline, which needs a list)."""
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().strip()
        if header != KIND:
            raise ValueError(f"{path}: expected the header {KIND!r}, got {header!r}")
        return [line.rstrip("\n") for line in fh]
