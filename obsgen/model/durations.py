"""Prometheus-style durations ("90s", "5m", "1h30m", "28d") as whole seconds."""
from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_WHOLE = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")


def is_duration(text: str) -> bool:
    return isinstance(text, str) and bool(_WHOLE.fullmatch(text))


def seconds(text: str) -> float:
    """Seconds in a duration string; raises ValueError on a malformed one."""
    if not is_duration(text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h, 28d)")
    return sum(int(n) * UNITS[u] for n, u in _PART.findall(text))


def format_seconds(total: float) -> str:
    """The shortest single-unit or compound form Prometheus accepts: 3600 -> "1h", 5400 -> "1h30m"."""
    total = int(total)
    if total == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out
