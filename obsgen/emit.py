"""The selftest report bridge: a `--json-v2` run report in, the metrics the spec names out.

    report = load_report("selftest-report.json", model)
    done = emit_to_pushgateway(model, "dev", report, "http://pushgateway:9091")   # or emit_to_textfile
    done.counted   # False when the target had already counted this run: nothing was written

The report's format is the JSON Schema obsgen ships (`schema_text()`, `obsgen emit --print-schema`,
obsgen/schemas/report/); a report is checked against it and then against the spec (every step it names is
a spec step of the spec's tier). A spec step absent from the report is not an error: see `missing_steps`.

The series, named by `model.metrics`, each labelled `<env_label>="<env>"` (plus any extra labels):

- `step_failed{step_id, tier}` gauge: 1 when the step failed (FAIL or TIMEOUT) in the last run that ran it,
  0 when it passed or was skipped (the runner does not count a skip as a failure either). A spec step absent
  from the report (a `--step`, `--until` or `--kernel-only` run) keeps its value from the previous
  exposition, and has no series before a run reports it: a partial run says nothing about the steps it did
  not run, so it must neither raise nor clear their alerts. A step the spec does not know is an error.
- `step_failures_total{step_id, tier}` counter: runs in which the step failed, one series per spec step
  (0 until it fails), so that dashboards count failed runs with increase() rather than gauge samples. A
  fire drill (`accumulate=False`) leaves it at 0.
- `runs_total{result="pass"|"fail"}` counter, both series always present so that rates exist at once.
- `run_duration` histogram over the spec's `duration_buckets`, `le` written as the rules match it.
- `last_run_timestamp` gauge: the time of the newest run counted, the report's time, else `now`. It never
  moves back.
- `recent_runs{recent="1".."16"}` gauge: the times of the last runs counted at this target, newest first.

A run is known by its report's time (`metadata.timestamp`) and is counted once, in order (`place`): a report
whose time is one of the recent runs' was counted already (REPLAYED: nothing is written); a report older
than the newest run counted arrived late (OLDER: nothing is written either, so it neither moves
`last_run_timestamp` back nor counts a run the rates have already passed; the caller says so). A report
without a time cannot be told from a replay and is counted every time.

A run fails when it breaks the environment's policy (`queries.run_limits`, which the dashboard's Status
reads too), the bar the generated step alerts use and what the
selftest's exit status means per environment in the seeds: a failing step of a critical tier (KERNEL), more
failing steps of a warning tier (GOVERNANCE) than the environment tolerates, or a failing step of an
informational tier (OPTIONAL) where the environment pages on any failure (prod). The pass-rate SLO then
burns on exactly the runs that block. Counters and the histogram are cumulative: each exposition adds one
run to the previous one for the same target (two emitters racing on one target can lose a run).

The exposition, the textfile and the Pushgateway protocol are prometheus_client's (imported on first use):
a CollectorRegistry, `write_to_textfile`, `push_to_gateway` and `delete_from_gateway`, the last two sending
through obsgen's own HTTP client (its timeouts and one-line errors).
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from obsgen import conventions as c
from obsgen import durations
from obsgen import queries as q
from obsgen.errors import ObsgenError
from obsgen.http import TIMEOUT, BackendError, Http
from obsgen.model import Environment, Model
from obsgen.suggest import closest

STATUSES = ("PASS", "FAIL", "SKIP", "TIMEOUT")
FAILED = ("FAIL", "TIMEOUT")
RUNNER_TIERS = ("kernel", "governance", "optional")  # the runner's own vocabulary, used without a spec
RUNNER_SEVERITY = {"kernel": "critical", "governance": "warning", "optional": "info"}
LABEL_RESULT = "result"
DRILL_GROUPING = {q.DRILL_LABEL: "true"}
SCHEMA = ("schemas", "report", "selftest-report.schema.json")  # inside the obsgen package
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


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


COUNTED, REPLAYED, OLDER = "counted", "replayed", "older"
RECENT_RUNS = 16  # run times a target remembers, so that a replay of any of them is not counted again
LABEL_RECENT = "recent"


@dataclass(frozen=True)
class Emitted:
    """What an emit did: the metrics now at the target, and whether this run was counted now (`place`)."""

    text: str  # the exposition the target holds after the emit
    status: str = COUNTED  # COUNTED; REPLAYED or OLDER: nothing was written
    last_run: float | None = None  # the newest run the target had counted before this emit

    @property
    def counted(self) -> bool:
        return self.status == COUNTED


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


# --- the exposition -------------------------------------------------------------------------------

def registry(model: Model, env_name: str, report: Report, previous: str | None = None,
             now: float | None = None, extra_labels: Mapping[str, str] | None = None,
             count_step_failures: bool = True) -> Any:
    """The metrics of this run as a prometheus_client CollectorRegistry, cumulative over `previous` (the
    last exposition for the same target, or None to start over). Sorted and deterministic. A fire drill
    passes count_step_failures=False: its failing steps are not counted as failed runs."""
    from prometheus_client import CollectorRegistry

    env = _environment(model, env_name)
    check_report(model, report)
    m = model.metrics
    base = {m.env_label: env.name, **_extra_labels(model, extra_labels or {})}
    prev = _previous(previous, model, env.name)
    ran = {s.id: s for s in report.steps}
    step_labels = {s.id: {**base, c.LABEL_STEP: s.id, c.LABEL_TIER: s.tier} for s in model.steps}
    steps = []
    for step in model.steps:
        value = (1.0 if ran[step.id].failed else 0.0) if step.id in ran else prev.steps.get(step.id)
        if value is not None:
            steps.append((step_labels[step.id], value))
    failures = [(step_labels[s.id], prev.step_failures.get(s.id, 0.0)
                 + (1.0 if count_step_failures and s.id in ran and ran[s.id].failed else 0.0)) for s in model.steps]
    runs = {"fail": prev.runs.get("fail", 0.0), "pass": prev.runs.get("pass", 0.0)}
    runs[run_result(model, env.name, report)] += 1
    stamp = report.timestamp if report.timestamp is not None else time.time() if now is None else now
    stamp = max(stamp, prev.last_run) if prev.last_run is not None else stamp  # never back in time
    recent = prev.recent if report.timestamp is None else \
        [report.timestamp, *(t for t in prev.recent if t != report.timestamp)][:RECENT_RUNS]
    families = [
        _family(m.step_failed, "gauge", "1 if the selftest step failed in the last run that ran it, else 0.", steps),
        _family(m.step_failures_total, "counter", "Selftest runs in which the step failed (FAIL or TIMEOUT).",
                failures),
        _family(m.runs_total, "counter", "Selftest runs by result under the environment's policy (pass or fail).",
                [({**base, LABEL_RESULT: r}, runs[r]) for r in sorted(runs)]),
        _histogram(m.run_duration, m.duration_buckets, base, prev, report.duration_seconds),
        _family(m.last_run_timestamp, "gauge", "Unix time of the last selftest run.", [(base, stamp)]),
        _family(m.recent_runs, "gauge", "Unix times of the last selftest runs counted here, newest first "
                "(recent=\"1\"): a report of one of them is not counted again.",
                [({**base, LABEL_RECENT: str(i)}, t) for i, t in enumerate(recent, 1)]),
    ]
    names = [m.step_failed, m.step_failures_total, m.runs_total, m.run_duration, m.last_run_timestamp,
             m.recent_runs]
    collected = _Collected([family for _, family in sorted(zip(names, families), key=lambda nf: nf[0])])
    result = CollectorRegistry(auto_describe=False)
    result.register(collected)
    return result


def exposition(model: Model, env_name: str, report: Report, previous: str | None = None,
               now: float | None = None, extra_labels: Mapping[str, str] | None = None,
               count_step_failures: bool = True) -> str:
    """`registry` in the Prometheus text format (prometheus_client's)."""
    return _text(registry(model, env_name, report, previous, now, extra_labels, count_step_failures))


def place(model: Model, env_name: str, report: Report, previous: str | None) -> tuple[str, float | None]:
    """Where this run stands at a target holding `previous`: (COUNTED, REPLAYED or OLDER, the newest run
    the target counted). REPLAYED: its time is one of the recent runs' (or the last run's, for a target
    written before recent runs were kept). OLDER: it is older than the newest run counted."""
    prev = _previous(previous, model, _environment(model, env_name).name)
    when = report.timestamp
    if when is None:
        return COUNTED, prev.last_run
    if when in prev.recent or when == prev.last_run:
        return REPLAYED, prev.last_run
    if prev.last_run is not None and when < prev.last_run:
        return OLDER, prev.last_run
    return COUNTED, prev.last_run


def already_counted(model: Model, env_name: str, report: Report, previous: str | None) -> bool:
    """True when `previous` (the target's metrics) shows this run counted (`place`: REPLAYED)."""
    return place(model, env_name, report, previous)[0] == REPLAYED


class _Collected:
    """A prometheus_client collector of metric families computed beforehand."""

    def __init__(self, families: list[Any]):
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


def _text(reg: Any) -> str:
    from prometheus_client import generate_latest

    return generate_latest(reg).decode("utf-8")


def _family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> Any:
    """A gauge or counter family, samples sorted by their labels. A counter whose name does not end in
    `_total` is written untyped: prometheus_client would otherwise append `_total` to the spec's name."""
    from prometheus_client import core

    names = sorted(samples[0][0]) if samples else []
    if kind == "gauge":
        family = core.GaugeMetricFamily(name, help_text, labels=names)
    elif name.endswith("_total"):
        family = core.CounterMetricFamily(name, help_text, labels=names)
    else:
        family = core.UnknownMetricFamily(name, help_text, labels=names)
    for labels, value in sorted(samples, key=lambda s: sorted(s[0].items())):
        family.add_metric([labels[n] for n in names], value)
    return family


def _histogram(name: str, buckets: tuple[float, ...], base: dict[str, str], prev: _Previous,
               observed: float) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    bounds = sorted(set(buckets)) + [math.inf]
    counts = [prev.buckets.get(b, 0.0) for b in bounds]
    consistent = (set(prev.buckets) == set(bounds) and prev.count == counts[-1]
                  and all(a <= b for a, b in zip(counts, counts[1:])))
    total = prev.sum if consistent else 0.0
    counts = [(n if consistent else 0.0) + (observed <= b) for n, b in zip(counts, bounds)]
    names = sorted(base)
    family = HistogramMetricFamily(name, "Duration of whole selftest runs in seconds.", labels=names)
    family.add_metric([base[n] for n in names],
                      [("+Inf" if b == math.inf else c.fmt_number(b), n) for b, n in zip(bounds, counts)],
                      sum_value=total + observed)
    return family


def _extra_labels(model: Model, extra: Mapping[str, str]) -> dict[str, str]:
    reserved = {model.metrics.env_label, c.LABEL_STEP, c.LABEL_TIER, LABEL_RESULT, LABEL_RECENT, "le"}
    for name, value in extra.items():
        if not _NAME.fullmatch(name) or name.startswith("__") or name in reserved:
            raise ObsgenError(f"extra label {name!r}: not a label name obsgen may add (reserved: "
                              f"{', '.join(sorted(reserved))}; names match [a-zA-Z_][a-zA-Z0-9_]*)")
        if not isinstance(value, str):
            raise ObsgenError(f"extra label {name!r}: the value must be a string")
    return dict(extra)


# --- reading a previous exposition ----------------------------------------------------------------

@dataclass
class _Previous:
    runs: dict[str, float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)
    sum: float = 0.0
    count: float | None = None
    steps: dict[str, float] = field(default_factory=dict)
    step_failures: dict[str, float] = field(default_factory=dict)
    last_run: float | None = None
    recent: list[float] = field(default_factory=list)  # newest first


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample of a Prometheus text exposition (prometheus_client's parser,
    one line at a time so that a bad line is named)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parsed = [s for family in text_string_to_metric_families(line + "\n") for s in family.samples]
        except (ValueError, IndexError, KeyError):
            parsed = []
        if len(parsed) != 1:
            raise ObsgenError(f"previous metrics, line {number}: not a sample of the Prometheus text format: "
                              f"{line[:80]!r}; delete the previous metrics to start the counters over")
        samples.append((parsed[0].name, dict(parsed[0].labels), float(parsed[0].value)))
    return samples


def _previous(text: str | None, model: Model, env_name: str) -> _Previous:
    prev, m = _Previous(), model.metrics
    for name, labels, value in parse_exposition(text or ""):
        if labels.get(m.env_label) != env_name or math.isnan(value):
            continue
        if name == m.runs_total and LABEL_RESULT in labels:
            prev.runs[labels[LABEL_RESULT]] = max(value, prev.runs.get(labels[LABEL_RESULT], 0.0))
        elif name == m.step_failed and c.LABEL_STEP in labels:
            prev.steps[labels[c.LABEL_STEP]] = value
        elif name == m.step_failures_total and c.LABEL_STEP in labels:
            step = labels[c.LABEL_STEP]
            prev.step_failures[step] = max(value, prev.step_failures.get(step, 0.0))
        elif name == f"{m.run_duration}_bucket" and "le" in labels:
            try:
                prev.buckets[float(labels["le"])] = value
            except ValueError:
                continue
        elif name == f"{m.run_duration}_sum":
            prev.sum = value
        elif name == f"{m.run_duration}_count":
            prev.count = value
        elif name == m.last_run_timestamp:
            prev.last_run = value if prev.last_run is None else max(prev.last_run, value)
        elif name == m.recent_runs and LABEL_RECENT in labels and value not in prev.recent:
            prev.recent.append(value)
    prev.recent.sort(reverse=True)
    return prev


def _environment(model: Model, name: str) -> Environment:
    try:
        return model.environment(name)
    except KeyError:
        known = ", ".join(e.name for e in model.environments)
        raise ObsgenError(f"unknown environment {name!r} (the spec defines: {known})") from None


# --- publishing: node-exporter textfile collector -------------------------------------------------

def read_textfile(path: str) -> str | None:
    """The textfile's current exposition, or None when there is none yet."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ObsgenError(f"{path}: cannot read the previous metrics: "
                          f"{getattr(exc, 'strerror', None) or 'not UTF-8 text'}") from None


def check_textfile(path: str) -> None:
    """A path node-exporter's textfile collector reads: *.prom."""
    if Path(path).suffix != ".prom":
        raise ObsgenError(f"{path}: node-exporter's textfile collector reads only *.prom files")


def write_textfile(path: str, reg: Any) -> None:
    """Replace the textfile atomically with the registry's metrics (prometheus_client's write_to_textfile:
    a temporary file beside it, renamed over it): the collector reads the old file or the new one, never half."""
    from prometheus_client import write_to_textfile

    check_textfile(path)
    try:
        write_to_textfile(path, reg)
        os.chmod(path, 0o644)  # node-exporter may run as another user; the file was created under our umask
    except OSError as exc:
        raise ObsgenError(f"{path}: cannot write the metrics: {exc.strerror or exc}") from None


def emit_to_textfile(model: Model, env_name: str, report: Report, path: str, now: float | None = None,
                     extra_labels: Mapping[str, str] | None = None) -> Emitted:
    """Add this run to the textfile's metrics and write them back, unless the file has counted it already."""
    check_textfile(path)
    previous = read_textfile(path)
    status, last = place(model, env_name, report, previous)
    if status != COUNTED:
        return Emitted(previous or "", status, last)
    reg = registry(model, env_name, report, previous, now, extra_labels)
    write_textfile(path, reg)
    return Emitted(_text(reg), COUNTED, last)


# --- publishing: Pushgateway ----------------------------------------------------------------------

def check_grouping(job: str, grouping: Mapping[str, str] | None = None) -> None:
    """A job and grouping labels a Pushgateway group may have (prometheus_client encodes the path)."""
    if not job:
        raise ObsgenError("the Pushgateway job name is empty")
    for name in sorted(grouping or {}):
        if not _NAME.fullmatch(name) or name.startswith("__") or name == "job":
            raise ObsgenError(f"grouping label {name!r}: not a label name a Pushgateway group may have")


def push(url: str, job: str, reg: Any, grouping: Mapping[str, str] | None = None) -> None:
    """PUT the registry's metrics as the whole group job/<job>/<grouping...> (replacing what it held)."""
    from prometheus_client import push_to_gateway

    check_grouping(job, grouping)
    handler = _handler(_pushgateway(url))
    push_to_gateway(url, job, reg, grouping_key={k: str(v) for k, v in (grouping or {}).items()},
                    timeout=TIMEOUT, handler=handler)


def delete_group(url: str, job: str, grouping: Mapping[str, str] | None = None) -> None:
    """DELETE the group (Prometheus drops its series at the next scrape); deleting none is not an error."""
    from prometheus_client import delete_from_gateway

    check_grouping(job, grouping)
    handler = _handler(_pushgateway(url))
    delete_from_gateway(url, job, grouping_key={k: str(v) for k, v in (grouping or {}).items()},
                        timeout=TIMEOUT, handler=handler)


def fetch_group(url: str, job: str, grouping: Mapping[str, str] | None = None) -> str | None:
    """The group's current metrics as a text exposition (from GET /api/v1/metrics), None if no such group."""
    response = _pushgateway(url).request("GET", "/api/v1/metrics")
    try:
        groups = response.json()["data"]
    except (ValueError, KeyError, TypeError):
        raise BackendError(f"Pushgateway at {url}: GET /api/v1/metrics did not answer the JSON of "
                           f"Pushgateway 1.x") from None
    want = {k: str(v) for k, v in {"job": job, **(grouping or {})}.items() if str(v) != ""}
    for group in groups:
        labels = group.get("labels") if isinstance(group, dict) else None
        if isinstance(labels, dict) and {k: v for k, v in labels.items() if v != ""} == want:
            return _group_text(group)
    return None


def emit_to_pushgateway(model: Model, env_name: str, report: Report, url: str, job: str | None = None,
                        grouping: Mapping[str, str] | None = None, now: float | None = None,
                        extra_labels: Mapping[str, str] | None = None, accumulate: bool = True) -> Emitted:
    """Push this run to the group job=<job, default the service name>, <env_label>=<env>, plus `grouping`,
    on top of what the group holds, unless the group has counted this run already or a newer one (`place`:
    then nothing is pushed). A fire drill passes grouping=DRILL_GROUPING and accumulate=False: its counters
    then never increase (rate() sees no run, no error budget burns, the per-step failure counter stays 0),
    and `delete_group` removes it afterwards."""
    env_label = model.metrics.env_label
    key = {env_label: env_name, **(grouping or {})}
    if key[env_label] != env_name:
        raise ObsgenError(f"grouping label {env_label}={key[env_label]!r} contradicts the environment "
                          f"{env_name!r}: the Pushgateway would relabel every series")
    job = job or model.service.name
    check_grouping(job, key)
    previous = fetch_group(url, job, key) if accumulate else None
    status, last = place(model, env_name, report, previous) if accumulate else (COUNTED, None)
    if status != COUNTED:
        return Emitted(previous or "", status, last)
    reg = registry(model, env_name, report, previous, now, extra_labels, count_step_failures=accumulate)
    push(url, job, reg, key)
    return Emitted(_text(reg), COUNTED, last)


def _pushgateway(url: str) -> Http:
    return Http("Pushgateway", url)


def _handler(client: Http) -> Callable[..., Callable[[], None]]:
    """A prometheus_client push handler that sends through obsgen's HTTP client: its timeout, no redirects,
    and one-line errors naming the Pushgateway, the call and its answer."""

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                data: bytes) -> Callable[[], None]:
        if not url.startswith(client.base_url):
            raise BackendError(f"Pushgateway: prometheus_client built {url!r}, outside {client.base_url}")
        path = url[len(client.base_url):]

        def send() -> None:
            client.request(method, path, ok=(200, 202), data=data or None, headers=dict(headers))
        return send
    return handler


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    pairs = (f'{k}="{v.translate(_ESCAPES)}"' for k, v in sorted(labels.items()))
    return "{" + ",".join(pairs) + "}"


def _group_text(group: dict[str, Any]) -> str:
    """A group of Pushgateway's JSON API as text, for `_previous` (prometheus_client reads no Pushgateway)."""
    lines = []
    for name in sorted(group):
        family = group[name]
        if name in ("push_time_seconds", "push_failure_time_seconds") or not isinstance(family, dict) \
                or "type" not in family:
            continue
        lines.append(f"# TYPE {name} {str(family.get('type', 'untyped')).lower()}")
        for metric in family.get("metrics", []):
            labels = metric.get("labels", {})
            if "buckets" in metric:
                lines += [f"{name}_bucket{_labels({**labels, 'le': le})} {v}" for le, v in metric["buckets"].items()]
                lines += [f"{name}_{part}{_labels(labels)} {metric[part]}" for part in ("sum", "count")]
            elif "value" in metric:
                lines.append(f"{name}{_labels(labels)} {metric['value']}")
    return "\n".join(lines) + "\n"
