"""Reading a selftest report: its schema, its checks against the spec, and the run's verdict.

`load_report` / `parse_report` give a `Report` or raise `ReportError` naming every problem by its JSON path;
`run_result` and `describe_run` judge the run by the environment's policy (`queries.run_limits`).
"""
from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from obsgen.compile import conventions as c
from obsgen.model import durations
from obsgen.compile import queries as q
from obsgen.errors import ObsgenError
from obsgen.model import Environment, Model
from obsgen.errors import closest

STATUSES = ("PASS", "FAIL", "SKIP", "TIMEOUT")
FAILED = ("FAIL", "TIMEOUT")
RUNNER_TIERS = ("kernel", "governance", "optional")  # the runner's own vocabulary, used without a spec
RUNNER_SEVERITY = {"kernel": "critical", "governance": "warning", "optional": "info"}
LABEL_RESULT = c.LABEL_RESULT
LABEL_OUTCOME = c.LABEL_OUTCOME
SCHEMA = ("schemas", "report", "selftest-report.schema.json")  # inside the obsgen package




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



# --- the report's schema --------------------------------------------------------------------------

def schema_text() -> str:
    """The JSON Schema of the report, as shipped in the package (`obsgen emit --print-schema`)."""
    from importlib import resources

    return resources.files("obsgen").joinpath(*SCHEMA).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_text()))


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


JsonPath = tuple[Any, ...]  # keys and indexes, e.g. ("results", 3, "tier")


def parse_report(data: object, source: str, model: Model | None = None) -> Report:
    """Validate a decoded report and return it; every problem at once as a ReportError.

    First against the shipped JSON Schema (`schema_text()`: `results[]` with `step_id`, `tier`, `status`
    and `duration_ms`, optional `metadata.timestamp` and `metadata.mode`, an optional `summary`), then what
    a schema cannot say: no step twice, tiers of the spec (or the runner's, without a spec), each step of
    the spec with the spec's tier, a real time, and `summary` counts that agree with the results (the seeds'
    CI gates read the summary, the metrics come from the results, and the two must tell the same story).
    """
    found = _schema_problems(data)
    if () in found or not isinstance(data, dict):  # the schema's first rule: a JSON object
        raise ReportError(source, [found.get((), "expected a JSON object")])
    problems: list[tuple[JsonPath, str]] = list(found.items())
    rows: list[tuple[StepResult, str, float]] = []
    results = data.get("results")
    if isinstance(results, list) and ("results",) not in found:
        rows = _results(results, found, model, problems)
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    timestamp = None
    if ("metadata",) not in found and ("metadata", "timestamp") not in found:
        timestamp = _timestamp(meta, [end for _, _, end in rows], problems)
    mode = meta.get("mode") if isinstance(meta.get("mode"), str) else ""
    summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    total_ms = summary.get("total_duration_ms")
    if total_ms is not None and ("summary", "total_duration_ms") not in found and not _finite(total_ms):
        problems.append((("summary", "total_duration_ms"), f"expected a number >= 0, got {_kind(total_ms)}"))
    if summary and not problems:
        _check_summary(summary, rows, problems)
    if problems:
        ordered = sorted(problems, key=lambda p: _order(p[0]))
        raise ReportError(source, [f"{_at(at)}: {message}" for at, message in ordered])
    steps = tuple(step for step, _, _ in rows)
    duration = total_ms / 1000 if total_ms is not None else sum(s.duration_seconds for s in steps)
    return Report(source, steps, duration, timestamp, mode)


def check_report(model: Model, report: Report) -> None:
    """Raise a ReportError if the report names a step the spec does not have, or gives it another tier."""
    problems = [f"results[{i}].{p[0]}: {p[1]}" for i, s in enumerate(report.steps) if (p := _spec_problem(model, s))]
    if problems:
        raise ReportError(report.source, problems)


def missing_steps(model: Model, report: Report) -> tuple[str, ...]:
    """The spec's steps the report has no result for, in spec order (a `--step`, `--until` or
    `--kernel-only` run): neither passed nor failed. Their step_failed gauges keep their last value, their
    failure counters do not move, and the run's result is judged on the steps it ran."""
    ran = {s.id for s in report.steps}
    return tuple(s.id for s in model.steps if s.id not in ran)


