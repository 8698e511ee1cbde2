"""The fuzz harnesses stay runnable: each runs a small fixed number of inputs here (its seeds,
then seeded mutations of them), and, when atheris is installed, a short real atheris run."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import harness

ROOT = Path(__file__).resolve().parents[2]
HARNESSES = sorted(p.stem for p in Path(__file__).parent.glob("fuzz_*.py"))


def test_every_harness_is_found() -> None:
    assert HARNESSES == ["fuzz_identifiers", "fuzz_import", "fuzz_serde"]


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_runs_on_fixed_inputs(name: str) -> None:
    module = importlib.import_module(f"tests.fuzz.{name}")
    seeds = module.seeds()
    assert seeds
    for data in harness.inputs(seeds, runs=400, seed=1):
        module.TestOneInput(data)


def test_inputs_are_the_seeds_then_a_fixed_sequence() -> None:
    seeds = [b"abc", b"\x00\x01"]
    first = list(harness.inputs(seeds, runs=50, seed=3))
    assert first[:2] == seeds and len(first) == 52
    assert first == list(harness.inputs(seeds, runs=50, seed=3))
    assert first != list(harness.inputs(seeds, runs=50, seed=4))


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris is not installed (fuzz extra)"
)
@pytest.mark.parametrize("name", HARNESSES)
def test_harness_runs_under_atheris(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"tests.fuzz.{name}", "-atheris_runs=500"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Done 500 " in done.stderr


def test_without_atheris_main_runs_a_seeded_loop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "atheris", None)  # import atheris now fails
    monkeypatch.setattr(sys, "argv", ["fuzz_x", "-atheris_runs=30", "-seed=2"])
    seen: list[bytes] = []
    harness.main(seen.append, [b"seed"])
    assert seen == list(harness.inputs([b"seed"], runs=30, seed=2))
    assert "done: 31 inputs, no crash" in capsys.readouterr().out


def test_without_atheris_a_crash_names_its_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "atheris", None)
    monkeypatch.setattr(sys, "argv", ["fuzz_x", "-runs=5"])

    def fragile(data: bytes) -> None:
        if data != b"ok":
            raise KeyError("boom")

    with pytest.raises(KeyError):
        harness.main(fragile, [b"ok"])
    assert "crash on input" in capsys.readouterr().err
