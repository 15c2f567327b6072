"""Reading a selftest report, and the run's verdict.

`load_report` / `parse_report` give a `Report` or raise `ReportError` naming every problem by its JSON path
(the checks themselves are obsgen.run.emit.checks);
`run_result` and `describe_run` judge the run by the environment's policy (`queries.run_limits`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from obsgen.compile import conventions as c
from obsgen.compile import queries as q
from obsgen.errors import ObsgenError
from obsgen.model import Environment, Model, durations
from obsgen.run.emit.checks import FAILED, examine, spec_problem

LABEL_RESULT = c.LABEL_RESULT
LABEL_OUTCOME = c.LABEL_OUTCOME


class ReportError(ObsgenError):
    """A report obsgen cannot emit: one line per problem, each naming the file and the JSON path."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


@dataclass(frozen=True)
class StepResult:
    id: str
    tier: str
    status: str  # PASS | FAIL | SKIP | TIMEOUT
    duration_seconds: float

    @property
    def failed(self) -> bool:
        return self.status in FAILED


@dataclass(frozen=True)
class Report:
    """One selftest run. Whether it failed depends on the environment: see `run_result`."""

    source: str  # the file name, for messages
    steps: tuple[StepResult, ...]
    duration_seconds: float  # summary.total_duration_ms, else the sum of the steps'
    timestamp: float | None = None  # unix seconds: metadata.timestamp, else the last step's end; the run's identity
    mode: str = ""  # strict | degraded | kernel-only, as the runner reports it

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.steps if s.failed)

    @property
    def passed(self) -> bool:
        """No step failed: the runner's own verdict in strict mode (exit status 0)."""
        return not self.failing


# --- reading a report -----------------------------------------------------------------------------

class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(name)


