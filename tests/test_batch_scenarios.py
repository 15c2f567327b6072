"""Batch-job scenarios end to end: `obsgen emit` into a simulated Pushgateway, scraped every 30 s, fed to the
real promtool with the committed rules of generated/<env>/prometheus/, and the alerts that fire asserted.

The simulator (`Pushgateway`, `Sim`) does what `obsgen.run.emit.publish.emit_to_pushgateway` does, with
simulated time instead of the wall clock and a dict of groups instead of HTTP:

- `emit(report, at)`: read the groups, `place()` the run against the environment group (job, env), push the
  run's own group (job, env, run=<run time>, `run_registry`), rewrite the environment group (`registry(...,
  runs=False)` over its previous text), and delete this environment's run groups pushed more than
  RUN_GROUP_KEEP before `at` (other than the run just pushed; from the groups read at the start).
- `restart()`: a Pushgateway without persistence comes back empty.
- `snapshot()` / `restore()`: a crash that brings back an older persistence file.
- `emit_concurrently(reports, at)`: every emit reads the groups before any writes; the writes then land
  in order, so the last environment-group write wins while every run group survives.

A scrape every 30 s (from t=0) turns the groups into samples as Prometheus stores them with honor_labels:
each series' own labels, the grouping labels it lacks, and job. A series that was scraped and is gone at
the next scrape gets a staleness marker there, as Prometheus writes one. Pushgateway's push_time_seconds
and push_failure_time_seconds are left out: no rule reads them; emit's previous text is the text pushed
(the real emit rebuilds it from GET /api/v1/metrics: the same samples). promtool starts at Unix time 0,
so a simulated time is seconds since the start of the test. To keep promtool fast an unchanged series is
written to it only every THIN scrapes (see THIN: the rules cannot tell).

promtool evaluates every rule group at the 1m evaluation interval (including the SLO period group, which
Prometheus evaluates every 5m; the assertions below hold for both). Alerts are asserted through the
ALERTS series the rule evaluation writes (`promql_expr_test`), so no annotation has to be predicted; a
firing alert's class (page / ticket / notice) is inferred from its labels by `route_class`, and
`test_route_class_agrees_with_amtool` proves the inference with `amtool config routes test` on the
committed Alertmanager configs.

Every expectation is worked out by hand in the scenario's docstring from the spec's policy (cadence,
tolerances, stale_after = 2 cadence intervals + 10m, the alerts' `for`), using these timing rules:
a sample pushed at `at` is scraped at the next multiple of 30 s; the rules are evaluated at every whole
minute and see the samples scraped up to then; an alert is pending at the first evaluation its expression
holds and firing `for` later (at once with for 0m); it resolves at the first evaluation it does not hold.
Emits come 2 s after a run finishes (its report time); no event (emit, restart, restore) falls on a scrape.

The last two scenarios were defects of the first per-run design (the step alerts read the step times of the
environment group, which a concurrent emit rewrites and a restart loses); each run's own group now carries
the failure times of the steps it failed, and the step alerts read the step times over a lookback.
"""
from __future__ import annotations

import copy
import dataclasses
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_tool

from obsgen.model import durations
from obsgen.compile.prometheus import compile_prometheus
from obsgen.run.emit.exposition import COUNTED, LABEL_RUN, _text, parse_exposition, place, registry, run_id, run_registry
from obsgen.run.emit.publish import RUN_GROUP_KEEP
from obsgen.run.emit.report import Report, parse_report
from obsgen.model import Cadence, Model
from obsgen.spec import load_spec

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None or AMTOOL is None,
                                reason="promtool and amtool are not installed (Debian packages prometheus and "
                                       "prometheus-alertmanager; `make test` installs them)")

MODEL = load_spec(str(ROOT / "specs" / "selftest.yaml"))
JOB = MODEL.service.name  # emit's default Pushgateway job
SCRAPE = 30  # seconds between scrapes of the Pushgateway
EMIT_DELAY = 2  # seconds from a run's end (its report time) to its emit
KERNEL = "SelftestKernelStepFailed"
GOVERNANCE = "SelftestGovernanceFailuresAboveTolerance"
NO_PASS = "SelftestNoPassingRun"
NOT_REPORTING = "SelftestNotReporting"
NO_DATA = "SelftestNotReportingNoData"
SLO_TICKET = "SLOBurnRateTicket"
SLO_PAGE = "SLOBurnRatePage"
CORE = MODEL.steps_of("kernel")[0].id  # core-checks
GOV = [s.id for s in MODEL.steps_of("governance")]  # skills-governance, agents-governance, bdd, ac-status, ...


def t(text: str) -> int:
    """Simulated seconds from a duration: t("1h33m4s") == 5584."""
    return int(durations.seconds(text))


# --- reports --------------------------------------------------------------------------------------

def report(finish: int, *, fail: Iterable[str] = (), status: str = "FAIL", only: Sequence[str] | None = None,
           duration: float = 14.0, model: Model = MODEL) -> Report:
    """A `selftest --json-v2` report of a run that ended at `finish` (metadata.timestamp), parsed and checked
    by obsgen: the steps in `fail` have `status` (FAIL or TIMEOUT), the others PASS; `only` limits the run
    to those steps (a partial run). The run's duration is spread over its steps."""
    failing = set(fail)
    steps = [s for s in model.steps if only is None or s.id in only]
    assert failing <= {s.id for s in steps}
    data = {
        "version": "2.0",
        "metadata": {"timestamp": datetime.fromtimestamp(finish, UTC).isoformat(), "mode": "strict"},
        "results": [{"step_id": s.id, "tier": s.tier, "status": status if s.id in failing else "PASS",
                     "duration_ms": round(duration * 1000 / len(steps))} for s in steps],
        "summary": {"total_duration_ms": round(duration * 1000)},
    }
    parsed = parse_report(data, f"run@{finish}", model)
    assert parsed.timestamp == finish
    return parsed


# --- the simulated Pushgateway --------------------------------------------------------------------

Key = tuple[tuple[str, str], ...]  # a grouping key or a series' labels, sorted


@dataclass(frozen=True)
class Group:
    text: str  # the exposition pushed (what GET /api/v1/metrics gives back, as emit reads it)
    pushed: float  # push_time_seconds
    samples: tuple[tuple[Key, float], ...]  # the series as scraped: labels with __name__, grouping and job


