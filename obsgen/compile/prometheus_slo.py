"""Prometheus rules of an SLO: the error ratio over every burn window used, the period's occurrences and the
budget remaining, and the burn-rate page and ticket (the windows fitted to the cadence: `obsgen.model.slo_windows`).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from obsgen.compile import conventions as c
from obsgen.model import durations, slo_windows
from obsgen.compile import queries
from obsgen.model import SLO, Environment, Model

Rule = dict[str, Any]
PERIOD_INTERVAL = "5m"  # the period-long ratio is costly and changes slowly


def _slo_labels(model: Model, env: Environment, slo: SLO) -> dict[str, str]:
    return {model.metrics.env_label: env.name, c.LABEL_SLO: slo.id}


def slo_records(model: Model, env: Environment, slo: SLO) -> list[Rule]:
    """The error ratio over every window the fitted burn conditions use, and nothing else. A run-based SLI
    first records its bad runs and all runs of each window (each a single pass over the run series, which
    the ratio and the burn conditions' two-failed-runs test then read)."""
    windows = slo_windows.windows_used(c.burn_windows(slo, env))
    labels = _slo_labels(model, env, slo)
    if not slo.sli.run_based:
        return [{"record": c.slo_error_ratio_record(w), "expr": queries.sli_error_ratio(model, env, slo, w),
                 "labels": labels} for w in windows]
    matchers, rules = c.slo_matchers(model, env, slo), []
    for w in windows:
        errors, events = queries.run_counts(model, env, slo, w)
        counted = {kind: c.selector(c.slo_run_count_record(kind, w), matchers) for kind in ("errors", "events")}
        rules += [{"record": c.slo_run_count_record("errors", w), "expr": errors, "labels": labels},
                  {"record": c.slo_run_count_record("events", w), "expr": events, "labels": labels},
                  {"record": c.slo_error_ratio_record(w), "expr": _ratio(counted), "labels": labels}]
    return rules


def _ratio(counted: dict[str, str]) -> str:
    """Bad runs / runs from the two count records: 0 when none was bad, no sample when there was no run."""
    return f"({counted['errors']} or 0 * {counted['events']})\n/\n{counted['events']}"


def count_window(model: Model) -> str:
    """The window of the per-evaluation error and event counts of an SLI on events: twice the period group's
    interval, so that every event is counted twice even if an evaluation is late (errors and events alike,
    so their ratio holds)."""
    every = max(model.timing.evaluation_interval, PERIOD_INTERVAL, key=durations.seconds)
    return durations.format_seconds(2 * durations.seconds(every))


def slo_period_records(model: Model, env: Environment, slo: SLO) -> list[Rule]:
    """Occurrences over the period: bad / all. A run-based SLI counts the period's runs themselves (one
    series per run); one on events sums short counts over the period. Budget remaining is 1 (nothing
    consumed) while the period holds nothing."""
    labels, matchers = _slo_labels(model, env, slo), c.slo_matchers(model, env, slo)
    if slo.sli.run_based:
        errors, events = queries.run_counts(model, env, slo, slo.period)
        counted = {kind: c.selector(c.slo_period_count_record(kind), matchers) for kind in ("errors", "events")}
        counted["errors"] = f"({counted['errors']} or 0 * {counted['events']})"
        records = [{"record": c.slo_period_count_record("errors"), "expr": errors, "labels": labels},
                   {"record": c.slo_period_count_record("events"), "expr": events, "labels": labels}]
    else:
        window = count_window(model)
        errors, events = queries.sli_counts(model, env, slo, window)
        counted = {kind: f"sum_over_time({c.selector(c.slo_count_record(kind, window), matchers)}[{slo.period}])"
                   for kind in ("errors", "events")}
        records = [{"record": c.slo_count_record("errors", window), "expr": errors, "labels": labels},
                   {"record": c.slo_count_record("events", window), "expr": events, "labels": labels}]
    period = c.selector(c.SLO_ERROR_RATIO_PERIOD, matchers)
    return records + [
        {"record": c.SLO_ERROR_RATIO_PERIOD, "expr": f"{counted['errors']}\n/\n({counted['events']} > 0)",
         "labels": labels},
        {"record": c.SLO_BUDGET_REMAINING, "expr": _budget_remaining(slo, env, counted, period), "labels": labels},
    ]


def _budget_remaining(slo: SLO, env: Environment, counted: dict[str, str], period: str) -> str:
    """1 - the share of the period's error budget spent; 1 while the period holds nothing. A run-based SLO's
    budget is counted in runs, over at least the runs its cadence promises in a period (P/T): one failed
    run of a new environment spends 1/B of it, not the whole budget nineteen times over. An SLI on events
    has no such floor."""
    budget = c.fmt_number(1 - slo.objective)
    if not slo.sli.run_based:
        return f"1 - {period} / {budget}\nor on ()\nvector(1)"
    floor = c.fmt_number(Fraction(int(durations.seconds(slo.period))) / Fraction(int(env.cadence.seconds)))
    return (f"1 - {counted['errors']}\n/\n({budget} * clamp_min({counted['events']}, {floor}))\n"
            f"or on ()\nvector(1)")


def burn_conditions(slo: SLO, env: Environment, severity: str) -> list[slo_windows.BurnWindow]:
    """The fitted burn-rate conditions of one severity (none for the page of an SLO that does not page)."""
    if (severity == "page" and not slo.page) or not c.burns(slo, env):
        return []
    return [w for w in c.burn_windows(slo, env) if w.severity == severity]


def slo_alerts(model: Model, env: Environment, slo: SLO) -> list[Rule]:
    rules: list[Rule] = []
    if not c.burns(slo, env):  # too few runs in the budget: see conventions.burns
        return rules
    budget = c.fmt_number(1 - slo.objective)
    matchers = c.slo_matchers(model, env, slo)
    for severity, alertname, level in (("page", "SLOBurnRatePage", "critical"),
                                       ("ticket", "SLOBurnRateTicket", "warning")):
        if severity == "page" and not slo.page:
            continue
        clauses, factors = [], []
        for window in burn_conditions(slo, env, severity):
            factor = c.fmt_number(window.factor)
            factors.append(slo_windows.describe(window))
            # a run-counting ratio right at a threshold (one run's share of the budget) is not above it: the
            # margin keeps float rounding from deciding, which made a ticket open and close on alternate days
            margin = f" + {c.fmt_number(slo_windows.TIE)}" if slo.sli.run_based else ""
            conditions = [f"{c.selector(c.slo_error_ratio_record(w), matchers)} > ({factor} * {budget}{margin})"
                          for w in dict.fromkeys((window.long, window.short))]
            if slo.sli.run_based:
                # at least two failed runs: with irregular runs a window may hold a single run, and one failing
                # run must never page or ticket on its own
                bad = c.selector(c.slo_run_count_record("errors", window.long), matchers)
                conditions.append(f"{bad} >= {slo_windows.MIN_FAILED_RUNS}")
            clauses.append("(\n" + "\nand\n".join(conditions) + "\n)")
        rules.append({
            "alert": alertname,
            "expr": "\nor\n".join(clauses),
            "labels": {**_slo_labels(model, env, slo), c.LABEL_SLO_ALERT: severity, c.LABEL_SEVERITY: level,
                       c.LABEL_TIER: c.ALL_STEPS, c.LABEL_STEP: c.ALL_STEPS, c.LABEL_SERVICE: model.service.name},
            "annotations": {
                "summary": f"SLO {slo.id} in {env.name} is burning its error budget too fast ({severity})",
                "description": (f"{slo.description} Objective {c.fmt_number(slo.objective * 100)} % over "
                                f"{slo.period}, {c.slo_basis(slo, env)}; burn rate above "
                                + "; or ".join(factors) + "."),
                "remediation": slo.remediation or "Find what consumes the error budget on the dashboard.",
                "runbook_url": model.service.runbook_url(slo.runbook),
            },
        })
    return rules
