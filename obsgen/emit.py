"""The selftest report bridge: a `--json-v2` run report in, the metrics the spec names out.

    report = load_report("selftest-report.json", model)
    text = emit_to_pushgateway(model, "dev", report, "http://pushgateway:9091")   # or emit_to_textfile

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
- `last_run_timestamp` gauge: the report's time, else `now`.

A run fails when it breaks the environment's policy (`queries.run_limits`, which the dashboard's Status
reads too), the bar the generated step alerts use and what the
selftest's exit status means per environment in the seeds: a failing step of a critical tier (KERNEL), more
failing steps of a warning tier (GOVERNANCE) than the environment tolerates, or a failing step of an
informational tier (OPTIONAL) where the environment pages on any failure (prod). The pass-rate SLO then
burns on exactly the runs that block. Counters and the histogram are cumulative: each exposition adds one
run to the previous one for the same target (two emitters racing on one target can lose a run).
"""
from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from obsgen import conventions as c
from obsgen import queries as q
from obsgen.errors import ObsgenError
from obsgen.files import atomic_write
from obsgen.http import BackendError, Http
from obsgen.model import Environment, Model

STATUSES = ("PASS", "FAIL", "SKIP", "TIMEOUT")
FAILED = ("FAIL", "TIMEOUT")
RUNNER_TIERS = ("kernel", "governance", "optional")  # the runner's own vocabulary, used without a spec
RUNNER_SEVERITY = {"kernel": "critical", "governance": "warning", "optional": "info"}
LABEL_RESULT = "result"
DRILL_GROUPING = {q.DRILL_LABEL: "true"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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
    timestamp: float | None = None  # unix seconds: metadata.timestamp, else the last step's end
    mode: str = ""  # strict | degraded | kernel-only, as the runner reports it

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.steps if s.failed)

    @property
    def passed(self) -> bool:
        """No step failed: the runner's own verdict in strict mode (exit status 0)."""
        return not self.failing


# --- reading a report -----------------------------------------------------------------------------