def _key(labels: dict[str, str]) -> Key:
    return tuple(sorted(labels.items()))


class Pushgateway:
    """Groups by grouping key (job plus labels) -> what was pushed; PUT replaces a group, DELETE drops it."""

    def __init__(self, model: Model, env: str):
        self.model, self.env = model, env
        self.env_key = {"job": JOB, model.metrics.env_label: env}
        self.groups: dict[Key, Group] = {}
        self.outcomes: list[str] = []  # place() of every emit, in order

    # the HTTP API, simulated
    def put(self, grouping: dict[str, str], text: str, at: float) -> None:
        scraped = []
        for name, labels, value in parse_exposition(text):  # honor_labels: the series' own labels win
            scraped.append((_key({**grouping, **labels, "__name__": name}), value))
        self.groups[_key(grouping)] = Group(text, at, tuple(scraped))

    def delete(self, grouping: dict[str, str]) -> None:
        self.groups.pop(_key(grouping), None)

    def text(self, grouping: dict[str, str]) -> str | None:
        group = self.groups.get(_key(grouping))
        return group.text if group else None

    # emit_to_pushgateway, in two halves so that emits can interleave
    def read(self, rep: Report) -> tuple[str, str | None, dict[Key, Group]]:
        groups = dict(self.groups)  # GET /api/v1/metrics
        previous = self.text(self.env_key)
        status, _ = place(self.model, self.env, rep, previous)
        self.outcomes.append(status)
        return status, previous, groups

    def write(self, rep: Report, at: float, previous: str | None, groups: dict[Key, Group]) -> None:
        run = run_id(rep.timestamp)
        self.put({**self.env_key, LABEL_RUN: run}, _text(run_registry(self.model, self.env, rep, now=at)), at)
        self.put(self.env_key, _text(registry(self.model, self.env, rep, previous, now=at, runs=False)), at)
        for key, group in groups.items():  # _stale_run_groups over the groups read before the pushes
            labels = dict(key)
            if LABEL_RUN in labels and labels[LABEL_RUN] != run and group.pushed < at - RUN_GROUP_KEEP and \
                    {k: v for k, v in labels.items() if k != LABEL_RUN} == self.env_key:
                self.delete(labels)

    def emit(self, rep: Report, at: float) -> str:
        status, previous, groups = self.read(rep)
        if status == COUNTED:
            self.write(rep, at, previous, groups)
        return status

    def emit_concurrently(self, reps: Sequence[Report], at: float) -> None:
        """Every emit reads before any writes (two runners finishing together); the writes then land in order."""
        reads = [(rep, self.read(rep)) for rep in reps]
        for rep, (status, previous, groups) in reads:
            if status == COUNTED:
                self.write(rep, at, previous, groups)

    def restart(self) -> None:
        self.groups = {}

    def snapshot(self) -> dict[Key, Group]:
        return copy.copy(self.groups)  # Groups are immutable

    def restore(self, snapshot: dict[Key, Group]) -> None:
        self.groups = copy.copy(snapshot)

    def scrape(self) -> dict[Key, float]:
        return {labels: value for group in self.groups.values() for labels, value in group.samples}


# --- a scenario: events on a simulated clock, the scrapes, and promtool -----------------------------

@dataclass
class Sim:
    env: str
    end: int  # seconds; the last scrape and the latest evaluation asserted
    model: Model = MODEL
    gw: Pushgateway = field(init=False)
    events: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    runs: list[Report] = field(default_factory=list)  # every report counted, for the expected SLO counts

    def __post_init__(self) -> None:
        self.gw = Pushgateway(self.model, self.env)

    def at(self, when: float, action: Callable[[], None]) -> None:
        assert when % SCRAPE, f"an event at {when} s falls on a scrape: the reasoning assumes it never does"
        self.events.append((when, len(self.events), action))

    def run(self, finish: int, **kwargs) -> Report:
        """A run that ended at `finish`, emitted EMIT_DELAY later."""
        rep = report(finish, model=self.model, **kwargs)
        self.runs.append(rep)
        self.at(finish + EMIT_DELAY, lambda: self._emitted(self.gw.emit(rep, finish + EMIT_DELAY)))
        return rep

    def concurrent_runs(self, finishes: Sequence[int], **kwargs) -> None:
        """Runs that ended at `finishes`, all emitted together EMIT_DELAY after the last ended."""
        reps = [report(f, model=self.model, **kwargs) for f in finishes]
        self.runs += reps
        self.at(max(finishes) + EMIT_DELAY, lambda: self.gw.emit_concurrently(reps, max(finishes) + EMIT_DELAY))

    @staticmethod
    def _emitted(status: str) -> None:
        assert status == COUNTED, status

    def scrapes(self) -> list[dict[Key, float]]:
        events = sorted(self.events, key=lambda e: (e[0], e[1]))
        out, i = [], 0
        for now in range(0, self.end + 1, SCRAPE):
            while i < len(events) and events[i][0] <= now:
                events[i][2]()
                i += 1
            out.append(self.gw.scrape())
        assert i == len(events), "an event after the end of the scenario"
        return out

    def input_series(self, thin: int = 1) -> list[dict[str, str]]:
        scrapes = self.scrapes()
        names = sorted({k for scrape in scrapes for k in scrape})
        return [{"series": _series_name(k), "values": _values([s.get(k) for s in scrapes], thin)} for k in names]

    # assertions, as promql_expr_test entries
    def expect(self, expr: str, when: int, samples: list[tuple[str, float]]) -> None:
        self.checks.append({"expr": expr, "eval_time": f"{when}s",
                            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples]})

    def firing(self, when: int, *alerts: tuple[str, ...]) -> None:
        """Exactly these alerts fire at `when`: (alertname, step_id[, slo])."""
        self.expect(f'count by (alertname, step_id, slo) (ALERTS{{alertstate="firing",env="{self.env}"}})',
                    when, [(_alert_labels(a), 1) for a in alerts])

    def fired_ever(self, *alerts: tuple[str, ...]) -> None:
        """Exactly these alerts fired at some evaluation of the scenario (up to its end)."""
        self.expect(f'count by (alertname, step_id, slo) (max_over_time(ALERTS{{alertstate="firing",'
                    f'env="{self.env}"}}[{self.end}s]))', self.end, [(_alert_labels(a), 1) for a in alerts])

    def firing_evaluations(self, alert: tuple[str, ...], n: int) -> None:
        """The alert was firing at exactly `n` evaluations of the scenario."""
        name, step = alert[0], alert[1]
        self.expect(f'sum by (alertname, step_id) (count_over_time(ALERTS{{alertstate="firing",'
                    f'env="{self.env}",alertname="{name}",step_id="{step}"}}[{self.end}s]))', self.end,
                    [(_alert_labels((name, step)), n)] if n else [])

    def pages_ever(self, *alerts: tuple[str, ...]) -> None:
        """Exactly these alerts of the page class (`route_class`) fired at some evaluation."""
        sel = f'alertstate="firing",env="{self.env}"'
        expr = " or ".join(f"max_over_time(ALERTS{{{sel},{m}}}[{self.end}s])" for m in PAGE_MATCHERS)
        self.expect(f"count by (alertname, step_id, slo) ({expr})", self.end,
                    [(_alert_labels(a), 1) for a in alerts])

    def recorded(self, record: str, slo: str, when: int, value: float) -> None:
        labels = f'{{env="{self.env}",slo="{slo}"}}'
        self.expect(record + labels, when, [(record + labels, value)])

    def promtool(self, tmp_path: Path, rule_files: Sequence[Path] | None = None) -> None:
        files = sorted(rule_files or (ROOT / "generated" / self.env / "prometheus").glob("*.rules.yaml"),
                       key=lambda f: (f.name != f"{JOB}.rules.yaml", f.name))  # the job's records first
        groups = [g for f in files for g in yaml.safe_load(f.read_text())["groups"]]
        counting = any(fn in r["expr"] for g in groups for r in g["rules"] for fn in SAMPLE_COUNTING)
        doc = {"rule_files": [str(f) for f in files], "evaluation_interval": "1m",
               "group_eval_order": [g["name"] for g in groups],
               "tests": [{"interval": f"{SCRAPE}s", "input_series": self.input_series(1 if counting else THIN),
                          "promql_expr_test": self.checks}]}
        path = tmp_path / f"{self.env}.test.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))
        proc = run_tool(PROMTOOL, "test", "rules", str(path))
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]


