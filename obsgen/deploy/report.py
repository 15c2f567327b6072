"""A plan as text (terminals), markdown (pull-request comments) or JSON (machines)."""
from __future__ import annotations

import json

from obsgen.deploy.plan import Plan


def text(result: Plan, env: str) -> str:
    lines = []
    for change in result.changes:
        lines.append(change.title)
        lines += [f"    {line}" for line in change.diff()] if change.action == "update" else []
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
