"""The benchmark's generated sets: distinct canonical numbers, overlaps exactly as planned."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data import Plan, phone, read_values, write_csv
from node.identifiers import KindRegistry


def test_numbers_are_canonical_phone_values() -> None:
    registry = KindRegistry(opaque=frozenset())
    for index in (0, 1, 12_345, 999_999_999):
        assert registry.normalize("phone", phone(index)) == phone(index)


def test_numbers_do_not_repeat() -> None:
    numbers = {phone(i) for i in range(50_000)}
    assert len(numbers) == 50_000


def test_index_outside_the_space_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        phone(10**9)


@pytest.mark.parametrize("n", [10, 200, 1_234, 10_000])
def test_files_hold_the_planned_sizes_and_overlaps(tmp_path: Path, n: int) -> None:
    plan = Plan.for_n(n)
    sets = {}
    for side in ("a", "b"):
        base, added = tmp_path / f"{side}.csv", tmp_path / f"{side}-added.csv"
        assert write_csv(base, plan.base(side)) == n
        assert write_csv(added, plan.added(side)) == plan.delta
        sets[side] = (set(read_values(base)), set(read_values(added)))
    (a_base, a_added), (b_base, b_added) = sets["a"], sets["b"]
    assert len(a_base) == len(b_base) == n
    assert len(a_base & b_base) == plan.overlap == round(n / 10)
    assert not a_added & (a_base | b_base) and not b_added & (a_base | b_base)
    assert len(a_added & b_added) == plan.delta_overlap >= 1
    assert len((a_base | a_added) & (b_base | b_added)) == plan.expected_after_change
    assert len(a_base | a_added) == plan.total_after_change


def test_too_small_n_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        Plan.for_n(9)