def load_report(path: str, model: Model | None = None) -> Report:
    """Read and validate a `--json-v2` report file; with a model, also against the spec's steps."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ReportError(path, [f"cannot read the report: {exc.strerror}"]) from None
    if not raw.strip():
        raise ReportError(path, ["empty file; expected the JSON report of `selftest --json-v2`"])
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except _NotJson as exc:
        raise ReportError(path, [f"invalid JSON: {exc} is not a JSON number"]) from None
    except json.JSONDecodeError as exc:
        raise ReportError(path, [f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"]) from None
    except ValueError:
        raise ReportError(path, ["not UTF-8 text; expected the JSON report of `selftest --json-v2`"]) from None
    return parse_report(data, path, model)


def parse_report(data: object, source: str, model: Model | None = None) -> Report:
    """Validate a decoded report and return it; every problem at once as a ReportError (the checks are
    obsgen.run.emit.checks: the shipped JSON Schema, then what a schema cannot say -- no step twice, the
    spec's steps and tiers, a real time, `summary` counts that agree with the results)."""
    checked = examine(data, model)
    if checked.problems:
        raise ReportError(source, checked.problems)
    steps = tuple(StepResult(r.step_id, r.tier, r.status, r.duration_seconds) for r in checked.rows)
    total_ms = checked.total_ms
    duration = total_ms / 1000 if total_ms is not None else sum(s.duration_seconds for s in steps)
    return Report(source, steps, duration, checked.timestamp, checked.mode)


def check_report(model: Model, report: Report) -> None:
    """Raise a ReportError if the report names a step the spec does not have, or gives it another tier."""
    problems = [f"results[{i}].{p[0]}: {p[1]}" for i, s in enumerate(report.steps)
                if (p := spec_problem(model, s.id, s.tier))]
    if problems:
        raise ReportError(report.source, problems)


def missing_steps(model: Model, report: Report) -> tuple[str, ...]:
    """The spec's steps the report has no result for, in spec order (a `--step`, `--until` or
    `--kernel-only` run): neither passed nor failed. Their step_failed gauges keep their last value, their
    failure counters do not move, and the run's result is judged on the steps it ran."""
    ran = {s.id for s in report.steps}
    return tuple(s.id for s in model.steps if s.id not in ran)


def run_time(report: Report) -> str:
    """The report's time as ISO 8601 UTC, for messages ("" without one)."""
    return format_time(report.timestamp)


def format_time(when: float | None) -> str:
    """A Unix time as ISO 8601 UTC, for messages ("" for None)."""
    return "" if when is None else datetime.fromtimestamp(when, UTC).isoformat()


def stale_report(model: Model, env_name: str, report: Report, now: float | None = None) -> str:
    """Why a counted run makes its environment look silent, or "": the report's time is further back than
    the environment's not_reporting alert allows, so that alert fires although a run was just emitted."""
    from obsgen.compile.prometheus import stale_after

    env = _environment(model, env_name)
    if report.timestamp is None:
        return ""
    age = (time.time() if now is None else now) - report.timestamp
    for alert in model.alerts:
        if alert.kind == "not_reporting" and alert.params_for(env.name).enabled:
            limit = stale_after(alert, env)
            if age > durations.seconds(limit):
                return (f"the run of {run_time(report)} is more than {limit} old, {alert.name}'s limit in "
                        f"{env.name}: {env.name} looks silent since then, and {alert.name} fires until a "
                        f"newer run reports")
    return ""


# --- the run's verdict, synthetic runs ------------------------------------------------------------

def run_result(model: Model, env_name: str, report: Report) -> str:
    """"fail" when the run breaks the environment's policy (see the module docstring), else "pass"."""
    env = _environment(model, env_name)
    for tier, tolerated in q.run_limits(model, env):
        if sum(1 for s in report.steps if s.tier == tier and s.failed) > tolerated:
            return "fail"
    return "pass"


PASS, TICKET, PAGE = c.OUTCOME_PASS, c.OUTCOME_TICKET, c.OUTCOME_PAGE  # a run's outcome


def run_outcome(model: Model, env_name: str, report: Report) -> str:
    """What the run's failures lead to in the environment: PAGE when a tier whose failures page there
    (`queries.paging_tiers`) fails beyond its tolerance, TICKET when the run fails otherwise, else PASS.
    A run whose outcome is not PAGE ends a `no_passing_run` page."""
    env = _environment(model, env_name)
    paging, outcome = q.paging_tiers(model, env), PASS
    for tier, tolerated in q.run_limits(model, env):
        if sum(1 for s in report.steps if s.tier == tier and s.failed) > tolerated:
            if tier in paging:
                return PAGE
            outcome = TICKET
    return outcome


def describe_run(model: Model, env_name: str, report: Report) -> str:
    """Why the run has its result, in words: how many steps ran, each tier's failures against the
    environment's tolerance (or informational there), and the failing steps, e.g. `10 steps; 2 governance
    failures within dev's tolerance of 3; failing: bdd, ac-status`."""
    env = _environment(model, env_name)
    ran = len(report.steps)
    steps = f"{ran} steps" if ran == len(model.steps) else f"{ran} of {len(model.steps)} steps"
    if not report.failing:
        return f"{steps}, failing: none"
    limits = dict(q.run_limits(model, env))
    clauses = []
    for tier in model.tiers:
        n = sum(1 for s in report.steps if s.tier == tier.id and s.failed)
        if not n:
            continue
        failures = f"{n} {tier.id} failure{'' if n == 1 else 's'}"
        if tier.id not in limits:
            clauses.append(f"{failures} informational in {env.name}")
        else:
            side = "within" if n <= limits[tier.id] else "above"
            clauses.append(f"{failures} {side} {env.name}'s tolerance of {limits[tier.id]}")
    return f"{steps}; {', '.join(clauses)}; failing: {', '.join(report.failing)}"


def synthetic_report(model: Model, env_name: str, tier: str, failing: int | None = None) -> Report:
    """A fire-drill run: the first `failing` steps of `tier` fail (by default one more than the
    environment tolerates, so the tier's alert fires), every other step passes."""
    env = _environment(model, env_name)
    steps = model.steps_of(tier)
    if not steps:
        known = ", ".join(t.id for t in model.tiers if model.steps_of(t.id))
        raise ObsgenError(f"no steps of tier {tier!r} in the spec (tiers with steps: {known})")
    count = env.policy.tolerance_for(tier) + 1 if failing is None else failing
    if not 0 <= count <= len(steps):
        raise ObsgenError(f"cannot make {count} {tier} step(s) fail: the spec has {len(steps)} "
                          f"({env.name} tolerates {env.policy.tolerance_for(tier)})")
    bad = {s.id for s in steps[:count]}
    results = tuple(StepResult(s.id, s.tier, "FAIL" if s.id in bad else "PASS", 0.0) for s in model.steps)
    return Report(f"synthetic {tier} drill", results, 0.0, None, "strict")


def _environment(model: Model, name: str) -> Environment:
    try:
        return model.environment(name)
    except KeyError:
        known = ", ".join(e.name for e in model.environments)
        raise ObsgenError(f"unknown environment {name!r} (the spec defines: {known})") from None

