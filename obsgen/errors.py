"""One error root. Errors carry data and build their own message; the CLI maps them to exit codes."""
from __future__ import annotations

from typing import NamedTuple


class ObsgenError(Exception):
    """Anything obsgen reports to the user as a clear message (exit 2), never as a traceback."""


class Problem(NamedTuple):  # a NamedTuple, not a dataclass: the drift check's start-up stays lean
    """One thing wrong with a spec, at a 1-based line and column."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class SpecError(ObsgenError):
    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))
