"""SLO cases of the generated rule tests: burn-rate page and ticket alerts, and exact recorded values.

Samples every 5m (the shortest window needs two), evaluations every 30m: promtool's cost is per
evaluation, and 3d of them at 30m keep a test file well under a second. The SLO rules have no `for`,
so only the checks need to fall on an evaluation. The counters start at 0 with a constant number of
runs per 5m, so a burn of m x the budget is an error ratio of m * (1 - objective). promtool does not
extrapolate a counter back past its zero: before a window has passed it only sees the data since 0.

- page: healthy for the longest page window (6h), then 15x the budget (else the first of 10x, 5x,
  20x ... above the factor of the first page condition it can trip with an error ratio below 1) for
  that condition's long window (1h): pages then; quiet while healthy and at the last evaluation where
  no page condition is within 98 % of its factor (15x over 28d: after 30m; it would start at ~54m).
- ticket: healthy for a third of the longest ticket window (1d), then 2x the budget (else the first of
  1x, 3x, 0.5x ... below 98 % of every page factor that trips a ticket condition by then): tickets at
  3d, when the 3d window is 2/3 burn (1.33x > 0.93x over 28d) and the 6h window all burn; quiet at
  the last evaluation where no ticket condition is within 98 % of its factor (20h of burn over 28d);
  never pages (2x stays below the 5.6x and 13.44x page factors).
- exact values: a steady burn from 0, evaluated at 3d when every window is full of it: each
  `ratio_rate` window, the period ratio and the budget remaining, computed with the engine's float
  operations (`rule_test_kit.rate`). The burn is the ticket burn if some number of runs per 5m makes
  every value the round number it stands for, else the power-of-two error ratio in the ticket band
  nearest to it (`1 - good/total` of a latency SLI never gives exactly 0.1, it gives 0.125). The 5m
  ratio is the same at every evaluation, so its average over the period is exact whatever the
  summation order. It tickets and does not page.

Every alert expectation is also checked against those computations, so a scenario that would not
prove what its name says fails the build instead of producing a wrong test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from obsgen import conventions as c
from obsgen import durations
from obsgen.compile import rule_test_kit as kit
from obsgen.compile.prometheus import burn_conditions
from obsgen.model import SLO, Environment, Model
from obsgen.placeholders import fill

STEP = 300  # seconds between samples
EVAL = 1800  # seconds between evaluations: the checks fall on it (SLO rules have no `for`)
TAIL = 12  # samples after the last evaluation
FAST = (15, 10, 5, 20, 30, 50, 100)
SLOW = (2, 1, 3, Fraction(1, 2), 4, 5, Fraction(1, 4), 10)
MARGIN = Fraction(98, 100)


@dataclass(frozen=True)
class _Sli:
    series: dict[str, str]  # role (bad | good | total) -> input series
    ratio: Callable[[dict[str, float]], float]  # the error ratio from the roles' rates, as PromQL computes it
    labels: dict[str, str]  # labels the SLI expression returns


@dataclass(frozen=True)
class _Condition:
    window: str  # the long window, as the recording rule names it
    long: int
    short: int
    factor: Fraction
    threshold: float  # factor * budget as the rule computes it


def slo_groups(model: Model, env: Environment, slo: SLO, rule_groups: list[kit.Doc]) -> list[kit.Doc]:
    sli = _sli(model, env, slo)
    if sli is None:
        return []
    cases = _SloCases(model, env, slo, sli, rule_groups)
    return [g for g in (cases.page(), cases.ticket(), cases.exact()) if g]


def _sli(model: Model, env: Environment, slo: SLO) -> _Sli | None:
    m, mine = model.metrics, {model.metrics.env_label: env.name}
    if slo.sli.kind == "pass_rate":
        return _Sli({"bad": kit.series(m.runs_total, {**mine, "result": "fail"}),
                     "good": kit.series(m.runs_total, {**mine, "result": "pass"})},
                    lambda r: r["bad"] / (r["bad"] + r["good"]), mine)
    if slo.sli.kind == "latency":
        le = c.fmt_number(slo.sli.threshold_seconds)
        return _Sli({"good": kit.series(m.run_duration + "_bucket", {**mine, "le": le}),
                     "total": kit.series(m.run_duration + "_count", mine)},
                    lambda r: 1 - r["good"] / r["total"], mine)
    bad = kit.summed_rate(fill(slo.sli.error_query, env=env.name, window="{{window}}"))
    total = kit.summed_rate(fill(slo.sli.total_query, env=env.name, window="{{window}}"))
    if not bad or not total or bad[0] == total[0] or bad[2] != total[2]:
        return None
    return _Sli({"bad": kit.series(bad[0], bad[1]), "total": kit.series(total[0], total[1])},
                lambda r: r["bad"] / r["total"], bad[2])


_ROUND_CHOICES: dict[tuple, tuple[Fraction, int]] = {}  # see _SloCases._round_inputs


class _Scenario:
    """Counters from 0 over segments of (steps, burn multiple), with a constant number of runs per step."""

    def __init__(self, sli: _Sli, budget: Fraction, segments: list[tuple[int, Fraction]], scale: int = 1):
        ratios = [Fraction(mult) * budget for _, mult in segments]
        runs = math.lcm(*(r.denominator for r in ratios)) * scale
        bad = [(steps, int(r * runs)) for (steps, _), r in zip(segments, ratios)]
        increments = {"bad": bad, "good": [(n, runs - b) for n, b in bad], "total": [(n, runs) for n, _ in bad]}
        self.sli = sli
        self.inputs = {series: kit.counter_notation(increments[role]) for role, series in sli.series.items()}
        self.values = {role: kit.counter_values(increments[role]) for role in sli.series}

    def ratio(self, window: int, at: int) -> float | None:
        rates = {role: kit.rate(values, STEP, at, window) for role, values in self.values.items()}
        return None if None in rates.values() else self.sli.ratio(rates)


class _SloCases:
    def __init__(self, model: Model, env: Environment, slo: SLO, sli: _Sli, rule_groups: list[kit.Doc]):
        self.env, self.slo, self.sli = env, slo, sli
        self.budget = 1 - slo.objective
        self.budget_text = c.fmt_number(self.budget)  # as the rules write it
        budget = float(self.budget_text)
        self.records = {r["record"]: r.get("labels", {}) for g in rule_groups for r in g["rules"] if "record" in r}
        self.rules = {r["labels"][c.LABEL_SLO_ALERT]: r for g in rule_groups for r in g["rules"] if "alert" in r}
        self.conditions = {severity: [_Condition(long, int(durations.seconds(long)), int(durations.seconds(short)),
                                                 Fraction(factor), float(factor) * budget)
                                      for long, short, factor in burn_conditions(slo, severity)]
                           for severity in ("page", "ticket")}
        self.matchers = c.slo_matchers(model, env, slo)
        self.name = f"{env.name}: SLO {slo.id}"

    # -- the three groups -------------------------------------------------------------------------------

    def page(self) -> kit.Doc | None:
        choice = self._fast()
        if not choice:
            return None
        condition, mult = choice
        healthy = max(p.long for p in self.conditions["page"])
        quiet = max(x for x in range(0, condition.long, EVAL) if not self._near("page", mult, x, healthy))
        scenario = self._scenario([(healthy, 0), (condition.long, mult)])
        checks = [self._alert(scenario, "page", healthy, False)]
        if quiet:
            checks.append(self._alert(scenario, "page", healthy + quiet, False))
        checks.append(self._alert(scenario, "page", healthy + condition.long, True))
        return kit.group(
            f"{self.name} burning {self._burn(mult)} for {kit.dur(condition.long)} after {kit.dur(healthy)} "
            f"healthy pages (SLOBurnRatePage), not "
            + (f"after {kit.dur(quiet)} of burn nor " if quiet else "") + "while healthy",
            STEP, scenario.inputs, checks)

    def ticket(self) -> kit.Doc | None:
        mult = self._slow()
        if mult is None:
            return None
        longest, healthy = self._ticket_timeline()
        burn = longest - healthy
        quiet = max(x for x in range(0, burn, EVAL) if not self._near("ticket", mult, x, healthy))
        scenario = self._scenario([(healthy, 0), (burn, mult)])
        return kit.group(
            f"{self.name} burning {self._burn(mult)} after {kit.dur(healthy)} healthy tickets "
            f"(SLOBurnRateTicket) at {kit.dur(longest)}, not after {kit.dur(quiet)} of burn; never pages",
            STEP, scenario.inputs,
            [self._alert(scenario, "ticket", healthy + quiet, False),
             self._alert(scenario, "page", longest, False),
             self._alert(scenario, "ticket", longest, True)])

    def exact(self) -> kit.Doc:
        windows = {w: int(durations.seconds(w)) for w in c.SLO_WINDOWS}
        at = max(windows.values())
        mult, scenario = self._round_inputs(windows, at)
        exprs = []
        for window, seconds in windows.items():
            record = c.slo_error_ratio_record(window)
            exprs.append(self._expr(at, record, self._labels(record), scenario.ratio(seconds, at)))
        first = c.slo_error_ratio_record(c.SLO_WINDOWS[0])
        recorded = {scenario.ratio(windows[c.SLO_WINDOWS[0]], t) for t in range(EVAL, at + 1, EVAL)}
        if len(recorded) != 1:
            raise AssertionError(f"rule tests: the {first} ratio of SLO {self.slo.id} is not constant")
        period = recorded.pop()
        remaining = 1 - period / float(self.budget_text)
        period_labels = {**self._labels(first), **self.records[c.SLO_ERROR_RATIO_PERIOD]}
        exprs.append(self._expr(at, c.SLO_ERROR_RATIO_PERIOD, period_labels, period))
        exprs.append(self._expr(at, c.SLO_BUDGET_REMAINING,
                                {**period_labels, **self.records[c.SLO_BUDGET_REMAINING]}, remaining))
        tickets = self._ticket_band(mult)
        alerts = [self._alert(scenario, "page", at, False),
                  self._alert(scenario, "ticket", at, True)] if tickets else []
        return kit.group(
            f"{self.name} steady {self._burn(mult)} for {kit.dur(at)}: every ratio_rate window and the period "
            f"ratio read {c.fmt_number(period)}, budget remaining {c.fmt_number(remaining)}"
            + ("; tickets, does not page" if tickets else ""),
            STEP, scenario.inputs, alerts, exprs)

    def _round_inputs(self, windows: dict[str, int], at: int) -> tuple[Fraction, _Scenario]:
        """The steady burn of the exact-values group and its series: the ticket burn, else the power-of-two
        error ratio in the ticket band nearest to it, with the fewest runs per step that make every recorded
        value the round number it stands for (for a latency SLI `1 - good/total` is never exactly 0.1); the
        ticket burn with the engine's not-so-round values if none does."""
        slow = self._slow() or Fraction(1)
        key = (self.slo.sli.kind, self.budget, self.budget_text, tuple(sorted(windows.items())), at, slow)
        if key not in _ROUND_CHOICES:  # the search is costly and its answer is the same for every such SLO
            _ROUND_CHOICES[key] = self._search_round(windows, at, slow)
        mult, scale = _ROUND_CHOICES[key]
        return mult, self._scenario([(at, mult)], scale)

    def _search_round(self, windows: dict[str, int], at: int, slow: Fraction) -> tuple[Fraction, int]:
        powers = [Fraction(1, 2 ** k) / self.budget for k in range(1, 30)]
        candidates = [slow] + sorted((m for m in powers if self._ticket_band(m)), key=lambda m: abs(m - slow))
        budget = float(self.budget_text)
        for mult in candidates:
            ratio = float(mult * self.budget)
            for scale in range(1, 65):
                scenario = self._scenario([(at, mult)], scale)
                if all(scenario.ratio(s, at) == ratio for s in windows.values()) \
                        and 1 - ratio / budget == float(1 - mult):
                    return mult, scale
        return slow, 1

    # -- scenario design (exact fractions) --------------------------------------------------------------

    def _fast(self) -> tuple[_Condition, int] | None:
        """The first page condition a burn with an error ratio below 1 can trip, and that burn."""
        for condition in self.conditions["page"]:
            for mult in FAST:
                if mult * MARGIN > condition.factor and mult * self.budget < 1:
                    return condition, mult
        return None

    def _slow(self) -> Fraction | None:
        """A burn below every page factor that trips a ticket condition by the end of the ticket timeline."""
        longest, healthy = self._ticket_timeline()
        for mult in map(Fraction, SLOW):
            if self._ticket_band(mult) and self._trips("ticket", mult, longest - healthy, healthy):
                return mult
        return None

    def _ticket_band(self, mult: Fraction) -> bool:
        """Whether a steady burn, once every window is full of it, tickets and does not page."""
        page_floor = min(p.factor for p in self.conditions["page"]) * MARGIN
        return mult < page_floor and mult * self.budget < 1 and self._trips("ticket", mult, STEP, 0)  # all burn

    def _ticket_timeline(self) -> tuple[int, int]:
        longest = max(t.long for t in self.conditions["ticket"])
        return longest, longest // 3 // EVAL * EVAL

    @staticmethod
    def _share(window: int, burn: int, healthy: int) -> Fraction:
        """The burning share of a window `burn` seconds into a burn that followed `healthy` seconds."""
        return Fraction(min(burn, window), min(window, healthy + burn))

    def _trips(self, severity: str, mult: Fraction, burn: int, healthy: int) -> bool:
        return any(mult * self._share(k.long, burn, healthy) * MARGIN > k.factor
                   and mult * self._share(k.short, burn, healthy) * MARGIN > k.factor
                   for k in self.conditions[severity])

    def _near(self, severity: str, mult: Fraction, burn: int, healthy: int) -> bool:
        return any(mult * self._share(k.long, burn, healthy) >= k.factor * MARGIN
                   and mult * self._share(k.short, burn, healthy) >= k.factor * MARGIN
                   for k in self.conditions[severity])

    # -- expectations -----------------------------------------------------------------------------------

    def _scenario(self, spans: list[tuple[int, Fraction]], scale: int = 1) -> _Scenario:
        steps = [(seconds // STEP, Fraction(mult)) for seconds, mult in spans]
        steps[-1] = (steps[-1][0] + TAIL, steps[-1][1])
        return _Scenario(self.sli, self.budget, steps, scale)

    def _labels(self, record: str) -> dict[str, str]:
        return {**self.sli.labels, **self.records[record]}

    def _expr(self, at: int, record: str, labels: dict[str, str], value: float | None) -> kit.Doc:
        if value is None:
            raise AssertionError(f"rule tests: no {record} value for SLO {self.slo.id} at {at}s")
        return kit.expr_case(at, c.selector(record, self.matchers), [(kit.series(record, labels), value)])

    def _alert(self, scenario: _Scenario, severity: str, at: int, fires: bool) -> kit.Doc:
        """The alert check at `at`; the first condition whose long and short windows trip gives the value."""
        value, record = None, ""
        for condition in self.conditions[severity]:
            long, short = scenario.ratio(condition.long, at), scenario.ratio(condition.short, at)
            if long is not None and short is not None and min(long, short) > condition.threshold:
                value, record = long, c.slo_error_ratio_record(condition.window)
                break
        if (value is not None) != fires:
            raise AssertionError(f"rule tests: SLO {self.slo.id} {severity} at {at}s would "
                                 f"{'not ' if fires else ''}fire in {self.env.name}")
        rule = self.rules[severity]
        firing = [kit.expected(rule, {"__name__": record, **self._labels(record)}, value)] if fires else []
        return kit.alert_case(at, rule["alert"], firing)

    def _burn(self, mult: Fraction | int) -> str:
        return f"{c.fmt_number(mult)}x the budget (error ratio {c.fmt_number(mult * self.budget)})"
