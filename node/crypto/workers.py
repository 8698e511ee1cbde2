"""Group operations on every core, in worker processes.

Threads calling libsodium through ctypes scale to only about 1.6x on two cores: between two
foreign calls each thread must take the GIL back, and waking a thread that waits for it
costs microseconds every time. Worker processes have an interpreter each and scale to 2x
(measured here: 37 us per multiplication in one process, the same in each of two at once).
Work travels as packed bytes, 32 bytes an element, so a hand-off costs a fraction of a
millisecond against the tens of milliseconds of multiplications it carries.

The functions below take and return packed bytes and never raise for bad elements: they
report the index of the first one libsodium refused, and `group` turns that into
InvalidElement. Policy (which checks, in which order) stays in `group`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from node.crypto import _sodium

ELEMENT = _sodium.ELEMENT_BYTES
SCALAR = _sodium.SCALAR_BYTES
UNIFORM = _sodium.HASH_BYTES

# Below this many elements a batch runs in the calling process: its whole cost is then
# under about 10 ms, and a round trip to a worker would be a noticeable share of it.
MIN_PARALLEL = 256
ENV_DISABLE = "AIF_NODE_CRYPTO_PROCESSES"
"""Set to 0 to compute in the calling process only (debugging, tightly limited hosts)."""


def cores() -> int:
    """Cores this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- what a worker runs ---------------------------------------------------------------------


def mult_one(scalar: bytes, packed: bytes) -> tuple[bytes, int]:
    """scalar * P for each packed P: (packed products, index of the first refusal or -1)."""
    out: list[bytes] = []
    for i in range(0, len(packed), ELEMENT):
        product = _sodium.scalarmult(scalar, packed[i : i + ELEMENT])
        if product is None:
            return b"", i // ELEMENT
        out.append(product)
    return b"".join(out), -1


def mult_each(scalars: bytes, packed: bytes) -> tuple[bytes, int]:
    """s_i * P_i pairwise: (packed products, index of the first refusal or -1)."""
    out: list[bytes] = []
    for i, j in zip(range(0, len(scalars), SCALAR), range(0, len(packed), ELEMENT), strict=True):
        product = _sodium.scalarmult(scalars[i : i + SCALAR], packed[j : j + ELEMENT])
        if product is None:
            return b"", j // ELEMENT
        out.append(product)
    return b"".join(out), -1


def from_uniform(packed: bytes) -> bytes:
    """RFC 9496 element derivation of each 64-byte string, packed."""
    return b"".join(
        _sodium.from_hash(packed[i : i + UNIFORM]) for i in range(0, len(packed), UNIFORM)
    )


def first_invalid(packed: bytes) -> int:
    """Index of the first encoding libsodium does not decode as a point, or -1."""
    for i in range(0, len(packed), ELEMENT):
        if not _sodium.is_valid_point(packed[i : i + ELEMENT]):
            return i // ELEMENT
    return -1


def _watch_parent(parent: int) -> None:
    """Runs in each worker: exit when the node process is gone, even if it was SIGKILLed
    and could not shut the pool down (the worker would otherwise wait for work forever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="aif-parent-watch", daemon=True).start()


# --- dispatch -------------------------------------------------------------------------------

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
_disabled = os.environ.get(ENV_DISABLE, "1") == "0"


def _executor() -> ProcessPoolExecutor | None:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    if _disabled or cores() < 2:
        return None
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the parent runs gRPC threads, which fork would copy mid-state.
            ctx = multiprocessing.get_context("spawn")
            _pool = ProcessPoolExecutor(
                max_workers=cores(),
                mp_context=ctx,
                initializer=_watch_parent,
                initargs=(os.getpid(),),
            )
        return _pool


def _give_up(exc: BaseException) -> None:
    """A worker died or could not start: compute in-process from now on, and say so once."""
    global _pool, _disabled
    with _pool_lock:
        broken, _pool, _disabled = _pool, None, True
    if broken is not None:
        broken.shutdown(wait=False, cancel_futures=True)
    logging.getLogger(__name__).warning(
        "crypto worker processes failed (%s); computing in this process only", exc
    )


def run(fn: Callable[..., Any], chunks: list[tuple[Any, ...]]) -> list[Any]:
    """fn(*args) for every chunk, in the worker processes when there are several chunks and
    a pool, else here; results in chunk order. If a worker dies, the work is done here and
    the pool is not used again: a killed worker costs time, never a wrong answer."""
    pool = _executor() if len(chunks) > 1 else None
    if pool is not None:
        try:
            futures: list[Future[Any]] = [pool.submit(fn, *args) for args in chunks]
            return [f.result() for f in futures]
        except BrokenProcessPool as exc:
            _give_up(exc)
    return [fn(*args) for args in chunks]


def spans(n: int) -> list[tuple[int, int]]:
    """[start, end) ranges splitting n items over the cores; one range for a small n."""
    if n < MIN_PARALLEL or _disabled:
        return [(0, n)]
    parts = cores() * 2  # two chunks per core evens out a slow one
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts) if bounds[i] < bounds[i + 1]]
