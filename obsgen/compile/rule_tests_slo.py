"""SLO cases of the generated rule tests: batch runs at the environment's cadence, expectations from intent.

The inputs are what `obsgen emit` leaves behind for a run-based SLI: one series per run, every T seconds (the
environment's cadence), holding the run's time (and its duration: 1 s, or a second above the threshold
for a bad run of a latency SLI), scraped once, at the first sample after the run: a run counts once however
often it is scraped, and one scrape is the least it takes (a Pushgateway keeps a run's group for an hour,
c.RUN_GROUP_KEEP; the selftest tests scrape it throughout). An SLI on events gets counters that step up at every sample,
starting at 100, so that `increase` extrapolates the errors and the events of a window alike. The expectations never read the generated expressions: they count runs in
each window (a run at r is in the window of τ when τ - W < r ≤ τ), and take the windows, shares and
factors from the fitting rules (`obsgen.slo_windows`) applied to the spec's objective, period and cadence.

- page: every run passes for a day (then every error-ratio record reads 0, the period ratio 0, budget
  remaining 1; no page, no ticket), then every run fails for the longest page window, then runs pass: the
  page state every 15m from the first failure to two cadences after the last, as the run counts say.
- ticket: one run in six fails for 3d (runs every T): the ticket and page states every 2h, as the run
  counts say.
A run-count ratio exactly on a threshold is below it (the rules' margin, slo_windows.TIE); for an SLI on
events such a check is left out (the float comparison decides it).
"""
from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from fractions import Fraction

from obsgen import conventions as c
from obsgen import durations, slo_windows
from obsgen.compile import rule_test_kit as kit
from obsgen.model import SLO, Environment, Model
from obsgen.placeholders import fill

STEP = 300  # seconds between samples
EVAL = STEP  # promtool evaluates every group at every step (an SLI on events: its short counts need it)
RUN_EVAL = 900  # a run-based SLI counts the runs themselves: evaluated at the checks' 15m, not every step


def evaluation_interval(slo: SLO) -> int:
    """The test file's evaluation interval for `slo`."""
    return RUN_EVAL if slo.sli.run_based else EVAL
START = 100  # counter value before the test
DAY = 86400


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


