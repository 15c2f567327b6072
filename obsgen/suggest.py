"""'Did you mean' for a misspelt key, id or name: the closest known one, when one is close enough."""
from __future__ import annotations

from typing import Iterable


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