def load_report(path: str, model: Model | None = None) -> Report:
    """Read and validate a `--json-v2` report file; with a model, also against the spec's steps."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ReportError(path, [f"cannot read the report: {exc.strerror}"]) from None
    if not raw.strip():
        raise ReportError(path, ["empty file; expected the JSON report of `selftest --json-v2`"])
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ReportError(path, [f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"]) from None
    except ValueError:
        raise ReportError(path, ["not UTF-8 text; expected the JSON report of `selftest --json-v2`"]) from None
    return parse_report(data, path, model)


def parse_report(data: object, source: str, model: Model | None = None) -> Report:
    """Validate a decoded report and return it; every problem at once as a ReportError.

    The shape is the runner's `--json-v2` report: `results[]` with `step_id`, `tier`, `status` (PASS,
    FAIL, SKIP, TIMEOUT) and `duration_ms`, optional `metadata.timestamp` (ISO 8601 with an offset) and
    `metadata.mode`, and an optional `summary` whose counts (`passed`, `failed`, `skipped`, `total`,
    `by_severity.<severity>.failed`), when present, must agree with the results: the seeds' CI gates read
    the summary, the metrics come from the results, and the two must tell the same story.
    """
    if not isinstance(data, dict):
        raise ReportError(source, [f"expected a JSON object (the `selftest --json-v2` report), got {_kind(data)}"])
    problems: list[str] = []
    version = data.get("version")
    if version is not None and not (isinstance(version, str) and version.split(".")[0] == "2"):
        problems.append(f'version: expected "2.0" (the `selftest --json-v2` report), got {_kind(version)}')
    rows = _results(data.get("results"), model, problems)
    meta = _object(data, "metadata", problems)
    summary = _object(data, "summary", problems)
    timestamp = _timestamp(meta, [end for _, _, end in rows], problems)
    mode = "" if meta.get("mode") is None else meta["mode"]
    if not isinstance(mode, str):
        problems.append(f"metadata.mode: expected string, got {_kind(mode)}")
    total_ms = _number(summary, "summary", "total_duration_ms", problems) if summary else None
    if summary and not problems:
        _check_summary(summary, rows, problems)
    if problems:
        raise ReportError(source, problems)
    steps = tuple(step for step, _, _ in rows)
    duration = total_ms / 1000 if total_ms is not None else sum(s.duration_seconds for s in steps)
    return Report(source, steps, duration, timestamp, mode)


def check_report(model: Model, report: Report) -> None:
    """Raise a ReportError if the report names a step the spec does not have, or gives it another tier."""
    problems = [p for i, s in enumerate(report.steps) if (p := _spec_problem(model, f"results[{i}]", s))]
    if problems:
        raise ReportError(report.source, problems)


def _results(results: Any, model: Model | None, problems: list[str]) -> list[tuple[StepResult, str, float]]:
    """(step, severity, end time) per well-formed entry of `results`; problems for the others."""
    if results is None:
        problems.append("results: missing; emit needs the per-step results of the full `selftest --json-v2` "
                        "report, not only its summary")
        return []
    if not isinstance(results, list) or not results:
        problems.append(f"results: expected a non-empty array of steps, got {_kind(results)}")
        return []
    tiers = tuple(t.id for t in model.tiers) if model else RUNNER_TIERS
    seen: dict[str, int] = {}
    rows = []
    for i, item in enumerate(results):
        at = f"results[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{at}: expected object, got {_kind(item)}")
            continue
        before = len(problems)
        step_id, tier, status = item.get("step_id"), item.get("tier"), item.get("status")
        if not isinstance(step_id, str) or not step_id:
            problems.append(f"{at}.step_id: expected a non-empty string, got {_kind(step_id)}")
        elif step_id in seen:
            problems.append(f"{at}.step_id: duplicate step {step_id} (also results[{seen[step_id]}])")
        else:
            seen[step_id] = i
        if tier not in tiers:
            problems.append(f"{at}.tier: expected one of {', '.join(tiers)}, got {_kind(tier)}")
        if status not in STATUSES:
            problems.append(f"{at}.status: expected one of {', '.join(STATUSES)}, got {_kind(status)}")
        duration = _number(item, at, "duration_ms", problems, required=True)
        end = _number(item, at, "timestamp_end", problems) or 0.0
        severity = item.get("severity", model.tier(tier).severity if model and tier in tiers
                            else RUNNER_SEVERITY.get(str(tier), ""))
        if len(problems) > before:
            continue
        step = StepResult(step_id, tier, status, (duration or 0.0) / 1000)
        if model and (problem := _spec_problem(model, at, step)):
            problems.append(problem)
            continue
        rows.append((step, severity, end))
    return rows


def _spec_problem(model: Model, at: str, step: StepResult) -> str | None:
    known = {s.id: s for s in model.steps}
    if step.id not in known:
        return f"{at}.step_id: unknown step {step.id}; the spec has no such step"
    if known[step.id].tier != step.tier:
        return f"{at}.tier: step {step.id} is {known[step.id].tier} in the spec, not {step.tier}"
    return None


def _check_summary(summary: dict[str, Any], rows: list[tuple[StepResult, str, float]], problems: list[str]) -> None:
    steps = [s for s, _, _ in rows]
    counts = {"passed": (sum(s.status == "PASS" for s in steps), "passed "),
              "failed": (sum(s.failed for s in steps), "failed "),
              "skipped": (sum(s.status == "SKIP" for s in steps), "skipped "),
              "total": (len(steps), "")}
    for key, (n, what) in counts.items():
        _agree(summary.get(key), n, f"summary.{key}", f"{what}step", problems)
    by_severity = summary.get("by_severity")
    if by_severity is None:
        return
    if not isinstance(by_severity, dict):
        problems.append(f"summary.by_severity: expected object, got {_kind(by_severity)}")
        return
    for severity, entry in by_severity.items():
        at = f"summary.by_severity.{severity}"
        if not isinstance(entry, dict):
            problems.append(f"{at}: expected object, got {_kind(entry)}")
            continue
        n = sum(1 for s, sev, _ in rows if sev == severity and s.failed)
        _agree(entry.get("failed"), n, f"{at}.failed", f"failed {severity} step", problems)


def _agree(value: Any, n: int, at: str, what: str, problems: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        problems.append(f"{at}: expected a whole number, got {_kind(value)}")
    elif value != n:
        problems.append(f"{at}: {value}, but results has {n} {what}{'' if n == 1 else 's'}")


def _object(data: dict[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: expected object, got {_kind(value)}")
        return {}
    return value


def _number(item: dict[str, Any], at: str, key: str, problems: list[str], required: bool = False) -> float | None:
    value = item.get(key)
    if value is None:
        if required:
            problems.append(f"{at}.{key}: missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        problems.append(f"{at}.{key}: expected a number >= 0, got {_kind(value)}")
        return None
    return float(value)


def _timestamp(meta: dict[str, Any], ends: list[float], problems: list[str]) -> float | None:
    text = meta.get("timestamp")
    if text is None:
        return max(ends) if ends and max(ends) > 0 else None
    try:
        when = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        problems.append(f"metadata.timestamp: expected an ISO 8601 time with a UTC offset "
                        f"(e.g. 2025-11-30T15:30:00+00:00), got {_kind(text)}")
        return None
    return when.timestamp()


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    name = names.get(type(value), "number")
    if isinstance(value, (dict, list)):
        return f"{name} ({len(value)} {'keys' if isinstance(value, dict) else 'items'})"
    shown = json.dumps(value)
    return f"{name} {shown if len(shown) <= 40 else shown[:37] + '...'}"


# --- the run's verdict, synthetic runs ------------------------------------------------------------

def run_result(model: Model, env_name: str, report: Report) -> str:
    """"fail" when the run breaks the environment's policy (see the module docstring), else "pass"."""
    env = _environment(model, env_name)
    for tier, tolerated in q.run_limits(model, env):
        if sum(1 for s in report.steps if s.tier == tier and s.failed) > tolerated:
            return "fail"
    return "pass"


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

