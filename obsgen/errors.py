"""One error root. Errors carry data and build their own message; the CLI maps them to exit codes."""
from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence


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


# --- "did you mean": the closest known name to a misspelt one ---------------------------------------
def closest(value: str, known: Iterable[str]) -> str | None:
    """The known name most like `value` (ignoring case), or None when none is close (difflib's ratio >= 0.6)."""
    import difflib

    by_folded: dict[str, str] = {}
    for name in sorted(known):
        by_folded.setdefault(name.casefold(), name)
    match = difflib.get_close_matches(value.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[match[0]] if match else None


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """': did you mean 'x'?' for the closest known name, or '' when there is none."""
    match = closest(value, known)
    return f": did you mean {match!r}?" if match is not None and match != value else ""


def known_name(what: str, value: str, known: Sequence[str], listed: str = "") -> str:
    """`value` as the one of the `known` names it means: itself, else the only one equal to it ignoring case
    (`--env Dev` is `dev`). Else an error with the closest name ("did you mean") and, in parentheses,
    `listed` (default: "the spec defines: <the known names>"). One rule for every environment and tier name
    a command is given."""
    if value in known:
        return value
    same = [name for name in known if name.casefold() == value.casefold()]
    if len(same) == 1:
        return same[0]
    raise ObsgenError(f"unknown {what} {value!r}{did_you_mean(value, known)} "
                      f"({listed or 'the spec defines: ' + ', '.join(known)})")
