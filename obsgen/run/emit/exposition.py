"""The exposition of a run: the spec's metrics, cumulative over what the target held, and where a run
stands at the target (`place`: counted now, a replay of a recent run, or older than the newest counted).
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from obsgen.compile import conventions as c
from obsgen.run.emit.report import (LABEL_OUTCOME, LABEL_RESULT, Report, _environment, check_report, run_outcome,
                                run_result)
from obsgen.errors import ObsgenError
from obsgen.model import Model

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # a label name obsgen may add or group by
COUNTED, REPLAYED, OLDER = "counted", "replayed", "older"
RECENT_RUNS = 16  # run times a target remembers, so that a replay of any of them is not counted again
LABEL_RECENT = "recent"
LABEL_RUN = c.LABEL_RUN  # the per-run series' identity: the run's time (`run_id`)
run_id = c.run_id


@dataclass(frozen=True)
class Emitted:
    """What an emit did: the metrics now at the target, and whether this run was counted now (`place`)."""

    text: str  # the exposition the target holds after the emit
    status: str = COUNTED  # COUNTED; REPLAYED or OLDER: nothing was written
    last_run: float | None = None  # the newest run the target had counted before this emit

    @property
    def counted(self) -> bool:
        return self.status == COUNTED


# --- the exposition -------------------------------------------------------------------------------

def registry(model: Model, env_name: str, report: Report, previous: str | None = None,
             now: float | None = None, extra_labels: Mapping[str, str] | None = None,
             count_step_failures: bool = True, runs: bool = True) -> Any:
    """The metrics of this run as a prometheus_client CollectorRegistry, over `previous` (the last exposition
    for the same target, or None to start over). Sorted and deterministic. A fire drill passes
    count_step_failures=False: its failing steps are not counted as failed runs. With `runs` the per-run
    series (`run_samples`) of this run and of the last RECENT_RUNS runs of `previous` are included (a
    textfile, a drill's group); without, the target holds only the environment's series (a Pushgateway
    keeps each run in a group of its own: `run_registry`)."""
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
    when = run_when(report, now)
    stamp = max(when, prev.last_run) if prev.last_run is not None else when  # never back in time
    last_failed, last_passed = dict(prev.step_last_failure), dict(prev.step_last_pass)
    for step in report.steps:  # a skipped step neither failed nor passed
        seen = last_failed if step.failed else last_passed if step.status == "PASS" else None
        if seen is not None:
            seen[step.id] = max(when, seen.get(step.id, when))
    recent = prev.recent if report.timestamp is None else \
        [report.timestamp, *(t for t in prev.recent if t != report.timestamp)][:RECENT_RUNS]
    families = [
        _family(m.step_failed, "gauge", "1 if the selftest step failed in the last run that ran it, else 0.", steps),
        _family(m.step_failures_total, "counter", "Selftest runs in which the step failed (FAIL or TIMEOUT).",
                failures),
        _family(m.last_run_timestamp, "gauge", "Unix time of the last selftest run.", [(base, stamp)]),
        _family(m.step_last_failure, "gauge", "Unix time of the last run in which the step failed (no series "
                "before it first fails).", [(step_labels[s.id], last_failed[s.id]) for s in model.steps
                                             if s.id in last_failed]),
        _family(m.step_last_pass, "gauge", "Unix time of the last run in which the step passed (0: never).",
                [(step_labels[s.id], last_passed.get(s.id, 0.0)) for s in model.steps]),
        _family(m.recent_runs, "gauge", "Unix times of the last selftest runs counted here, newest first "
                "(recent=\"1\"): a report of one of them is not counted again.",
                [({**base, LABEL_RECENT: str(i)}, t) for i, t in enumerate(recent, 1)]),
    ]
    names = [m.step_failed, m.step_failures_total, m.last_run_timestamp, m.step_last_failure, m.step_last_pass,
             m.recent_runs]
    if runs:
        kept = _kept_runs([*prev.runs, run_samples(model, env.name, report, when, base)])
        families += _run_families(model, kept)
        names += [m.run_duration, m.run_timestamp]
    return _registry([family for _, family in sorted(zip(names, families), key=lambda nf: nf[0])])


def run_registry(model: Model, env_name: str, report: Report, now: float | None = None,
                 extra_labels: Mapping[str, str] | None = None) -> Any:
    """This run's own series alone, for a Pushgateway group of its own that no other emit ever rewrites: the
    run (`run_samples`), and the run's time as the last failure of each step it failed (labelled by the run).
    The step alerts read the newest failure over a lookback, so a concurrent emit rewriting the environment's
    group, a restart or a restored file cannot hide one. (A lost pass only keeps an alert firing until the
    next one: passes stay in the environment's group, so a run costs two series plus one per failed step.)"""
    env = _environment(model, env_name)
    check_report(model, report)
    m = model.metrics
    base = {m.env_label: env.name, **_extra_labels(model, extra_labels or {})}
    when = run_when(report, now)
    run = {**base, LABEL_RUN: run_id(when)}
    failed = [({**run, c.LABEL_STEP: s.id, c.LABEL_TIER: s.tier}, when) for s in report.steps if s.failed]
    families = _run_families(model, [run_samples(model, env.name, report, when, base)])
    if failed:
        families.append(_family(m.step_last_failure, "gauge", "Unix time of this run, for each step it failed.",
                                failed))
    return _registry(families)


def run_when(report: Report, now: float | None = None) -> float:
    """The time a run is known by: its report's, else `now` (the wall clock when not given)."""
    return report.timestamp if report.timestamp is not None else time.time() if now is None else now


@dataclass(frozen=True)
class RunSample:
    """One run as its series say it: labels {env, run, result, outcome, extra labels}, time and duration."""

    labels: tuple[tuple[str, str], ...]
    when: float
    duration: float


def run_samples(model: Model, env_name: str, report: Report, when: float, base: Mapping[str, str]) -> RunSample:
    """This run as one series per metric, labelled by the run itself (`run`=its time), its result under the
    environment's policy and its outcome (pass, ticket, page). A run is counted by Prometheus once per
    distinct series, so a replay, a restarted or restored Pushgateway and concurrent emits can neither
    lose a run nor count one twice."""
    labels = {**base, LABEL_RUN: run_id(when), LABEL_RESULT: run_result(model, env_name, report),
              LABEL_OUTCOME: run_outcome(model, env_name, report)}
    return RunSample(tuple(sorted(labels.items())), when, float(report.duration_seconds))


def _kept_runs(runs: list[RunSample]) -> list[RunSample]:
    """The newest RECENT_RUNS runs, one per run label, newest first."""
    by_run: dict[str, RunSample] = {}
    for run in runs:
        by_run[dict(run.labels)[LABEL_RUN]] = run
    return sorted(by_run.values(), key=lambda r: -r.when)[:RECENT_RUNS]


def _run_families(model: Model, runs: list[RunSample]) -> list[Any]:
    m = model.metrics
    return [
        _family(m.run_duration, "gauge", "Duration of the selftest run in seconds, one series per run.",
                [(dict(r.labels), r.duration) for r in runs]),
        _family(m.run_timestamp, "gauge", "Unix time of the selftest run, one series per run (run=its time), "
                "labelled by its result and outcome in the environment.", [(dict(r.labels), r.when) for r in runs]),
    ]


def _registry(families: list[Any]) -> Any:
    from prometheus_client import CollectorRegistry

    result = CollectorRegistry(auto_describe=False)
    result.register(_Collected(families))
    return result


def exposition(model: Model, env_name: str, report: Report, previous: str | None = None,
               now: float | None = None, extra_labels: Mapping[str, str] | None = None,
               count_step_failures: bool = True, runs: bool = True) -> str:
    """`registry` in the Prometheus text format (prometheus_client's)."""
    return _text(registry(model, env_name, report, previous, now, extra_labels, count_step_failures, runs))


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


def _extra_labels(model: Model, extra: Mapping[str, str]) -> dict[str, str]:
    reserved = {model.metrics.env_label, c.LABEL_STEP, c.LABEL_TIER, LABEL_RESULT, LABEL_OUTCOME, LABEL_RUN,
                LABEL_RECENT, c.DRILL_LABEL, "le"}
    for name, value in extra.items():
        if not LABEL_NAME.fullmatch(name) or name.startswith("__") or name in reserved:
            raise ObsgenError(f"extra label {name!r}: not a label name obsgen may add (reserved: "
                              f"{', '.join(sorted(reserved))}; names match [a-zA-Z_][a-zA-Z0-9_]*)")
        if not isinstance(value, str):
            raise ObsgenError(f"extra label {name!r}: the value must be a string")
    return dict(extra)


# --- reading a previous exposition ----------------------------------------------------------------

@dataclass
class _Previous:
    runs: list[RunSample] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)
    step_failures: dict[str, float] = field(default_factory=dict)
    last_run: float | None = None
    recent: list[float] = field(default_factory=list)  # newest first
    step_last_failure: dict[str, float] = field(default_factory=dict)
    step_last_pass: dict[str, float] = field(default_factory=dict)


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
    durations: dict[tuple[tuple[str, str], ...], float] = {}
    for name, labels, value in parse_exposition(text or ""):
        if labels.get(m.env_label) != env_name or math.isnan(value):
            continue
        if name == m.run_timestamp and LABEL_RUN in labels:
            prev.runs.append(RunSample(tuple(sorted(labels.items())), value, 0.0))
        elif name == m.run_duration and LABEL_RUN in labels:
            durations[tuple(sorted(labels.items()))] = value
        elif name == m.step_failed and c.LABEL_STEP in labels:
            prev.steps[labels[c.LABEL_STEP]] = value
        elif name == m.step_failures_total and c.LABEL_STEP in labels:
            step = labels[c.LABEL_STEP]
            prev.step_failures[step] = max(value, prev.step_failures.get(step, 0.0))
        elif name == m.last_run_timestamp:
            prev.last_run = value if prev.last_run is None else max(prev.last_run, value)
        elif name == m.recent_runs and LABEL_RECENT in labels and value not in prev.recent:
            prev.recent.append(value)
        elif name in (m.step_last_failure, m.step_last_pass) and c.LABEL_STEP in labels:
            seen = prev.step_last_failure if name == m.step_last_failure else prev.step_last_pass
            seen[labels[c.LABEL_STEP]] = max(value, seen.get(labels[c.LABEL_STEP], value))
    prev.recent.sort(reverse=True)
    prev.runs = [RunSample(r.labels, r.when, durations.get(r.labels, 0.0)) for r in prev.runs]
    return prev