def exposition(model: Model, env_name: str, report: Report, previous: str | None = None,
               now: float | None = None, extra_labels: Mapping[str, str] | None = None,
               count_step_failures: bool = True) -> str:
    """The metrics of this run in the Prometheus text format, cumulative over `previous` (the last
    exposition for the same target, or None to start over). Sorted and deterministic. A fire drill
    passes count_step_failures=False: its failing steps are not counted as failed runs."""
    env = _environment(model, env_name)
    check_report(model, report)
    m = model.metrics
    base = {m.env_label: env.name, **_extra_labels(model, extra_labels or {})}
    prev = _previous(previous, model, env.name)
    ran = {s.id: s for s in report.steps}
    steps = []
    for step in model.steps:
        value = (1.0 if ran[step.id].failed else 0.0) if step.id in ran else prev.steps.get(step.id)
        if value is not None:
            steps.append((m.step_failed, {**base, c.LABEL_STEP: step.id, c.LABEL_TIER: step.tier}, value))
    failures = [
        (m.step_failures_total, {**base, c.LABEL_STEP: step.id, c.LABEL_TIER: step.tier},
         prev.step_failures.get(step.id, 0.0)
         + (1.0 if count_step_failures and step.id in ran and ran[step.id].failed else 0.0))
        for step in model.steps
    ]
    runs = {"fail": prev.runs.get("fail", 0.0), "pass": prev.runs.get("pass", 0.0)}
    runs[run_result(model, env.name, report)] += 1
    stamp = report.timestamp if report.timestamp is not None else time.time() if now is None else now
    families = [
        (m.step_failed, "gauge", "1 if the selftest step failed in the last run that ran it, else 0.",
         sorted(steps, key=lambda s: sorted(s[1].items()))),
        (m.step_failures_total, "counter", "Selftest runs in which the step failed (FAIL or TIMEOUT).",
         sorted(failures, key=lambda s: sorted(s[1].items()))),
        (m.runs_total, "counter", "Selftest runs by result under the environment's policy (pass or fail).",
         [(m.runs_total, {**base, LABEL_RESULT: r}, runs[r]) for r in sorted(runs)]),
        (m.run_duration, "histogram", "Duration of whole selftest runs in seconds.",
         _histogram(m.run_duration, m.duration_buckets, base, prev, report.duration_seconds)),
        (m.last_run_timestamp, "gauge", "Unix time of the last selftest run.",
         [(m.last_run_timestamp, base, stamp)]),
    ]
    lines = []
    for name, kind, help_text, samples in sorted(families, key=lambda f: f[0]):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f"{n}{_labels(labels)} {_value(v)}" for n, labels, v in samples]
    return "\n".join(lines) + "\n"


