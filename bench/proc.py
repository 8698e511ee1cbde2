"""Child processes measured from outside: wall time, CPU seconds and peak memory.

A node computes in worker processes (one per core) besides its own, so every figure covers
the process tree. A process that runs to its end (an import, a match, the baseline) is
reaped with wait4, whose rusage holds its CPU time and that of the workers it reaped; its
peak memory is the larger of its own ru_maxrss and the sampled sum over the tree. A server
runs through several phases, so it is measured per phase: CPU from psutil (its own, its live
workers' and its reaped children's) before and after, and peak RSS as the sum of the
kernel's high-water marks (VmHWM) of the process and its workers, reset at the start of each
phase through /proc/PID/clear_refs (Linux). Where the reset is refused, the peak covers the
process's whole life so far, and the results say so.
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
        self._tree_peak = 0
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        """The largest RSS sum over the process and its workers, every 0.1 s."""
        try:
            root = psutil.Process(self._proc.pid)
            while not self._sampling.wait(0.1):
                tree = [root, *root.children(recursive=True)]
                self._tree_peak = max(self._tree_peak, sum(_rss(p) for p in tree))
        except psutil.Error:
            pass

    def wait(self) -> Finished:
        _, status, rusage = os.wait4(self._proc.pid, 0)
        ended = time.perf_counter()
        self._timer.cancel()
        self._sampling.set()
        self._sampler.join()
        self._proc.returncode = os.waitstatus_to_exitcode(status)
        own_peak = rusage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux
        usage = Usage(
            wall_s=ended - self.started,
            cpu_s=rusage.ru_utime + rusage.ru_stime,
            peak_rss_mib=max(own_peak, self._tree_peak) / MIB,
        )
        out, err = _drain(self._out), _drain(self._err)
        return Finished(self._proc.returncode, out, err, usage, self.started, ended)


def _rss(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_info().rss)
    except psutil.Error:
        return 0


def _hwm(proc: psutil.Process) -> int:
    """The kernel's peak RSS of one process, in bytes (its RSS where that is unreadable)."""
    try:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _rss(proc)


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

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self._ps, *self._ps.children(recursive=True)]
        except psutil.Error:
            return [self._ps]

    def cpu_s(self) -> float:
        """CPU seconds of the server, its live workers and the children it reaped."""
        total = 0.0
        for i, proc in enumerate(self._tree()):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
            if i == 0:
                total += times.children_user + times.children_system
        return total

    def reset_peak(self) -> None:
        """Start a new peak-RSS window (VmHWM := VmRSS) for the server and its workers."""
        for proc in self._tree():
            try:
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
            except OSError:
                self.peak_scope = "process lifetime"

    def peak_rss_mib(self) -> float:
        return sum(_hwm(proc) for proc in self._tree()) / MIB

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
