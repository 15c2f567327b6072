"""The one pure plan: desired objects against live objects, for every backend.

Backends read live state and normalise it into `Obj`s; the compiler's output is
normalised the same way; `plan` compares them and returns changes, each with a
line-level diff of just what differs. Nothing here does I/O.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

# Apply order: folders before dashboards, rules before routing.
ORDER = {"folder": 0, "dashboard": 1, "rule-group": 2, "alertmanager-config": 3, "receiver": 3, "inhibit-rules": 3,
         "route": 4}
CREATE, UPDATE, DELETE = "create", "update", "delete"
BLOCKED = "blocked"  # a desired object's name is held by something obsgen does not own: never changed
SYMBOL = {CREATE: "+", UPDATE: "~", DELETE: "-", BLOCKED: "!"}


@dataclass(frozen=True)
class Obj:
    """One object a backend holds, in normalised form (only the fields obsgen generates)."""

    backend: str  # grafana | prometheus | alertmanager
    kind: str  # folder | dashboard | rule-group | alertmanager-config | route | receiver | inhibit-rules
    key: str  # uid, "namespace/group", or the config's name
    body: Any = field(compare=True)
    owned: bool = True  # live objects obsgen did not create are never changed or deleted
    payload: Any = field(default=None, compare=False)  # what a backend writes (unnormalised)

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.backend, self.kind, self.key)


@dataclass(frozen=True)
class Change:
    action: str
    before: Obj | None
    after: Obj | None

    @property
    def obj(self) -> Obj:
        return self.after or self.before  # type: ignore[return-value]

    @property
    def title(self) -> str:
        note = " (held by an object obsgen does not own; apply refuses to change it)" if self.action == BLOCKED else ""
        return f"{SYMBOL[self.action]} {self.obj.backend} {self.obj.kind} {self.obj.key}{note}"

    def diff(self) -> list[str]:
        """Unified-diff lines of the normalised bodies (without file headers)."""
        before = canonical(self.before.body).splitlines() if self.before else []
        after = canonical(self.after.body).splitlines() if self.after else []
        return [line.rstrip("\n") for line in difflib.unified_diff(before, after, lineterm="", n=2)][2:]


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not self.changes

    def of(self, *actions: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action in actions)

    def summary(self) -> str:
        if self.empty:
            return f"No changes: the live state matches the spec ({self.unchanged} objects)."
        counts = {a: len(self.of(a)) for a in (CREATE, UPDATE, DELETE, BLOCKED)}
        blocked = f", {counts[BLOCKED]} blocked" if counts[BLOCKED] else ""
        return (f"Plan: {counts[CREATE]} to create, {counts[UPDATE]} to update, {counts[DELETE]} to delete"
                f"{blocked} ({self.unchanged} unchanged).")


def canonical(body: Any) -> str:
    """A stable multi-line text of a body, so diffs are line-level and readable.

    YAML with sorted keys, and multi-line strings (PromQL, templates) as block
    scalars, so a change inside a long expression shows as the one line it touches.
    """
    from obsgen.compile import render

    return render.to_yaml(json.loads(json.dumps(body, default=str))).decode()


def _order(change: Change) -> tuple[int, int, str, str]:
    o = change.obj
    # deletes run in reverse dependency order (dashboards before their folder)
    rank = ORDER.get(o.kind, 9)
    return (2 if change.action == DELETE else 0, -rank if change.action == DELETE else rank, o.backend, o.key)


def plan(desired: Iterable[Obj], live: Iterable[Obj]) -> Plan:
    """Changes that turn `live` into `desired`; unowned live objects are never touched (a desired object
    whose key an unowned one holds is BLOCKED: named in the plan, its content not diffed)."""
    live_by_id = {o.ident: o for o in live}
    changes, unchanged = [], 0
    seen = set()
    for want in desired:
        seen.add(want.ident)
        have = live_by_id.get(want.ident)
        if have is None:
            changes.append(Change(CREATE, None, want))
        elif not have.owned:  # someone else's object: neither compared nor shown, only named
            changes.append(Change(BLOCKED, have, want))
        elif have.body != want.body:
            changes.append(Change(UPDATE, have, want))
        else:
            unchanged += 1
    for ident, have in live_by_id.items():
        if ident not in seen and have.owned:
            changes.append(Change(DELETE, have, None))
    return Plan(tuple(sorted(changes, key=_order)), unchanged)
