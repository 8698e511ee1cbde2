"""Group operations in worker processes give exactly the in-process answers, refuse bad
input before any multiplication, and survive a worker that dies."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.crypto import group, workers
from node.errors import InvalidElement

N = workers.MIN_PARALLEL + 44  # large enough to be split over the workers


def _points(n: int) -> list[bytes]:
    uniforms = [hashlib.sha512(i.to_bytes(4, "big")).digest() for i in range(n)]
    return [group.element_from_uniform(u) for u in uniforms]


def _scalar(i: int) -> bytes:
    return (i * 7919 + 3).to_bytes(32, "little")


def test_batches_match_single_operations() -> None:
    points = _points(N)
    s = _scalar(1)
    assert workers.spans(N) != [(0, N)] or workers.cores() < 2
    assert group.scalar_mult_many(s, points) == [group.scalar_mult(s, p) for p in points]
    scalars = [_scalar(i) for i in range(N)]
    assert group.scalar_mult_each(scalars, points) == [
        group.scalar_mult(k, p) for k, p in zip(scalars, points, strict=True)
    ]
    uniforms = [hashlib.sha512(i.to_bytes(4, "big")).digest() for i in range(N)]
    assert list(group.elements_from_uniform(uniforms)) == points


@pytest.mark.parametrize("bad_index", [0, N // 2, N - 1])
def test_a_bad_element_anywhere_stops_the_batch_before_any_multiplication(bad_index: int) -> None:
    points = _points(N)
    points[bad_index] = bytes([0xFF] * 31 + [0x7F])  # non-canonical: caught by libsodium
    before = group.scalar_mult_count()
    with pytest.raises(InvalidElement, match=f"^element {bad_index}: not a canonical"):
        group.scalar_mult_many(_scalar(2), points)
    assert group.scalar_mult_count() == before


def test_first_bad_index_wins_across_checks() -> None:
    points = _points(N)
    points[N - 10] = group.IDENTITY  # caught here, by the cheap check
    points[N - 20] = bytes([0xFF] * 31 + [0x7F])  # caught in a worker, and earlier
    with pytest.raises(InvalidElement, match=f"^element {N - 20}: "):
        group.deserialize_elements(points)


def test_a_dead_worker_costs_time_not_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    if workers.cores() < 2:
        pytest.skip("one core: no worker processes")
    monkeypatch.setattr(workers, "_disabled", False)
    points = _points(N)
    expected = [group.scalar_mult(_scalar(3), p) for p in points]
    assert group.scalar_mult_many(_scalar(3), points) == expected  # the pool is running
    pool = workers._executor()
    assert pool is not None
    for pid in list(pool._processes):  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
    assert group.scalar_mult_many(_scalar(3), points) == expected
    assert workers._executor() is None  # computing in-process from now on


_CHILD = """
import hashlib, sys, time
from node.crypto import group, workers
if __name__ == "__main__":
    pts = [group.element_from_uniform(hashlib.sha512(bytes([i % 256, i // 256])).digest())
           for i in range(workers.MIN_PARALLEL * 2)]
    group.scalar_mult_many((5).to_bytes(32, "little"), pts)
    print(" ".join(str(p) for p in workers._executor()._processes), flush=True)
    time.sleep(60)
"""


def test_workers_exit_when_the_node_process_is_killed(tmp_path: Path) -> None:
    if workers.cores() < 2:
        pytest.skip("one core: no worker processes")

    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    with subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the resource tracker's note about the killed parent
        text=True,
    ) as child:
        assert child.stdout is not None
        pids = [int(p) for p in child.stdout.readline().split()]
        assert pids
        child.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.1)
    alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
    assert not alive, f"worker processes {alive} outlived their killed parent"
