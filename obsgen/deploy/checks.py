"""What `obsgen doctor` reports: one line per check (passed, failed with its fix, warned, or not run), and
the summary line."""
from __future__ import annotations

from dataclasses import dataclass, field

OK, FAIL, SKIP, WARN = "ok", "fail", "skip", "warn"  # WARN: worth fixing, but nothing fails for it
MARKS = {OK: "\u2713", FAIL: "\u2717", SKIP: "-", WARN: "!"}


@dataclass(frozen=True)
class Check:
    backend: str  # e.g. "Grafana (prod)"
    what: str  # e.g. "token"
    state: str  # OK, FAIL, WARN or SKIP
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        fix = f" \u2014 fix: {self.fix}" if self.state in (FAIL, WARN) and self.fix else ""
        return f"{MARKS[self.state]} {self.backend}: {self.what}: {self.detail}{fix}"


@dataclass
class Report:
    env: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.state == FAIL]

    def summary(self) -> str:
        passed = sum(1 for check in self.checks if check.state == OK)
        skipped = sum(1 for check in self.checks if check.state == SKIP)
        warned = sum(1 for check in self.checks if check.state == WARN)
        not_run = f", {skipped} not run" if skipped else ""
        not_run += f", {warned} warning{'' if warned == 1 else 's'}" if warned else ""
        if self.ok:
            return f"{self.env}: all {passed} checks passed{not_run}"
        problems = len(self.failed)
        return (f"{self.env}: {problems} problem{'s' if problems > 1 else ''} "
                f"({', '.join(dict.fromkeys(f'{ch.backend} {ch.what}' for ch in self.failed))}); "
                f"{passed} check{'' if passed == 1 else 's'} passed{not_run}")


@dataclass
class Checks:
    """The checks of one backend, in order; `halted` once one fails that later ones depend on."""

    backend: str
    checks: list[Check] = field(default_factory=list)
    halted: str = ""
    url_fix: str = ""  # how to point obsgen at another URL

    def ok(self, what: str, detail: str) -> None:
        self.checks.append(Check(self.backend, what, OK, detail))

    def fail(self, what: str, detail: str, fix: str, halt: bool = False) -> None:
        self.checks.append(Check(self.backend, what, FAIL, detail, fix))
        if halt and not self.halted:
            self.halted = what

    def skip(self, what: str, why: str = "") -> None:
        self.checks.append(Check(self.backend, what, SKIP, why or f"not checked: the {self.halted} check failed"))

    def warn(self, what: str, detail: str, fix: str) -> None:
        self.checks.append(Check(self.backend, what, WARN, detail, fix))