def _schema_problems(data: object) -> dict[JsonPath, str]:
    """One message per JSON path the schema finds wrong, in obsgen's words (the schema's `x-expected`)."""
    found: dict[JsonPath, str] = {}
    for error in _validator().iter_errors(data):
        at = tuple(error.absolute_path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        if error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    found.setdefault(at + (name,), _MISSING.get(at + (name,), "missing"))
            continue
        if at in found:
            continue
        expected = schema.get("x-expected")
        if expected is None and error.validator == "enum":
            expected = "one of " + ", ".join(str(v) for v in error.validator_value)
        elif expected is None and error.validator == "type":
            expected = _TYPE_NAMES.get(str(error.validator_value), str(error.validator_value))
        found[at] = f"expected {expected}, got {_kind(error.instance)}" if expected else error.message
    return found


_MISSING = {("results",): "missing; emit needs the per-step results of the full `selftest --json-v2` report, "
                          "not only its summary"}
_TYPE_NAMES = {"object": "object", "array": "array", "string": "string", "number": "number",
               "integer": "a whole number"}
_TOP = {"version": 0, "results": 1, "metadata": 2, "summary": 3}
_FIELDS = {"step_id": 0, "tier": 1, "status": 2, "duration_ms": 3}


def _order(path: JsonPath) -> tuple[Any, ...]:
    """Problems in the order a reader meets them: version, each result by index and field, metadata, summary."""
    if not path:
        return (-1,)
    rest = tuple(p if isinstance(p, int) else _FIELDS.get(p, 9) for p in path[1:])  # ties: as found
    return (_TOP.get(path[0], 4), *rest)


def _at(path: JsonPath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _results(results: list[Any], found: dict[JsonPath, str], model: Model | None,
             problems: list[tuple[JsonPath, str]]) -> list[tuple[StepResult, str, float]]:
    """(step, severity, end time) per entry the schema accepted; the checks a schema cannot make."""
    tiers = tuple(t.id for t in model.tiers) if model else RUNNER_TIERS
    seen: dict[str, int] = {}
    rows = []
    for i, item in enumerate(results):
        if not isinstance(item, dict):
            continue
        bad = any(p[:2] == ("results", i) for p in found)
        step_id, tier = item.get("step_id"), item.get("tier")
        if isinstance(step_id, str) and step_id:
            if step_id in seen:
                duplicate = f"duplicate step {step_id} (also results[{seen[step_id]}])"
                problems.append((("results", i, "step_id"), duplicate))
                bad = True
            else:
                seen[step_id] = i
        if isinstance(tier, str) and tier and tier not in tiers:
            problems.append((("results", i, "tier"), f"expected one of {', '.join(tiers)}, got {_kind(tier)}"))
            bad = True
        for key in ("duration_ms", "timestamp_end"):
            if item.get(key) is not None and ("results", i, key) not in found and not _finite(item[key]):  # NaN
                problems.append((("results", i, key), f"expected a number >= 0, got {_kind(item[key])}"))
                bad = True
        if bad:
            continue
        step = StepResult(step_id, tier, item["status"], item["duration_ms"] / 1000)
        if model and (problem := _spec_problem(model, step)):
            problems.append((("results", i, problem[0]), problem[1]))
            continue
        severity = item.get("severity", model.tier(tier).severity if model else RUNNER_SEVERITY.get(tier, ""))
        rows.append((step, severity, float(item.get("timestamp_end") or 0.0)))
    return rows


def _spec_problem(model: Model, step: StepResult) -> tuple[str, str] | None:
    """(field, message) when the spec has no such step, or gives it another tier."""
    known = {s.id: s for s in model.steps}
    if step.id not in known:
        close = closest(step.id, known)
        hint = f" (did you mean {close}?)" if close else ""
        return "step_id", f"unknown step {step.id}; the spec has no such step{hint}"
    if known[step.id].tier != step.tier:
        return "tier", f"step {step.id} is {known[step.id].tier} in the spec, not {step.tier}"
    return None


def _check_summary(summary: dict[str, Any], rows: list[tuple[StepResult, str, float]],
                   problems: list[tuple[JsonPath, str]]) -> None:
    steps = [s for s, _, _ in rows]
    counts = {"passed": (sum(s.status == "PASS" for s in steps), "passed "),
              "failed": (sum(s.failed for s in steps), "failed "),
              "skipped": (sum(s.status == "SKIP" for s in steps), "skipped "),
              "total": (len(steps), "")}
    for key, (n, what) in counts.items():
        _agree(summary.get(key), n, ("summary", key), f"{what}step", problems)
    for severity, entry in (summary.get("by_severity") or {}).items():
        n = sum(1 for s, sev, _ in rows if sev == severity and s.failed)
        _agree(entry.get("failed"), n, ("summary", "by_severity", severity, "failed"), f"failed {severity} step",
               problems)


def _agree(value: Any, n: int, at: JsonPath, what: str, problems: list[tuple[JsonPath, str]]) -> None:
    if value is not None and value != n:
        problems.append((at, f"{value}, but results has {n} {what}{'' if n == 1 else 's'}"))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _timestamp(meta: dict[str, Any], ends: list[float], problems: list[tuple[JsonPath, str]]) -> float | None:
    text = meta.get("timestamp")
    if text is None:
        return max(ends) if ends and max(ends) > 0 else None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        expected = "an ISO 8601 time with a UTC offset (e.g. 2025-11-30T15:30:00+00:00)"
        problems.append((("metadata", "timestamp"), f"expected {expected}, got {_kind(text)}"))
        return None
    return when.timestamp()


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    name = names.get(type(value), "number")
    if isinstance(value, (dict, list)):
        return f"{name} ({len(value)} {'keys' if isinstance(value, dict) else 'items'})"
    shown = json.dumps(value)
    return f"{name} {shown if len(shown) <= 40 else shown[:37] + '...'}"


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