def _alert_labels(alert: tuple[str, ...]) -> str:
    names = ("alertname", "step_id", "slo")
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, alert)) + "}"


def _series_name(key: Key) -> str:
    labels = dict(key)
    name = labels.pop("__name__")
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"') for v in labels.values())
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in zip(labels, escaped)) + "}"


def _values(column: list[float | None], thin: int = 1) -> str:
    """promtool's expanding notation for one series' scrapes: `vxN` is N+1 samples of v, `_xN` N missing
    ones, `stale` the marker Prometheus writes at the first scrape without a series it scraped before.
    With `thin` > 1 an unchanged value is written only every `thin` scrapes (see THIN)."""
    samples: list[str] = []
    last = -thin
    for i, value in enumerate(column):
        if value is None:
            samples.append("stale" if i and column[i - 1] is not None else "_")
        elif i - last >= thin or column[i - 1] != value:
            samples.append(str(int(value)) if float(value).is_integer() else repr(value))
            last = i
        else:
            samples.append("_")
    while samples and samples[-1] == "_":
        samples.pop()
    tokens, i = [], 0
    while i < len(samples):
        j = i
        while j + 1 < len(samples) and samples[j + 1] == samples[i] and samples[i] != "stale":
            j += 1
        n = j - i + 1
        if samples[i] == "_":
            tokens.append(f"_x{n}" if n > 1 else "_")
        else:
            tokens.append(f"{samples[i]}x{n - 1}" if n > 1 else samples[i])
        i = j + 1
    return " ".join(tokens)


# Scraped every 30 s, an unchanged series is written to promtool only every THIN scrapes (4m30s, within the
# 5m lookback), and at every change and disappearance (a staleness marker): the rules read the series only
# instantly and through max/min/absent_over_time, which fewer samples of the same values do not change,
# while promtool's time grows with the samples in its [7d] and [28d] windows. Rules using a function that
# counts samples (SAMPLE_COUNTING) get every scrape.
THIN = 9
SAMPLE_COUNTING = ("rate(", "increase(", "delta(", "deriv(", "changes(", "resets(", "count_over_time(",
                   "sum_over_time(", "avg_over_time(", "quantile_over_time(", "stddev_over_time(",
                   "stdvar_over_time(", "timestamp(", "predict_linear(", "holt_winters(")


# --- routing: page, ticket or notice ----------------------------------------------------------------

PAGE_MATCHERS = ('page="oncall"', 'slo_alert="page"', 'tier="kernel",slo_alert=""')


def route_class(labels: dict[str, str]) -> str:
    """What an alert with these labels becomes, inferred from its labels (proven by amtool below)."""
    if labels.get("page") == "oncall" or labels.get("slo_alert") == "page":
        return "page"
    if labels.get("slo_alert") == "ticket":
        return "ticket"
    return {"kernel": "page", "governance": "ticket"}.get(labels.get("tier", ""), "notice")