def _histogram(name: str, buckets: tuple[float, ...], base: dict[str, str], prev: _Previous,
               observed: float) -> list[tuple[str, dict[str, str], float]]:
    bounds = sorted(set(buckets)) + [math.inf]
    counts = [prev.buckets.get(b, 0.0) for b in bounds]
    consistent = (set(prev.buckets) == set(bounds) and prev.count == counts[-1]
                  and all(a <= b for a, b in zip(counts, counts[1:])))
    total, count = (prev.sum, prev.count or 0.0) if consistent else (0.0, 0.0)
    counts = [(n if consistent else 0.0) + (observed <= b) for n, b in zip(counts, bounds)]
    samples = [(f"{name}_bucket", {**base, "le": "+Inf" if b == math.inf else c.fmt_number(b)}, n)
               for b, n in zip(bounds, counts)]
    return samples + [(f"{name}_sum", base, total + observed), (f"{name}_count", base, count + 1)]


def _extra_labels(model: Model, extra: Mapping[str, str]) -> dict[str, str]:
    reserved = {model.metrics.env_label, c.LABEL_STEP, c.LABEL_TIER, LABEL_RESULT, "le"}
    for name, value in extra.items():
        if not _NAME.fullmatch(name) or name.startswith("__") or name in reserved:
            raise ObsgenError(f"extra label {name!r}: not a label name obsgen may add (reserved: "
                              f"{', '.join(sorted(reserved))}; names match [a-zA-Z_][a-zA-Z0-9_]*)")
        if not isinstance(value, str):
            raise ObsgenError(f"extra label {name!r}: the value must be a string")
    return dict(extra)


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    pairs = (f'{k}="{v.translate(_ESCAPES)}"' for k, v in sorted(labels.items()))
    return "{" + ",".join(pairs) + "}"


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if v == int(v) and abs(v) < 1e15 else repr(float(v))


# --- reading a previous exposition ----------------------------------------------------------------

@dataclass
class _Previous:
    runs: dict[str, float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)
    sum: float = 0.0
    count: float | None = None
    steps: dict[str, float] = field(default_factory=dict)
    step_failures: dict[str, float] = field(default_factory=dict)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?[ \t]*$")
