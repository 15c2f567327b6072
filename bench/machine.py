"""What the numbers were measured on: CPU, memory, OS, Python, obsgen and backend versions."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

VERSION_COMMANDS = {
    "prometheus": ["prometheus", "--version"],
    "alertmanager": ["prometheus-alertmanager", "--version"],
    "pushgateway": ["prometheus-pushgateway", "--version"],
}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def os_name() -> str:
    pretty = ""
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip().strip('"')
    return f"{pretty or platform.system()} (kernel {platform.release()}, {platform.machine()})"


def tool_version(name: str) -> str:
    """First line of `<binary> --version`, e.g. 'prometheus, version 2.42.0+ds (...)' -> '2.42.0+ds'."""
    argv = VERSION_COMMANDS[name]
    if not shutil.which(argv[0]):
        return "not installed"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    line = (done.stdout or done.stderr).strip().splitlines()[:1]
    if not line:
        return "unknown"
    words = line[0].split()
    return words[words.index("version") + 1] if "version" in words else line[0]


def _where(executable: str) -> str:
    """The interpreter's path, relative to the project when it is the project's venv."""
    root = Path(__file__).resolve().parents[1]
    path = Path(executable)
    return str(path.relative_to(root)) if path.is_relative_to(root) else executable


def describe() -> dict[str, object]:
    """The machine and software the benchmark ran on, as plain data."""
    from obsgen import __version__

    return {
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": os_name(),
        "python": f"{platform.python_implementation()} {platform.python_version()} ({_where(sys.executable)})",
        "obsgen": __version__,
        "prometheus": tool_version("prometheus"),
        "alertmanager": tool_version("alertmanager"),
        "pushgateway": tool_version("pushgateway"),
    }
