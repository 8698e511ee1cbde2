"""The floor: what the group operations a match needs cost on this machine, at best.

    python -m bench.floor [--ops N]     prints the per-operation costs as JSON

Counts come from the protocol, per element evaluated: the client blinds (one hash-to-group,
one scalar multiplication), the server evaluates (one multiplication), the client
finalizes (one multiplication by the inverted blind); the server's tag set costs one
hash-to-group and one multiplication per own record. Costs are measured here, single
threaded, in tight loops over the same primitives the node calls (`node.crypto`), each the
best of a few repeats so a busy machine inflates them as little as possible. The floor is
count x cost / cores: perfect scaling, no I/O, no protocol, no store.

Also measured, for whoever profiles a gap: the C part of hash-to-group alone, the
inversion a finalize needs per element, the validity check the server runs on every
received element, and how many cores' worth of multiplications the machine really gives
when every core runs them (`effective_cores`: a virtual machine's cores may share physical
ones). None of them is in the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

REPEATS = 3


@dataclass(frozen=True)
class OpCount:
    hash_to_group: int
    scalar_mults: int

    def __add__(self, other: OpCount) -> OpCount:
        return OpCount(
            self.hash_to_group + other.hash_to_group, self.scalar_mults + other.scalar_mults
        )

    def seconds(self, costs: dict[str, float], cores: int) -> float:
        """The floor: this many operations at the measured cost, spread over `cores`."""
        micros = self.hash_to_group * costs["hash_to_group_us"]
        micros += self.scalar_mults * costs["scalar_mult_us"]
        return micros / 1e6 / max(1, cores)


def match_ops(evaluated: int) -> OpCount:
    """Blind (h2g + mult), evaluate (mult), finalize (mult) for each element evaluated."""
    return OpCount(evaluated, 3 * evaluated)


def tagset_ops(records: int) -> OpCount:
    """The server's own Evaluate (h2g + mult) for each record added to its tag set."""
    return OpCount(records, records)


def cores() -> int:
    from node.crypto import workers

    return workers.cores()


def _best(run: Callable[[], object], ops: int) -> float:
    """Microseconds per operation: the best of REPEATS timed runs of `run` (ops each)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / ops * 1e6


def _effective_cores(key: bytes, packed: bytes, ops: int) -> float:
    """Multiplication throughput of the node's worker processes (one per core) over that of
    one process: what "divided by the cores used" really buys on this machine."""
    from node.crypto import workers

    chunks = [(key, packed[a * 32 : b * 32]) for a, b in workers.spans(ops)]
    workers.run(workers.mult_one, chunks)  # start the pool outside the timing
    single = _best(lambda: workers.mult_one(key, packed), ops)
    return single / _best(lambda: workers.run(workers.mult_one, chunks), ops)


def measure(ops: int = 2000) -> dict[str, float]:
    """Per-operation costs in microseconds, single process, the same C loops the workers run."""
    from bench.data import KIND, phone
    from node.crypto import group, oprf, workers
    from node.identifiers import oprf_input

    inputs = [oprf_input(KIND, phone(i)) for i in range(ops)]
    points = b"".join(oprf.hash_to_group(x) for x in inputs)
    uniforms = b"".join(os.urandom(group.UNIFORM_SIZE) for _ in range(ops))
    scalars = [group.random_scalar() for _ in range(ops)]
    key = group.random_scalar()
    return {
        "hash_to_group_us": _best(lambda: [oprf.hash_to_group(x) for x in inputs], ops),
        "scalar_mult_us": _best(lambda: workers.mult_one(key, points), ops),
        "from_uniform_c_us": _best(lambda: workers.from_uniform(uniforms), ops),
        "scalar_invert_us": _best(lambda: group.scalar_invert_many(scalars), ops),
        "validate_element_us": _best(lambda: workers.first_invalid(points), ops),
        "effective_cores": _effective_cores(key, points, ops),
        "ops_per_loop": float(ops),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="operations per timed loop")
    args = parser.parse_args()
    print(json.dumps(measure(args.ops)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