_PAIR = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(?:,|$)')
_UNESCAPE = re.compile(r"\\(.)")


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample of a Prometheus text exposition."""
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        sample = _sample(line)
        if sample is None:
            raise ObsgenError(f"previous metrics, line {number}: not a sample of the Prometheus text format: "
                              f"{line[:80]!r}; delete the previous metrics to start the counters over")
        samples.append(sample)
    return samples


def _sample(line: str) -> tuple[str, dict[str, str], float] | None:
    match = _SAMPLE.match(line)
    labels = _parse_labels(match.group(2) or "") if match else None
    try:
        return (match.group(1), labels, float(match.group(3))) if match and labels is not None else None
    except ValueError:
        return None


def _parse_labels(text: str) -> dict[str, str] | None:
    labels, pos = {}, 0
    while pos < len(text.rstrip()):
        pair = _PAIR.match(text, pos)
        if not pair:
            return None
        value = _UNESCAPE.sub(lambda e: "\n" if e.group(1) == "n" else e.group(1), pair.group(2))
        labels[pair.group(1)] = value
        pos = pair.end()
    return labels


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


def write_textfile(path: str, text: str) -> None:
    """Replace the textfile atomically: the collector reads the old file or the new one, never half."""
    target = Path(path)
    if target.suffix != ".prom":
        raise ObsgenError(f"{path}: node-exporter's textfile collector reads only *.prom files")
    try:
        atomic_write(target, text.encode("utf-8"))
    except OSError as exc:
        raise ObsgenError(f"{path}: cannot write the metrics: {exc.strerror}") from None


def emit_to_textfile(model: Model, env_name: str, report: Report, path: str, now: float | None = None,
                     extra_labels: Mapping[str, str] | None = None) -> str:
    """Add this run to the textfile's metrics and write them back; returns the new exposition."""
    text = exposition(model, env_name, report, read_textfile(path), now, extra_labels)
    write_textfile(path, text)
    return text


# --- publishing: Pushgateway ----------------------------------------------------------------------

def group_path(job: str, grouping: Mapping[str, str] | None = None) -> str:
    """/metrics/job/<job>/<label>/<value>... (sorted); a value with '/' or an empty one as `<label>@base64/`."""
    import base64
    from urllib.parse import quote

    if not job:
        raise ObsgenError("the Pushgateway job name is empty")
    parts = [("job", job)]
    for name in sorted(grouping or {}):
        if not _NAME.fullmatch(name) or name.startswith("__") or name == "job":
            raise ObsgenError(f"grouping label {name!r}: not a label name a Pushgateway group may have")
        parts.append((name, str((grouping or {})[name])))
    path = ""
    for name, value in parts:
        if value == "" or "/" in value:
            path += f"/{name}@base64/{base64.urlsafe_b64encode(value.encode()).decode() or '='}"
        else:
            path += f"/{name}/{quote(value, safe='')}"
    return "/metrics" + path


def push(url: str, job: str, text: str, grouping: Mapping[str, str] | None = None) -> None:
    """PUT the exposition as the whole group job/<job>/<grouping...> (replacing what it held)."""
    _pushgateway(url).request("PUT", group_path(job, grouping), ok=(200, 202), data=text.encode("utf-8"),
                              headers={"Content-Type": CONTENT_TYPE})


def delete_group(url: str, job: str, grouping: Mapping[str, str] | None = None) -> None:
    """DELETE the group (Prometheus drops its series at the next scrape); deleting none is not an error."""
    _pushgateway(url).request("DELETE", group_path(job, grouping), ok=(200, 202))


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
                        extra_labels: Mapping[str, str] | None = None, accumulate: bool = True) -> str:
    """Push this run to the group job=<job, default the service name>, <env_label>=<env>, plus `grouping`,
    on top of what the group holds; returns the exposition pushed. A fire drill passes
    grouping=DRILL_GROUPING and accumulate=False: its counters then never increase (rate() sees no run,
    no error budget burns, the per-step failure counter stays 0), and `delete_group` removes it afterwards."""
    env_label = model.metrics.env_label
    key = {env_label: env_name, **(grouping or {})}
    if key[env_label] != env_name:
        raise ObsgenError(f"grouping label {env_label}={key[env_label]!r} contradicts the environment "
                          f"{env_name!r}: the Pushgateway would relabel every series")
    job = job or model.service.name
    previous = fetch_group(url, job, key) if accumulate else None
    text = exposition(model, env_name, report, previous, now, extra_labels, count_step_failures=accumulate)
    push(url, job, text, key)
    return text


def _pushgateway(url: str) -> Http:
    return Http("Pushgateway", url)


def _group_text(group: dict[str, Any]) -> str:
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
