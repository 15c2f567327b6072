"""The one value every compile target returns: a file to be written under generated/."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Artifact:
    path: str  # POSIX path relative to the output directory, e.g. "dev/prometheus/selftest-alerts.rules.yaml"
    content: bytes
