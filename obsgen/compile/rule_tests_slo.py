"""SLO cases of the generated rule tests: batch runs at the environment's cadence, expectations from intent.

The inputs are what `obsgen emit` leaves behind for a run-based SLI: one series per run, every T seconds (the
environment's cadence), holding the run's time (and its duration: 1 s, or a second above the threshold
for a bad run of a latency SLI), scraped once, at the first sample after the run: a run counts once however
often it is scraped, and one scrape is the least it takes (a Pushgateway keeps a run's group for an hour,
c.RUN_GROUP_KEEP; the selftest tests scrape it throughout). An SLI on events gets counters that step up at every
sample, starting at 100, so that `increase` extrapolates the errors and the events of a window alike. The
expectations never read the generated expressions: they count runs in each window (a run at r is in the window
of τ when τ - W < r ≤ τ), and take the windows, shares and factors from the fitting rules (`obsgen.model.slo_windows`)
applied to the spec's objective, period and cadence (`rule_tests_slo_counts`, in integers).

The expected state of an alert is worked out at every evaluation of a case, with the terms it is made of (each
condition's long and short ratio above its threshold, enough failed runs). promtool checks it at the case's
first and last evaluation, on both sides of every change of the state, and on both sides of the first change
of its terms from one combination to another (`rule_tests_slo_counts.pinned`): a condition that starts or
stops holding while another keeps the alert firing is pinned too, and nothing is checked twice where nothing
changes.

- page: every run passes for the longest page window (and at least a cadence: every window holds a run; then
  every error-ratio record reads 0, the period ratio 0, budget remaining 1; no page, no ticket), then every
  run fails for that window, then runs pass until two cadences after: the page state as the run counts say.
- ticket: one run in six fails (runs every T). The states are worked out over the longest ticket window (3d);
  promtool runs the case until the last change has held for the longest ticket short window (6h), or to the
  end: tickets and pages as the run counts say. (Running on until a long window is full would prove nothing
  more: one run in six fails throughout, so a full window holds the same ratio as a filling one.)
A run-count ratio exactly on a threshold is below it (the rules' margin, slo_windows.TIE); for an SLI on
events such a check is left out (the float comparison decides it).
"""
from __future__ import annotations

from dataclasses import dataclass

from obsgen.compile import conventions as c
from obsgen.model import durations, slo_windows
from obsgen.compile import rule_test_kit as kit
from obsgen.compile.rule_tests_slo_counts import Alerting, Runs, last_change, pinned
from obsgen.model import SLO, Environment, Model
from obsgen.model.placeholders import fill

STEP = 300  # seconds between samples
EVAL = STEP  # promtool evaluates every group at every step (an SLI on events: its short counts need it)
RUN_EVAL = 900  # a run-based SLI counts the runs themselves: evaluated every 15m, not every step


def evaluation_interval(slo: SLO) -> int:
    """The test file's evaluation interval for `slo`."""
    return RUN_EVAL if slo.sli.run_based else EVAL


START = 100  # counter value before the test
ALERTNAMES = {"page": "SLOBurnRatePage", "ticket": "SLOBurnRateTicket"}


@dataclass(frozen=True)
class _Sli:  # an SLI on events: its counters
    bad: str | None  # input series counting failed runs (None: total - good)
    good: str | None
    total: str | None  # None: bad + good
    labels: dict[str, str]  # labels the SLI expression returns


def slo_groups(model: Model, env: Environment, slo: SLO, rule_groups: list[kit.Doc]) -> list[kit.Doc]:
    sli = _sli(model, env, slo)
    if sli is None:
        return []
    cases = _Cases(model, env, slo, sli, rule_groups)
    return [cases.page(), cases.ticket()]


def _sli(model: Model, env: Environment, slo: SLO) -> _Sli | None:
    mine = {model.metrics.env_label: env.name}
    if slo.sli.run_based:
        return _Sli(None, None, None, mine)
    bad = kit.summed_rate(fill(slo.sli.error_query, env=env.name, window="{{window}}"))
    total = kit.summed_rate(fill(slo.sli.total_query, env=env.name, window="{{window}}"))
    if not bad or not total or bad[0] == total[0] or bad[2] != total[2]:
        return None
    return _Sli(kit.series(bad[0], bad[1]), None, kit.series(total[0], total[1]), bad[2])