def _alert_rules(env: str) -> list[dict]:
    files = sorted((ROOT / "generated" / env / "prometheus").glob("*.rules.yaml"))
    return [r for f in files for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"] if "alert" in r]


def classes(env: str, *alerts: tuple[str, ...]) -> set[str]:
    """The route classes of these expected alerts, from the labels of their rules in the committed files."""
    found = set()
    for alert in alerts:
        rules = [r for r in _alert_rules(env) if r["alert"] == alert[0] and r["labels"].get("step_id") == alert[1]
                 and (len(alert) < 3 or r["labels"].get("slo") == alert[2])]
        assert rules, alert
        found |= {route_class(r["labels"]) for r in rules}
    return found


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_route_class_agrees_with_amtool(env: str) -> None:
    """Every distinct routing label set of the env's alert rules routes, by `amtool config routes test` on the
    committed Alertmanager config, to PagerDuty exactly when `route_class` says page, else to the ticket
    channel for a ticket and to the info channel for a notice."""
    config = ROOT / "generated" / env / "alertmanager" / "alertmanager.yaml"
    receivers = {"page": f"selftest/{env}/pagerduty-oncall", "ticket": f"selftest/{env}/slack-tickets",
                 "notice": f"selftest/{env}/slack-info"}
    label_sets = {tuple(sorted((k, v) for k, v in r["labels"].items() if k != "step_id"))
                  for r in _alert_rules(env)}
    seen = set()
    for labels in sorted(label_sets):
        args = [f"{k}={v}" for k, v in labels]
        proc = subprocess.run([AMTOOL, "config", "routes", "test", f"--config.file={config}", *args],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        got = set(proc.stdout.strip().split(","))
        want = route_class(dict(labels))
        seen.add(want)
        assert (receivers["page"] in got) == (want == "page"), (labels, got)
        assert receivers[want] in got, (labels, got)
    assert seen == {"page", "ticket", "notice"}


# --- the scenarios --------------------------------------------------------------------------------

JITTER = (0, 47, -83, 112, -31, 64, -118, 9)  # seconds off the schedule, run after run


def jittered(start: str, every: str, count: int) -> list[int]:
    """`count` run ends about `every` apart from `start`, each off its slot by up to two minutes (JITTER)."""
    first, step = t(start), t(every)
    return [first + i * step + JITTER[i % len(JITTER)] for i in range(count)]


def test_dev_kernel_failure_then_passing_retry_within_one_scrape_pages_then_resolves(tmp_path: Path) -> None:
    """dev, runs about every 15m, all passing, except that the run ending at 1h33m04s fails the KERNEL step
    and its retry passes 20 s later (1h33m24s); both are emitted between the scrapes at 1h33m00s and
    1h33m30s, so Prometheus never sees step_failed at 1.

    SelftestKernelStepFailed (dev: for 1m, tolerance 0) holds while last_failure > last_pass, or for
    failure_hold = for + 3 evaluations = 240 s after the failure: at 1h34m (first evaluation after the
    1h33m30s scrape) 1h34m - 240 s = 1h30m < 1h33m04s: pending; firing at 1h35m, 1h36m, 1h37m
    (1h37m - 240 s = 1h33m00s < 1h33m04s); at 1h38m, 1h34m00s > 1h33m04s: resolved. 3 firing
    evaluations, a page. Nothing else: one failed run is below the SLO ticket's 2-failure minimum (and dev
    has no SLO page), a run passes every ~15m so SelftestNoPassingRun (40m) never holds, and the first run
    reports within 2 minutes so the NoData notice (for 5m) never fires.
    """
    sim = Sim("dev", t("2h30m"))
    for finish in jittered("1m12s", "15m", 10):
        if finish < t("1h33m"):
            sim.run(finish)
    sim.run(t("1h33m4s"), fail=[CORE])
    sim.run(t("1h33m24s"))
    for finish in jittered("1h48m19s", "15m", 3):
        sim.run(finish)
    kernel = (KERNEL, CORE)
    sim.firing(t("1h34m"))
    sim.firing(t("1h35m"), kernel)
    sim.firing(t("1h37m"), kernel)
    sim.firing(t("1h38m"))
    sim.firing_evaluations(kernel, 3)
    sim.fired_ever(kernel)
    sim.pages_ever(kernel)
    assert classes("dev", kernel) == {"page"}
    sim.promtool(tmp_path)


def test_dev_hanging_runs_every_30m_page_no_passing_run_once_and_keep_it(tmp_path: Path) -> None:
    """dev (cadence 15m, stale_after 40m): one passing run ends at 4m51s; then every run hangs, its KERNEL
    step TIMEOUTs after 20 minutes, and the runs land about every 30 min (35m17s ... 3h05m33s), for 3 h.

    SelftestNoPassingRun: the last run not paged is 4m51s (291 s); 291 + 2400 = 2691 s, so pending at 45m,
    firing at 50m (for 5m), and it never resolves: no run passes, and the rule reads the passing run over
    7d although its Pushgateway group was deleted an hour after its push. Firing at every evaluation from
    50m to 3h20m: (12000 - 3000) / 60 + 1 = 151 evaluations (one episode, never re-fired).
    SelftestKernelStepFailed (for 1m): last_failure (35m17s) > last_pass (4m51s) from the 35m30s scrape:
    pending 36m, firing 37m to the end. Both pages.
    Tickets: SelftestSlowRuns (p95 over 1h of {14 s, 1200 s} > 60 from 36m, for 10m: firing 46m) stays,
    a 1200 s run every 30 min; both SLOBurnRateTicket (pass-rate: 2 of 3 runs failed over 2h and 1d, at least
    2 failed; run-duration: 2 of 3 runs over 30 s) from the second hung run (1h05m02s, scraped 1h05m30s): 1h06m.
    """
    sim = Sim("dev", t("3h20m"))
    sim.run(t("4m51s"))
    hung = [t(x) for x in ("35m17s", "1h5m2s", "1h35m40s", "2h5m26s", "2h35m9s", "3h5m33s")]
    for finish in hung:
        sim.run(finish, fail=[CORE], status="TIMEOUT", duration=1200.0)
    no_pass, kernel = (NO_PASS, "all"), (KERNEL, CORE)
    slow = ("SelftestSlowRuns", "all")
    pass_rate, run_duration = (SLO_TICKET, "all", "pass-rate"), (SLO_TICKET, "all", "run-duration")
    sim.firing(t("44m"), kernel)
    sim.firing(t("49m"), kernel, slow)
    sim.firing(t("50m"), kernel, slow, no_pass)
    sim.firing(t("1h5m"), kernel, slow, no_pass)
    sim.firing(t("1h6m"), kernel, slow, no_pass, pass_rate, run_duration)
    sim.firing(t("3h20m"), kernel, slow, no_pass, pass_rate, run_duration)
    sim.firing_evaluations(no_pass, 151)
    sim.pages_ever(kernel, no_pass)
    assert classes("dev", kernel, no_pass) == {"page"}
    assert classes("dev", slow, pass_rate, run_duration) == {"ticket"}
    sim.promtool(tmp_path)


def test_prod_burst_of_failures_then_silence_keeps_no_passing_run_until_a_run_passes(tmp_path: Path) -> None:
    """prod (at least every 1h, stale_after 2h10m = 7800 s, page_on_any_failure): passing runs at 2m13s,
    38m40s, 1h09m05s; then 10 runs failing the KERNEL step within 5 minutes (1h28m07s + k*31 s, the last
    at 1h32m46s = 5566 s); then silence for 6 h; then a passing run at 7h38m19s; end 7h47m.

    - SelftestNoPassingRun: last passing run 1h09m05s (4145 s) + 7800 = 11945 s: pending 3h20m, firing
      3h25m; it must not resolve when the SLO windows empty (the 2h windows at 3h33m, the 6h windows at
      7h33m); the passing run (scraped 7h38m30s) resolves it at 7h39m. Firing 3h25m..7h38m: 254 evaluations.
    - SelftestKernelStepFailed (prod: for 0m): firing from 1h29m (first failure scraped 1h28m30s), since
      last_failure > last_pass, until the passing run: resolved at 7h39m.
    - SelftestNotReporting (a ticket): last run 5566 s + 7800 = 13366 s: pending 3h43m, firing 3h48m,
      resolved 7h39m.
    - SLOBurnRateTicket (pass-rate): at 1h29m (the second failure scraped at 1h29m00s) 2 of 5 runs failed
      over 2h and 1d: fires; once the 2h window is empty the 3d/6h pair holds it until the 6h window
      empties: 7h33m - 6h = 1h33m00s > 1h32m46s, so firing 1h29m..7h32m.
    """
    sim = Sim("prod", t("7h47m"))
    for finish in ("2m13s", "38m40s", "1h9m5s"):
        sim.run(t(finish))
    for k in range(10):
        sim.run(t("1h28m7s") + 31 * k, fail=[CORE])
    sim.run(t("7h38m19s"))
    no_pass, kernel, silent = (NO_PASS, "all"), (KERNEL, CORE), (NOT_REPORTING, "all")
    ticket = (SLO_TICKET, "all", "pass-rate")
    sim.firing(t("1h28m"))
    sim.firing(t("1h29m"), kernel, ticket)
    sim.firing(t("3h24m"), kernel, ticket)
    sim.firing(t("3h25m"), kernel, ticket, no_pass)
    sim.firing(t("3h47m"), kernel, ticket, no_pass)
    sim.firing(t("3h48m"), kernel, ticket, no_pass, silent)
    sim.firing(t("7h32m"), kernel, ticket, no_pass, silent)
    sim.firing(t("7h33m"), kernel, no_pass, silent)
    sim.firing(t("7h38m"), kernel, no_pass, silent)
    sim.firing(t("7h39m"))
    sim.firing(t("7h47m"))
    sim.firing_evaluations(no_pass, 254)
    sim.fired_ever(kernel, ticket, no_pass, silent)
    sim.pages_ever(kernel, no_pass)
    assert classes("prod", kernel, no_pass) == {"page"}
    assert classes("prod", silent, ticket) == {"ticket"}
    sim.promtool(tmp_path)


def test_prod_dead_job_and_restarted_pushgateway_page_no_passing_run(tmp_path: Path) -> None:
    """prod: passing runs at 2m13s, 47m31s, 1h38m02s, 2h21m44s (t0 = 8504 s), then the job dies; the
    Pushgateway restarts without persistence (every group gone) at 3h09m27s; end 5h.

    SelftestNoPassingRun and SelftestNotReporting both hold from t0 + 7800 s = 16304 s: pending 4h32m,
    firing 4h37m (for 5m), and both keep firing to the end although every series went stale at the
    restart, before they fired (they read the last times back over 7d): (18000 - 16620) / 60 + 1 = 24
    firing evaluations.
    NoPassingRun pages; NotReporting is a ticket: tier governance and no page="oncall" label, although
    prod pages on any failure. The NoData notice must not fire after the restart (7d of history).
    """
    sim = Sim("prod", t("5h"))
    for finish in ("2m13s", "47m31s", "1h38m2s", "2h21m44s"):
        sim.run(t(finish))
    sim.at(t("3h9m27s"), sim.gw.restart)
    no_pass, silent = (NO_PASS, "all"), (NOT_REPORTING, "all")
    sim.firing(t("4h36m"))
    sim.firing(t("4h37m"), no_pass, silent)
    sim.firing(t("5h"), no_pass, silent)
    sim.firing_evaluations(no_pass, 24)
    sim.firing_evaluations(silent, 24)
    sim.fired_ever(no_pass, silent)
    sim.pages_ever(no_pass)
    sim.expect(f'count by (alertname, tier, page) (ALERTS{{alertstate="firing",alertname="{NOT_REPORTING}"}})',
               t("5h"), [(f'{{alertname="{NOT_REPORTING}",tier="governance"}}', 1)])
    assert classes("prod", no_pass) == {"page"} and classes("prod", silent) == {"ticket"}
    sim.promtool(tmp_path)


def test_dev_restored_older_persistence_file_invents_and_loses_no_run(tmp_path: Path) -> None:
    """dev: 13 runs about every 15m (1m12s ... 3h01m49s); run 2 (16m40s) fails 4 GOVERNANCE steps (above dev's
    tolerance of 3: a failed run, outcome ticket), the others pass. The persistence file is snapshot
    after run 3 (0h31m05s) and restored after run 10 (at 2h20m41s): the environment group goes back to
    run 3's, run groups 4..10 vanish and run groups 1..3 come back (same series); run 11 (2h31m36s)
    is counted (newer than run 3) and deletes them (pushed over an hour earlier).

    Expected: from the 2h21m00s scrape Prometheus sees the run series of runs 1..3 only (the others stale).
    The pass-rate SLO counts 13 runs, 1 failed: ratio_period = 1/13 exactly, at the end (3h10m).
    SelftestGovernanceFailuresAboveTolerance for the 4 steps: run 2 scraped 17m00s, pending 17m, firing
    22m..31m (run 3, scraped 31m30s, is newer: resolved 32m): 10 evaluations each. After the restore,
    the restored group's newest failure (run 2) is not its last run (run 3): nothing fires. No
    SLOBurnRateTicket (1 failure < 2), no SelftestNoPassingRun, no SelftestNotReporting (the rules read the
    last run over 7d, so last_run moving back to 31m05s is harmless). Nothing pages.
    """
    sim = Sim("dev", t("3h10m"))
    finishes = [t(x) for x in ("1m12s", "16m40s", "31m5s", "46m51s", "1h1m22s", "1h16m9s", "1h31m47s", "1h45m53s",
                               "2h1m30s", "2h16m14s", "2h31m36s", "2h46m2s", "3h1m49s")]
    snapshot: dict = {}
    for i, finish in enumerate(finishes, 1):
        sim.run(finish, fail=GOV[:4] if i == 2 else ())
        if i == 3:
            sim.at(finish + 15, lambda: snapshot.update(saved=sim.gw.snapshot()))
        if i == 10:
            sim.at(t("2h20m41s"), lambda: sim.gw.restore(snapshot["saved"]))
    assert finishes[2] == t("31m5s") and finishes[9] < t("2h20m41s") < finishes[10]
    governance = [(GOVERNANCE, s) for s in GOV[:4]]
    sim.firing(t("21m"))
    sim.firing(t("22m"), *governance)
    sim.firing(t("31m"), *governance)
    sim.firing(t("32m"))
    for alert in governance:
        sim.firing_evaluations(alert, 10)
    sim.firing(t("2h21m"))
    sim.firing(t("3h10m"))
    sim.fired_ever(*governance)
    sim.pages_ever()
    runs = f'count by (run) ({MODEL.metrics.run_timestamp}{{env="dev"}})'
    sim.expect(runs, t("2h21m"), [(f'{{run="{run_id(f)}"}}', 1) for f in finishes[:3]])
    sim.recorded("slo:sli_events:count_period", "pass-rate", t("3h10m"), 13)
    sim.recorded("slo:sli_errors:count_period", "pass-rate", t("3h10m"), 1)
    sim.recorded("slo:sli_error:ratio_period", "pass-rate", t("3h10m"), 1 / 13)
    sim.promtool(tmp_path)


def test_dev_concurrent_emits_lose_no_run(tmp_path: Path) -> None:
    """dev: 3 passing runs (1m12s, 16m..., 31m...), then 10 runs failing the KERNEL step, emitted in pairs
    that both read the environment group before either writes (two runners ending 7 s apart, emitted
    together): the second write overwrites the first's environment group, but both run groups stay.

    Expected at the end (2h10m): the pass-rate SLO counts all 13 runs (events 13), 10 failed (errors 10,
    ratio 10/13): Prometheus counts runs by their own series, not by the environment group.
    """
    sim = Sim("dev", t("2h10m"))
    for finish in jittered("1m12s", "15m", 3):
        sim.run(finish)
    for pair_end in jittered("46m44s", "15m", 5):
        sim.concurrent_runs([pair_end - 7, pair_end], fail=[CORE])
    assert len(sim.runs) == 13
    sim.recorded("slo:sli_events:count_period", "pass-rate", t("2h10m"), 13)
    sim.recorded("slo:sli_errors:count_period", "pass-rate", t("2h10m"), 10)
    sim.recorded("slo:sli_error:ratio_period", "pass-rate", t("2h10m"), 10 / 13)
    sim.promtool(tmp_path)
    assert sim.gw.outcomes.count(COUNTED) == 13


def test_dev_new_environment_whose_first_run_fails_spends_one_run_of_budget_and_pages_nobody(tmp_path: Path) -> None:
    """dev, a new environment: the rules are loaded at 0 and the first run ends at 10m48s with 4 GOVERNANCE
    steps failing (above the tolerance of 3: a failed run, outcome ticket); then passing runs about every
    15m until 2h.

    - SelftestNotReportingNoData (a notice): nothing reported: pending at 0, firing 5m..10m (6
      evaluations), resolved at 11m (the run is scraped at 11m00s).
    - SelftestGovernanceFailuresAboveTolerance for the 4 steps (tickets): pending 11m, firing 16m..25m; the
      next run ends 25m33s, is scraped 26m00s: resolved at 26m. 10 evaluations each.
    - The first run counts: at 20m the pass-rate SLO has 1 event, 1 error; its budget is spent in runs,
      over at least B = 28d * 5 % / 15m = 134.4 budget runs: 1 - 1/134.4 (99.26 %), not 1 - 1/0.05 = -1900 %;
      and never below it until the end.
    - No page: no kernel failure, a run not paged (a ticket) ended at 10m48s and runs follow every 15m,
      so no SelftestNoPassingRun; 1 failed run is below the SLO ticket's 2-failure minimum.
    """
    sim = Sim("dev", t("2h"))
    sim.run(t("10m48s"), fail=GOV[:4])
    for finish in jittered("25m33s", "15m", 7):
        sim.run(finish)
    governance = [(GOVERNANCE, s) for s in GOV[:4]]
    no_data = (NO_DATA, "all")
    budget_runs = t("28d") * (1 - 0.95) / t("15m")
    floor = t("28d") / t("15m")  # 2688 runs: the clamp_min of the events in the budget
    assert budget_runs == pytest.approx(134.4)
    sim.firing(t("4m"))
    sim.firing(t("5m"), no_data)
    sim.firing(t("11m"))
    sim.firing(t("16m"), *governance)
    sim.firing(t("25m"), *governance)
    sim.firing(t("26m"))
    sim.firing_evaluations(no_data, 6)
    for alert in governance:
        sim.firing_evaluations(alert, 10)
    sim.fired_ever(no_data, *governance)
    sim.pages_ever()
    assert classes("dev", no_data) == {"notice"} and classes("dev", *governance) == {"ticket"}
    sim.recorded("slo:sli_events:count_period", "pass-rate", t("20m"), 1)
    sim.recorded("slo:sli_errors:count_period", "pass-rate", t("20m"), 1)
    sim.recorded("slo:error_budget_remaining:ratio", "pass-rate", t("20m"), 1 - 1 / (0.05 * floor))
    sim.expect(f'min_over_time(slo:error_budget_remaining:ratio{{env="dev",slo="pass-rate"}}[{t("2h")}s]) '
               f'>= bool {1 - 1 / budget_runs - 1e-9!r}', t("2h"), [('{env="dev",slo="pass-rate"}', 1)])
    sim.promtool(tmp_path)


GOVERNANCE_ONLY = {
    # env: (run ends over 6 h, the governance steps each run fails: one more than the env tolerates)
    "dev": (jittered("1m12s", "15m", 24), GOV[:4]),
    "staging": ([t(x) for x in ("2m51s", "19m30s", "22m14s", "1h47m8s", "2h9m55s", "3h58m41s", "4h5m12s",
                                "4h40m3s", "5h51m26s")], GOV[:2]),
}


@pytest.mark.parametrize("env", sorted(GOVERNANCE_ONLY))
def test_governance_only_failures_make_tickets_never_pages(tmp_path: Path, env: str) -> None:
    """dev (every ~15m, tolerance 3: 4 steps fail) and staging (irregular, gaps up to 1h50m, tolerance 1:
    2 steps fail): every run fails GOVERNANCE above the tolerance, for 6 h.

    SelftestGovernanceFailuresAboveTolerance for each failing step: the first run (ending 1m12s / 2m51s)
    is scraped at 1m30s / 3m00s: pending 2m / 3m, firing 7m / 8m (for 5m), to the end (every run fails
    the same steps, and runs are fresh: within 40m / 4h10m). SLOBurnRateTicket (pass-rate): every run
    fails; from the second run (ending 16m59s / 19m30s, scraped 17m30s / 20m00s) at least 2 failed runs
    with a 100 % ratio over 1d and the short window (2h / 3h): firing from 18m / 20m to the end. All tickets.
    No page ever: no kernel step fails; each run's outcome is ticket, not page, so SelftestNoPassingRun
    (reading runs not paged) never holds; dev and staging have no SLOBurnRatePage.
    """
    finishes, failing = GOVERNANCE_ONLY[env]
    sim = Sim(env, t("6h"))
    for finish in finishes:
        sim.run(finish, fail=failing)
    governance = [(GOVERNANCE, s) for s in failing]
    ticket = (SLO_TICKET, "all", "pass-rate")
    first_fire, slo_fire = (t("7m"), t("18m")) if env == "dev" else (t("8m"), t("20m"))
    sim.firing(first_fire - 60)
    sim.firing(first_fire, *governance)
    sim.firing(slo_fire - 60, *governance)
    sim.firing(slo_fire, *governance, ticket)
    sim.firing(t("6h"), *governance, ticket)
    sim.fired_ever(*governance, ticket)
    sim.pages_ever()
    assert classes(env, ticket, *governance) == {"ticket"}
    sim.promtool(tmp_path)


def test_dev_partial_run_clears_governance_alerts_on_stale_gauges(tmp_path: Path) -> None:
    """dev: full passing runs at 1m12s, 16m03s, 31m40s; a full run at 46m21s fails 4 GOVERNANCE steps;
    then kernel-only runs (`--kernel-only`: only core-checks, passing) at 57m09s, 1h12m31s, 1h27m50s,
    1h42m14s; a full passing run at 2h01m05s; end 2h20m.

    The partial runs leave the governance step gauges at 1 (a partial run says nothing of the steps it
    did not run), but the alert reads the steps that failed in the newest run: from the 57m30s scrape the
    newest run (57m09s) is not the failed one (46m21s). So SelftestGovernanceFailuresAboveTolerance for
    the 4 steps: scraped 46m30s, pending 47m, firing 52m..57m (6 evaluations), resolved 58m, and never
    again. Nothing else fires: the kernel-only runs pass (their result is judged on what they ran), one
    failed run is below the SLO ticket's minimum of 2.
    """
    sim = Sim("dev", t("2h20m"))
    for finish in ("1m12s", "16m3s", "31m40s"):
        sim.run(t(finish))
    sim.run(t("46m21s"), fail=GOV[:4])
    for finish in ("57m9s", "1h12m31s", "1h27m50s", "1h42m14s"):
        sim.run(t(finish), only=[CORE], duration=4.0)
    sim.run(t("2h1m5s"))
    governance = [(GOVERNANCE, s) for s in GOV[:4]]
    sim.firing(t("51m"))
    sim.firing(t("52m"), *governance)
    sim.firing(t("57m"), *governance)
    sim.firing(t("58m"))
    sim.firing(t("1h30m"))
    for alert in governance:
        sim.firing_evaluations(alert, 6)
    sim.fired_ever(*governance)
    sim.pages_ever()
    sim.recorded("slo:sli_errors:count_period", "pass-rate", t("2h20m"), 1)
    sim.recorded("slo:sli_events:count_period", "pass-rate", t("2h20m"), 9)
    sim.promtool(tmp_path)


def test_prod_declared_daily_pages_on_two_failing_days(tmp_path: Path) -> None:
    """prod with its cadence declared daily (at least every 1d: a copy of the model, compiled into a temp
    dir): stale_after = 2 * 1d + 10m = 2d10m; the pass-rate SLO's budget is 28 * 5 % = 1.4 runs, fewer than
    two, so no burn-rate alert is compiled (the SLO files hold recording rules only, which no alert reads,
    so promtool loads only the selftest rules) and failures page through the step alerts. The rules are
    loaded at 23:30 on day 0 (t = 0); a passing run at 23:32:37 on day 0 (t = 157 s); a run failing the
    KERNEL step on day 1 at 09:13:44 and on day 2 at 07:41:02; end 23:59 on day 2.

    - SelftestKernelStepFailed (prod: for 0m): last_failure > last_pass from the day-1 failure (scraped
      09:14:00): firing from day 1 09:14, to the end.
    - SelftestNoPassingRun: last passing run t = 157 s, + 2d10m = 173557 s = day 2 23:42:37: pending
      23:43, firing 23:48 (for 5m), to the end.
    So at the end of the second failing day two pages fire; nothing else ever did (the runs are at most
    1d9h41m apart, within stale_after; the first run reports before the NoData notice's 5m).
    """
    prod = MODEL.environment("prod")
    daily = dataclasses.replace(prod, cadence=Cadence(interval="1d", regular=False))
    model = dataclasses.replace(MODEL, environments=tuple(daily if e.name == "prod" else e
                                                           for e in MODEL.environments))
    files = []
    for artifact in compile_prometheus(model, daily):
        path = tmp_path / "generated" / artifact.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(artifact.content)
        files.append(path)
    alerts = {f.name: {r["alert"] for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]
                       if "alert" in r} for f in files}
    assert alerts.pop(f"{JOB}.rules.yaml") >= {NO_PASS} and alerts.pop(f"{JOB}-steps.rules.yaml") >= {KERNEL}
    assert all(not a for a in alerts.values()), alerts  # no SLO alert in a daily prod

    def clock(day: int, hms: str) -> int:  # a wall-clock time on day 0, 1 or 2 as simulated seconds
        return day * t("1d") + t(hms) - t("23h30m")

    sim = Sim("prod", clock(2, "23h59m"), model=model)
    sim.run(clock(0, "23h32m37s"))
    sim.run(clock(1, "9h13m44s"), fail=[CORE])
    sim.run(clock(2, "7h41m2s"), fail=[CORE])
    kernel, no_pass = (KERNEL, CORE), (NO_PASS, "all")
    assert clock(0, "23h32m37s") + t("2d10m") == clock(2, "23h42m37s")
    sim.firing(clock(1, "9h13m"))
    sim.firing(clock(1, "9h14m"), kernel)
    sim.firing(clock(2, "23h47m"), kernel)
    sim.firing(clock(2, "23h48m"), kernel, no_pass)
    sim.firing(clock(2, "23h59m"), kernel, no_pass)
    sim.fired_ever(kernel, no_pass)
    sim.pages_ever(kernel, no_pass)
    assert classes("prod", kernel, no_pass) == {"page"}
    sim.promtool(tmp_path, [f for f in files if f.name in (f"{JOB}.rules.yaml", f"{JOB}-steps.rules.yaml")])


# --- step failures that the environment group alone would lose ------------------------------------------

def test_dev_kernel_failure_emitted_concurrently_with_a_passing_run_still_pages(tmp_path: Path) -> None:
    """dev: passing runs at 1m12s and 16m59s; then two runners end together: one fails the KERNEL step at
    31m40s, the other passes at 31m47s; both emits read the environment group before either writes
    (emitted 31m49s), the passing run's write landing last; a passing run at 46m20s; end 55m.

    By the policy a KERNEL failure pages in every environment, and the rules are built to page even when
    a passing run follows within seconds (failure_hold, scenario 1): scraped 32m00s, pending 32m, firing
    33m, 34m, 35m (35m - 240 s = 31m00s < 31m40s), resolved 36m: 3 firing evaluations. The failed run
    itself is counted (its own group survives): 1 error of 5 runs.
    """
    sim = Sim("dev", t("55m"))
    sim.run(t("1m12s"))
    sim.run(t("16m59s"))
    sim.at(t("31m49s"), lambda: sim.gw.emit_concurrently([report(t("31m40s"), fail=[CORE]), report(t("31m47s"))],
                                                         t("31m49s")))
    sim.run(t("46m20s"))
    kernel = (KERNEL, CORE)
    sim.recorded("slo:sli_errors:count_period", "pass-rate", t("55m"), 1)
    sim.recorded("slo:sli_events:count_period", "pass-rate", t("55m"), 5)
    sim.firing(t("33m"), kernel)
    sim.firing(t("35m"), kernel)
    sim.firing(t("36m"))
    sim.firing_evaluations(kernel, 3)
    sim.pages_ever(kernel)
    sim.promtool(tmp_path)


def test_prod_kernel_page_survives_a_pushgateway_restart(tmp_path: Path) -> None:
    """prod: passing runs at 2m13s and 41m07s; a run failing the KERNEL step at 1h03m22s; the Pushgateway
    restarts without persistence at 1h21m27s; no run before the end (1h35m; the next is due by 2h03m).

    By the policy a KERNEL failure pages until a run passes: SelftestKernelStepFailed (prod: for 0m) fires
    from 1h04m (scraped 1h03m30s) and, no run having passed since, still fires at 1h22m and at 1h35m.
    (SelftestNoPassingRun would page only from 41m07s + 2h10m + 5m, at 2h57m.)
    """
    sim = Sim("prod", t("1h35m"))
    for finish in ("2m13s", "41m7s"):
        sim.run(t(finish))
    sim.run(t("1h3m22s"), fail=[CORE])
    sim.at(t("1h21m27s"), sim.gw.restart)
    kernel = (KERNEL, CORE)
    sim.firing(t("1h4m"), kernel)
    sim.firing(t("1h21m"), kernel)
    sim.firing(t("1h22m"), kernel)
    sim.firing(t("1h35m"), kernel)
    sim.promtool(tmp_path)


def test_simulator_encodes_scrapes_as_promtool_reads_them(tmp_path: Path) -> None:
    """The simulator itself: a run's series appear at the first scrape after its emit, the environment group
    is rewritten by the next emit, a run group is deleted by the first emit more than RUN_GROUP_KEEP after
    its push (then a staleness marker), and the restore/restart operations do what they say."""
    sim = Sim("dev", t("1h30m"))
    first = sim.run(t("1m12s"), fail=[CORE])
    sim.run(t("1h2m7s"))  # emitted 1h02m09s: the first run's group (pushed 1m14s) is over an hour old
    ts = MODEL.metrics.run_timestamp
    run1 = f'{ts}{{env="dev",job="selftest",outcome="page",result="fail",run="{run_id(first.timestamp)}"}}'
    sim.expect(run1, t("1m"), [])
    sim.expect(run1, t("1m30s"), [(run1, first.timestamp)])
    sim.expect(run1, t("1h2m"), [(run1, first.timestamp)])
    sim.expect(run1, t("1h2m30s"), [])  # deleted at 1h02m09s: stale from the 1h02m30s scrape
    last = f'{MODEL.metrics.last_run_timestamp}{{env="dev",job="selftest"}}'
    sim.expect(last, t("1h3m"), [(last, t("1h2m7s"))])
    sim.promtool(tmp_path)

    gw = Pushgateway(MODEL, "dev")
    assert gw.emit(report(100), 102) == COUNTED and gw.emit(report(100), 130) == "replayed"
    saved = gw.snapshot()
    assert gw.emit(report(200), 202) == COUNTED and len(gw.groups) == 3
    gw.restore(saved)
    assert len(gw.groups) == 2 and gw.emit(report(150), 152) == COUNTED  # the restored file never saw 200
    gw.restart()
    assert gw.groups == {} and gw.emit(report(120), 300) == COUNTED