class _Cases:
    def __init__(self, model: Model, env: Environment, slo: SLO, sli: _Sli, rule_groups: list[kit.Doc]):
        self.model, self.env, self.slo, self.sli = model, env, slo, sli
        # an event-based SLI: a batch of events at every sample, as a request stream scraped every STEP
        self.cadence = int(env.cadence.seconds) if slo.sli.run_based else STEP
        self.windows = c.burn_windows(slo, env)  # the fitting rules applied to the spec
        self.budget = 1 - slo.objective
        self.records = {r["record"]: r.get("labels", {}) for g in rule_groups for r in g["rules"] if "record" in r}
        self.rules = {r["labels"][c.LABEL_SLO_ALERT]: r for g in rule_groups for r in g["rules"] if "alert" in r}
        self.matchers = c.slo_matchers(model, env, slo)
        self.name = (f"{env.name}: SLO {slo.id}, " + (f"runs every {kit.dur(self.cadence)}" if slo.sli.run_based
                                                     else f"events every {kit.dur(self.cadence)}"))

    # -- the three groups -------------------------------------------------------------------------------

    def page(self) -> kit.Doc:
        onset = DAY
        burn = max(durations.seconds(b.long) for b in self.windows if b.severity == "page")
        stop = onset + int(burn)
        end = stop + 2 * self.cadence + 900
        runs = self._runs(end, lambda r: onset <= r < stop)
        healthy = onset - evaluation_interval(self.slo)  # a day of passing runs: every record a number, no alert
        exprs = [self._expr(healthy, c.slo_error_ratio_record(window), 0)
                 for window in sorted({w for b in self.windows for w in (b.long, b.short)}, key=durations.seconds)]
        exprs += [self._expr(healthy, c.SLO_ERROR_RATIO_PERIOD, 0), self._expr(healthy, c.SLO_BUDGET_REMAINING, 1)]
        checks = [self._alert(runs, severity, healthy) for severity in ("page", "ticket")]
        checks += [self._alert(runs, "page", at) for at in range(onset, end + 1, 900)]
        return kit.group(f"{self.name}: all pass for {kit.dur(healthy)} (every ratio 0, budget remaining 1, no "
                         f"alert), then every run fails from {kit.dur(onset)} to {kit.dur(stop)}: pages as the run "
                         f"counts say, every 15m until two runs after", STEP, self._inputs(runs, end),
                         [a for a in checks if a], exprs)

    def ticket(self) -> kit.Doc:
        end = 3 * DAY
        runs = self._runs(end, lambda r: r // self.cadence % 6 == 0)
        checks = [self._alert(runs, severity, at) for at in range(7200, end + 1, 7200)
                  for severity in ("ticket", "page")]
        return kit.group(f"{self.name}: one run in six fails for 3d: tickets and pages as the run counts say",
                         STEP, self._inputs(runs, end), [a for a in checks if a])

    # -- runs and inputs --------------------------------------------------------------------------------

    def _runs(self, end: int, fails) -> "_Runs":
        """Every run up to `end`: one every cadence, the first at one cadence, failed when `fails(t)`."""
        return _Runs([(t, bool(fails(t))) for t in range(self.cadence, end + 1, self.cadence)])

    def _inputs(self, runs: "_Runs", end: int) -> dict[str, str]:
        if self.slo.sli.run_based:
            return self._run_series(runs, end)
        samples = end // STEP + 12
        steps = {"bad": [0] * (samples + 1), "good": [0] * (samples + 1)}  # runs first seen at each sample
        for t, failed in runs:
            steps["bad" if failed else "good"][-(-t // STEP)] += 1
        counts = {kind: list(itertools.accumulate(added, initial=START))[1:] for kind, added in steps.items()}
        total = [b + g for b, g in zip(counts["bad"], counts["good"])]
        values = {self.sli.bad: counts["bad"], self.sli.good: counts["good"], self.sli.total: total}
        return {series: " ".join(map(str, v)) for series, v in values.items() if series}

    def _run_series(self, runs: "_Runs", end: int) -> dict[str, str]:
        """One series per run as `obsgen emit` labels it, scraped once after the run."""
        m = self.model.metrics
        latency = self.slo.sli.kind == "latency"
        out = {}
        for t, failed in runs:
            labels = {**self.sli.labels, c.LABEL_RUN: c.run_id(t), c.LABEL_RESULT: "fail" if failed and not latency
                      else "pass", c.LABEL_OUTCOME: "ticket" if failed and not latency else "pass"}
            lead = f"_x{-(-t // STEP)} " if t > 0 else ""
            out[kit.series(m.run_timestamp, labels)] = f"{lead}{t}"
            if latency:
                duration = c.fmt_number(self.slo.sli.threshold_seconds + 1) if failed else "1"
                out[kit.series(m.run_duration, labels)] = f"{lead}{duration}"
        return out

    # -- expectations -----------------------------------------------------------------------------------

    @staticmethod
    def _ratio(runs: "_Runs", at: int, window: str) -> Fraction | None:
        failed, total = runs.count(at - durations.seconds(window), at)
        return Fraction(failed, total) if total else None

    def _alert(self, runs: "_Runs", severity: str, at: int) -> kit.Doc | None:
        """The alert check at `at` from the run counts, or None when a ratio sits on a threshold: both
        windows' error ratios above the threshold, and at least MIN_FAILED_RUNS failed runs in the long one."""
        fires = False
        for b in (w for w in self.windows if w.severity == severity):
            threshold = b.threshold(self.slo.objective)
            ratios = [self._ratio(runs, at, w) for w in (b.long, b.short)]
            run_based = self.slo.sli.run_based
            if not run_based and any(r is not None and abs(r - threshold) < slo_windows.TIE for r in ratios):
                return None  # an event ratio on a threshold: the float comparison decides
            above = threshold + slo_windows.TIE if run_based else threshold  # the rule's margin: ties stay below
            failed, _ = runs.count(at - durations.seconds(b.long), at)
            enough = failed >= slo_windows.MIN_FAILED_RUNS or not run_based
            fires = fires or (all(r is not None and r > above for r in ratios) and enough)
        if severity not in self.rules:  # no such alert here (an SLO that does not page, or too few runs)
            return kit.alert_case(at, {"page": "SLOBurnRatePage", "ticket": "SLOBurnRateTicket"}[severity], [])
        rule = self.rules[severity]
        firing = [kit.intended(*self._intended(severity), self.sli.labels, 0.0)] if fires else []
        return kit.alert_case(at, rule["alert"], firing)

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


class _Runs:
    """(time, failed) of runs in time order, with failed and total counts of any window in O(log n)."""

    def __init__(self, runs: list[tuple[int, bool]]):
        self.runs = runs
        self.times = [t for t, _ in runs]
        self.failed = list(itertools.accumulate((f for _, f in runs), initial=0))

    def __iter__(self):  # noqa: ANN204
        return iter(self.runs)

    def count(self, since: float, at: float) -> tuple[int, int]:
        """(failed, all) runs at t with since < t <= at."""
        lo, hi = bisect.bisect_right(self.times, since), bisect.bisect_right(self.times, at)
        return self.failed[hi] - self.failed[lo], hi - lo
