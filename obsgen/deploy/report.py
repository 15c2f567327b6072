"""A plan as text (terminals), markdown (pull-request comments) or JSON (machines).

In text, a change whose diff changes more than LONG_DIFF lines (added and removed; context lines do not
count, so a small change among much context is shown) shows as its object and `(+N -M lines, not
shown)`, with one hint at the end, unless `full` is set; with `color`, diff lines are red (-), green (+) and
cyan (@@). Markdown and JSON are always complete and never coloured.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TextIO

from obsgen.deploy.plan import Plan

LONG_DIFF = 20  # changed (+/-) lines; a diff changing more is summarised in text unless full=True
_COLORS = {"-": "\033[31m", "+": "\033[32m", "@": "\033[36m"}
_RESET = "\033[0m"


def color_wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org) or TERM=dumb."""
    environ = os.environ if environ is None else environ
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _paint(line: str) -> str:
    code = _COLORS.get(line[:1]) if not line.startswith("@@") else _COLORS["@"]
    return f"{code}{line}{_RESET}" if code else line


def diff_stat(diff: list[str]) -> tuple[int, int]:
    """(added, removed) lines of a unified diff without file headers."""
    return sum(1 for line in diff if line[:1] == "+"), sum(1 for line in diff if line[:1] == "-")


def text(result: Plan, env: str, *, full: bool = False, color: bool = False) -> str:
    lines, summarised = [], 0
    for change in result.changes:
        diff = change.diff() if change.action == "update" else []
        lines.append(change.title)
        added, removed = diff_stat(diff)
        if added + removed > LONG_DIFF and not full:
            lines.append(f"    (+{added} -{removed} lines, not shown)")
            summarised += 1
        else:
            lines += [f"    {_paint(line) if color else line}" for line in diff]
    if summarised:
        lines.append(f"({summarised} long diff{'' if summarised == 1 else 's'} not shown; --full shows every line)")
    lines.append(f"{env}: {result.summary()}")
    return "\n".join(lines) + "\n"


def markdown(result: Plan, env: str) -> str:
    out = [f"### obsgen plan for `{env}`", "", result.summary(), ""]
    for change in result.changes:
        out.append(f"- `{change.title}`")
        if change.action == "update":
            out += ["", "  ```diff", *[f"  {line}" for line in change.diff()], "  ```", ""]
    return "\n".join(out).rstrip() + "\n"


def as_json(result: Plan, env: str) -> str:
    return json.dumps({
        "environment": env,
        "summary": result.summary(),
        "unchanged": result.unchanged,
        "changes": [{"action": c.action, "backend": c.obj.backend, "kind": c.obj.kind, "key": c.obj.key,
                     "diff": c.diff() if c.action == "update" else []} for c in result.changes],
    }, indent=2, sort_keys=True) + "\n"


FORMATS = {"text": text, "markdown": markdown, "json": as_json}
