"""Timing helpers: one child process measured alone (wall time, CPU time, peak RSS), and medians.

Every child is started with `subprocess.Popen` and reaped with `os.wait4`, which returns the resource
usage of that one child: its own peak RSS (`ru_maxrss`, KiB on Linux), not the maximum over every child
this process has waited for, as `getrusage(RUSAGE_CHILDREN)` would give.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PYTHON = BIN / "python"
OBSGEN = BIN / "obsgen"


@dataclass(frozen=True)
class Child:
    """One finished child process."""

    argv: tuple[str, ...]
    wall: float  # seconds, from before fork to after reaping
    user: float  # CPU seconds in user mode
    system: float  # CPU seconds in kernel mode
    max_rss_kib: int  # peak resident set size of this child
    returncode: int  # negative: killed by that signal (-9 after a timeout)
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe_failure(self) -> str:
        """One line saying how the child failed (for results.md), or '' when it did not."""
        if self.timed_out:
            return f"killed after {self.wall:.0f} s (timeout)"
        if self.returncode != 0:
            tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-1:] or ["no output"]
            return f"exit {self.returncode}: {tail[0][:200]}"
        return ""


def run_child(argv: Sequence[str | Path], *, env: Mapping[str, str] | None = None, cwd: Path = ROOT,
              timeout: float | None = None) -> Child:
    """Run `argv` to completion (or kill it, by its pid, after `timeout` seconds) and measure it."""
    args = tuple(str(a) for a in argv)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, env=dict(env) if env is not None else None,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = None if timeout is None else start + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                break
            if time.perf_counter() >= deadline:  # type: ignore[operator]
                proc.kill()
                timed_out = True
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Child(args, wall, usage.ru_utime, usage.ru_stime, int(usage.ru_maxrss), proc.returncode,
                     out.read().decode(errors="replace"), err.read().decode(errors="replace"), timed_out)


def timed(fn: Callable[[], object]) -> float:
    """Seconds `fn()` took (its result is discarded)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
