"""Child processes measured from outside: wall time, CPU seconds and peak memory.

A process that runs to its end (an import, a match, the baseline) is reaped with wait4,
whose rusage is exactly that child's CPU time and peak RSS. A server runs through several
phases, so it is measured per phase: CPU from psutil before and after, and peak RSS from
the kernel's high-water mark (VmHWM), which is reset at the start of each phase through
/proc/PID/clear_refs (Linux). Where the reset is refused, the peak covers the process's
whole life so far, and the results say so.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil  # type: ignore[import-untyped]

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Usage:
    wall_s: float
    cpu_s: float
    """User plus system CPU seconds, over every thread."""
    peak_rss_mib: float


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    usage: Usage
    started: float
    ended: float
    """time.perf_counter() at start and at reaping."""


class Running:
    """A child started now and reaped, with its rusage, by `wait()`."""

    def __init__(self, cmd: Sequence[str], log_dir: Path, tag: str, timeout_s: float) -> None:
        self._out = (log_dir / f"{tag}.out").open("w+", encoding="utf-8")
        self._err = (log_dir / f"{tag}.err").open("w+", encoding="utf-8")
        self.cmd = list(cmd)
        self.started = time.perf_counter()
        self._proc = subprocess.Popen(self.cmd, stdout=self._out, stderr=self._err, env=child_env())
        self._timer = threading.Timer(timeout_s, self._proc.kill)
        self._timer.daemon = True
        self._timer.start()

    def wait(self) -> Finished:
        _, status, rusage = os.wait4(self._proc.pid, 0)
        ended = time.perf_counter()
        self._timer.cancel()
        self._proc.returncode = os.waitstatus_to_exitcode(status)
        usage = Usage(
            wall_s=ended - self.started,
            cpu_s=rusage.ru_utime + rusage.ru_stime,
            peak_rss_mib=rusage.ru_maxrss * 1024 / MIB,  # ru_maxrss is in KiB on Linux
        )
        out, err = _drain(self._out), _drain(self._err)
        return Finished(self._proc.returncode, out, err, usage, self.started, ended)


def _drain(fh: IO[str]) -> str:
    fh.seek(0)
    text = fh.read()
    fh.close()
    return text


def run(cmd: Sequence[str], log_dir: Path, tag: str, timeout_s: float) -> Finished:
    """Run to the end; raise RuntimeError with its output when it fails."""
    done = Running(cmd, log_dir, tag, timeout_s).wait()
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {done.returncode}\nstdout: {done.stdout[-2000:]}\n"
            f"stderr: {done.stderr[-4000:]}"
        )
    return done


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GRPC_VERBOSITY", "ERROR")
    env["PYTHONUNBUFFERED"] = "1"
    # `python -m bench.*` children find the harness from any working directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class Server:
    """A long-running child whose output lines are timestamped as they arrive, so the
    harness can wait for a log line and know when it was written."""

    def __init__(self, cmd: Sequence[str], log_path: Path) -> None:
        self._log = log_path.open("w", encoding="utf-8")
        self._lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._proc = subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_env(),
        )
        self.pid = self._proc.pid
        self.started = time.perf_counter()
        self._ps = psutil.Process(self.pid)
        self._reader = threading.Thread(target=self._read, name=f"log-{self.pid}", daemon=True)
        self._reader.start()
        self.peak_scope = "phase"

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            now = time.perf_counter()
            self._log.write(line)
            self._log.flush()
            with self._cond:
                self._lines.append((now, line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def line_count(self) -> int:
        with self._cond:
            return len(self._lines)

    def wait_for(
        self, pattern: str, *, after: int = 0, timeout_s: float
    ) -> tuple[float, re.Match[str], int]:
        """The arrival time, match and index of the first line from index `after` on that
        matches `pattern`; RuntimeError if the server exits or the time runs out first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        index = after
        with self._cond:
            while True:
                while index < len(self._lines):
                    at, line = self._lines[index]
                    found = regex.search(line)
                    if found:
                        return at, found, index
                    index += 1
                left = deadline - time.monotonic()
                if self._proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f"server {self.pid} exited waiting for {pattern!r}")
                if left <= 0:
                    raise RuntimeError(f"no {pattern!r} from server {self.pid} in {timeout_s} s")
                self._cond.wait(min(left, 1.0))

    def cpu_s(self) -> float:
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def reset_peak(self) -> None:
        """Start a new peak-RSS window (VmHWM := VmRSS)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            self.peak_scope = "process lifetime"

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MIB
        return float(self._ps.memory_info().rss) / MIB

    def stop(self, timeout_s: float = 60.0) -> int:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(timeout=5)
        self._log.close()
        return self._proc.returncode