def _seconds(text: str) -> int:
    return int(durations.seconds(text))


class _Cases:
    def __init__(self, model: Model, env: Environment, slo: SLO, sli: _Sli, rule_groups: list[kit.Doc]):
        self.model, self.env, self.slo, self.sli = model, env, slo, sli
        # an event-based SLI: a batch of events at every sample, as a request stream scraped every STEP
        self.cadence = int(env.cadence.seconds) if slo.sli.run_based else STEP
        self.every = evaluation_interval(slo)
        self.windows = c.burn_windows(slo, env)  # the fitting rules applied to the spec
        self.records = {r["record"]: r.get("labels", {}) for g in rule_groups for r in g["rules"] if "record" in r}
        self.rules = {r["labels"][c.LABEL_SLO_ALERT]: r for g in rule_groups for r in g["rules"] if "alert" in r}
        self.alerting = {severity: Alerting.of(self.windows, severity, slo.objective, slo.sli.run_based,
                                               severity in self.rules) for severity in ALERTNAMES}
        self.firing: dict[str, list[kit.Doc]] = {}
        self.matchers = c.slo_matchers(model, env, slo)
        self.name = (f"{env.name}: SLO {slo.id}, " + (f"runs every {kit.dur(self.cadence)}" if slo.sli.run_based
                                                     else f"events every {kit.dur(self.cadence)}"))

    def _longest(self, severity: str, which: str) -> int:
        return max(_seconds(getattr(b, which)) for b in self.windows if b.severity == severity)

    # -- the two groups ---------------------------------------------------------------------------------

    def page(self) -> kit.Doc:
        burn = self._longest("page", "long")
        # passing runs fill the longest page window before the failures, and every window holds a run
        onset = kit.ceil_to(max(burn, self.cadence + self.every), self.every)
        stop = onset + burn
        end = stop + 2 * self.cadence + 900
        runs = Runs(self.cadence, end, lambda r: onset <= r < stop)
        healthy = onset - self.every  # every record a number, no alert
        exprs = [self._expr(healthy, c.slo_error_ratio_record(window), 0)
                 for window in slo_windows.windows_used(self.windows)]
        exprs += [self._expr(healthy, c.SLO_ERROR_RATIO_PERIOD, 0), self._expr(healthy, c.SLO_BUDGET_REMAINING, 1)]
        times = range(healthy, end + 1, self.every)
        checks = [(healthy, "ticket", False)]
        checks += [(at, "page", fires) for at, fires in pinned(times, self.alerting["page"].states(runs, times))]
        return kit.group(f"{self.name}: all pass for {kit.dur(healthy)} (every ratio 0, budget remaining 1, no "
                         f"alert), then every run fails from {kit.dur(onset)} to {kit.dur(stop)}: pages as the run "
                         f"counts say until two runs after, at every change and the evaluation before it", STEP,
                         self._inputs(runs, end), self._alerts(checks), exprs)

    def ticket(self) -> kit.Doc:
        horizon = self._longest("ticket", "long")
        fails = lambda r: r // self.cadence % 6 == 0  # noqa: E731
        runs = Runs(self.cadence, horizon, fails)
        times = range(self.every, horizon + 1, self.every)
        states = {severity: self.alerting[severity].states(runs, times) for severity in ALERTNAMES}
        end = min(horizon, kit.ceil_to(max(last_change(times, s) for s in states.values())
                                       + self._longest("ticket", "short"), self.every))
        kept = range(self.every, end + 1, self.every)
        checks = [(at, severity, fires) for severity in ALERTNAMES
                  for at, fires in pinned(kept, states[severity][:len(kept)])]
        return kit.group(f"{self.name}: one run in six fails for {kit.dur(end)}: tickets and pages as the run "
                         f"counts say, at every change and the evaluation before it (none after, to "
                         f"{kit.dur(horizon)})", STEP, self._inputs(Runs(self.cadence, end, fails), end),
                         self._alerts(checks))

    # -- inputs -----------------------------------------------------------------------------------------

    def _inputs(self, runs: Runs, end: int) -> dict[str, str]:
        if self.slo.sli.run_based:
            return self._run_series(runs)
        samples = end // STEP + 12
        bad, good = [0] * (samples + 1), [0] * (samples + 1)  # runs first seen at each sample
        for t, failed in runs:
            (bad if failed else good)[-(-t // STEP)] += 1
        counts = {"bad": _accumulate(bad), "good": _accumulate(good)}
        counts["total"] = [b + g for b, g in zip(counts["bad"], counts["good"])]
        values = {self.sli.bad: counts["bad"], self.sli.good: counts["good"], self.sli.total: counts["total"]}
        return {series: kit.values_notation(v) for series, v in values.items() if series}

    def _run_series(self, runs: Runs) -> dict[str, str]:
        """One series per run as `obsgen emit` labels it, scraped once after the run. The label sets differ
        only in the run's id: each kind is formatted once, the id put in."""
        m = self.model.metrics
        latency = self.slo.sli.kind == "latency"
        marker = "\x00"  # kit.series sorts by label name: the id's place does not depend on its value
        names = {}
        for failed in (False, True):
            bad = failed and not latency
            labels = {**self.sli.labels, c.LABEL_RUN: marker, c.LABEL_RESULT: "fail" if bad else "pass",
                      c.LABEL_OUTCOME: "ticket" if bad else "pass"}
            names[failed] = (kit.series(m.run_timestamp, labels).split(marker),
                             kit.series(m.run_duration, labels).split(marker))
        slow = c.fmt_number(self.slo.sli.threshold_seconds + 1) if latency else ""
        out = {}
        for t, failed in runs:
            run, lead = c.run_id(t), f"_x{-(-t // STEP)} " if t > 0 else ""
            timestamp, duration = names[failed]
            out[run.join(timestamp)] = f"{lead}{t}"
            if latency:
                out[run.join(duration)] = f"{lead}{slow if failed else '1'}"
        return out

    # -- expectations -----------------------------------------------------------------------------------

    def _alerts(self, checks: list[tuple[int, str, bool]]) -> list[kit.Doc]:
        return [self._alert(severity, at, fires) for at, severity, fires in sorted(checks)]

    def _alert(self, severity: str, at: int, fires: bool) -> kit.Doc:
        """The alert check at `at`: the alert as the README describes it when `fires`, none otherwise."""
        if severity not in self.rules:  # no such alert here (an SLO that does not page, or too few runs)
            return kit.alert_case(at, ALERTNAMES[severity], [])
        if fires and severity not in self.firing:
            self.firing[severity] = [kit.intended(*self._intended(severity), self.sli.labels, 0.0)]
        return kit.alert_case(at, self.rules[severity]["alert"], self.firing[severity] if fires else [])

    def _intended(self, severity: str) -> tuple[dict[str, str], dict[str, str]]:
        """The SLO alert's labels and annotations as the README describes them, from the model."""
        model, env, slo = self.model, self.env, self.slo
        labels = {model.metrics.env_label: env.name, c.LABEL_SLO: slo.id, c.LABEL_SLO_ALERT: severity,
                  c.LABEL_SEVERITY: "critical" if severity == "page" else "warning", c.LABEL_TIER: c.ALL_STEPS,
                  c.LABEL_STEP: c.ALL_STEPS, c.LABEL_SERVICE: model.service.name}
        windows = "; or ".join(slo_windows.describe(w) for w in self.windows if w.severity == severity)
        annotations = {
            "summary": f"SLO {slo.id} in {env.name} is burning its error budget too fast ({severity})",
            "description": (f"{slo.description} Objective {c.fmt_number(slo.objective * 100)} % over {slo.period}, "
                            f"{c.slo_basis(slo, env)}; burn rate above {windows}."),
            "remediation": slo.remediation or "Find what consumes the error budget on the dashboard.",
            "runbook_url": model.service.runbook_url(slo.runbook),
            **kit.intended_dashboard(model, env, c.ALL_STEPS),
        }
        return labels, annotations

    def _expr(self, at: int, record: str, value: float) -> kit.Doc:
        labels = {**self.sli.labels, **self.records[record]}
        return kit.expr_case(at, c.selector(record, self.matchers), [(kit.series(record, labels), value)])


def _accumulate(added: list[int]) -> list[int]:
    """Counter values from START: after the runs first seen at each sample."""
    out, value = [], START
    for n in added:
        value += n
        out.append(value)
    return out
