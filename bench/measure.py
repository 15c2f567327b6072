"""Timing helpers: one child process measured alone (wall time, CPU time, peak RSS), and medians.

A measured command is not started by the benchmark process itself but by a small launcher (`python -S`,
standard library only) that forks, execs the command, reaps it with `os.wait4` and reports that one
child's wall time, CPU time and peak RSS. Linux counts the RSS a process had before `exec` in its
`ru_maxrss`, so a command forked straight from the benchmark (which holds the in-process applies' data)
would report the benchmark's size instead of its own; forked from the launcher, the floor is the launcher's
few MiB. `getrusage(RUSAGE_CHILDREN)` would give the maximum over every child so far, not this one's.
"""
from __future__ import annotations

import json
import os
import signal
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


_LAUNCHER = """
import json, os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as fh:
    json.dump({"wall": wall, "user": usage.ru_utime, "system": usage.ru_stime, "max_rss_kib": usage.ru_maxrss,
               "returncode": os.waitstatus_to_exitcode(status)}, fh)
"""


def run_child(argv: Sequence[str | Path], *, env: Mapping[str, str] | None = None, cwd: Path = ROOT,
              timeout: float | None = None) -> Child:
    """Run `argv` to completion through the launcher (killing its process group after `timeout` seconds)."""
    args = tuple(str(a) for a in argv)
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-child-") as tmp:
        report, out_path, err_path = Path(tmp, "report.json"), Path(tmp, "out"), Path(tmp, "err")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen([str(PYTHON), "-S", "-c", _LAUNCHER, str(report), *args], cwd=cwd,
                                    env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)  # the launcher's own group: it and the command
                proc.wait()
            elapsed = time.perf_counter() - start
        data = json.loads(report.read_text()) if report.exists() else {}
        return Child(args, float(data.get("wall", elapsed)), float(data.get("user", 0.0)),
                     float(data.get("system", 0.0)), int(data.get("max_rss_kib", 0)),
                     int(data.get("returncode", proc.returncode)), out_path.read_text(errors="replace"),
                     err_path.read_text(errors="replace"), timed_out)


def timed(fn: Callable[[], object]) -> float:
    """Seconds `fn()` took (its result is discarded)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
