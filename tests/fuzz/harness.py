"""Running a fuzz harness: coverage-guided with atheris when it is installed (the `fuzz`
extra), else a plain loop of seeded random inputs and mutations of the seeds, which finds
less but needs nothing.

A harness module defines `SEEDS` (a few interesting inputs) and `TestOneInput(data)`, and
ends with `harness.main(TestOneInput, SEEDS)`. Run one from the repository root:

    python -m tests.fuzz.fuzz_serde -atheris_runs=100000
    python -m tests.fuzz.fuzz_serde -max_total_time=600 corpus/serde   # libFuzzer flags

Without atheris, `-atheris_runs=N` (or `-runs=N`) and `-seed=S` are understood.
"""

from __future__ import annotations

import atexit
import contextlib
import random
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

DEFAULT_RUNS = 10_000


def instrumented(enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """Wrap the imports of the code under test: atheris then records coverage in `node`. Only
    when the harness runs as a program (not when pytest imports it), and atheris is there."""
    if enabled:
        try:
            import atheris
        except ImportError:
            pass
        else:
            return atheris.instrument_imports(include=["node"])  # type: ignore[no-any-return]
    return contextlib.nullcontext()


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One random edit: flip, insert, delete, duplicate a span, or cut."""
    if not data:
        return rng.randbytes(rng.randrange(1, 64))
    at = rng.randrange(len(data))
    how = rng.randrange(5)
    if how == 0:
        return data[:at] + bytes([data[at] ^ 1 << rng.randrange(8)]) + data[at + 1 :]
    if how == 1:
        return data[:at] + rng.randbytes(rng.randrange(1, 8)) + data[at:]
    if how == 2:
        return data[:at] + data[at + rng.randrange(1, 8) :]
    if how == 3:
        end = min(len(data), at + rng.randrange(1, 32))
        return data[:end] + data[at:end] + data[end:]
    return data[:at]


def inputs(seeds: Sequence[bytes], runs: int, seed: int = 0) -> Iterator[bytes]:
    """The seeds, then `runs` inputs: each a seed with a few edits, or random bytes."""
    rng = random.Random(seed)
    yield from seeds
    for _ in range(runs):
        if seeds and rng.random() < 0.8:
            data = rng.choice(seeds)
            for _ in range(rng.randrange(1, 5)):
                data = mutate(rng, data)
            yield data
        else:
            yield rng.randbytes(rng.randrange(0, 256))


def _flag(argv: Sequence[str], names: tuple[str, ...], default: int) -> int:
    for arg in argv:
        name, _, value = arg.partition("=")
        if name in names and value:
            return int(value)
    return default


def _seed_corpus(seeds: Sequence[bytes]) -> str:
    """A throwaway corpus folder holding the seeds (libFuzzer also adds what it finds)."""
    folder = Path(tempfile.mkdtemp(prefix="aif-fuzz-corpus-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for i, data in enumerate(seeds):
        (folder / f"seed-{i}").write_bytes(data)
    return str(folder)


def main(test_one_input: Callable[[bytes], Any], seeds: Sequence[bytes]) -> None:
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is not None:
        argv = list(sys.argv)
        if not any(not arg.startswith("-") for arg in argv[1:]):
            argv.append(_seed_corpus(seeds))  # no corpus named: start from the seeds
        atheris.Setup(argv, test_one_input)
        atheris.Fuzz()
        return
    runs = _flag(sys.argv[1:], ("-atheris_runs", "-runs"), DEFAULT_RUNS)
    seed = _flag(sys.argv[1:], ("-seed",), 0)
    print(f"atheris is not installed: {runs} seeded random inputs (seed {seed})")
    done = 0
    for data in inputs(seeds, runs, seed):
        try:
            test_one_input(data)
        except BaseException:
            print(f"crash on input {data.hex()}", file=sys.stderr)
            raise
        done += 1
    print(f"done: {done} inputs, no crash")
