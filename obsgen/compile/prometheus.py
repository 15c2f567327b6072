"""Prometheus rule files: selftest recording and alerting rules, and SLO burn-rate rules.

One file for the selftest rules and one per SLO, per environment. Every alert
carries the labels Alertmanager routes and inhibits on (tier, severity,
step_id, and slo/slo_alert for SLO alerts) and the annotations a responder
needs (summary, description, remediation, runbook_url).
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from obsgen import conventions as c
from obsgen import durations, queries, render, slo_windows
from obsgen.artifact import Artifact
from obsgen.model import SLO, Alert, Environment, Model, Step
from obsgen.placeholders import fill

Rule = dict[str, Any]
PERIOD_INTERVAL = "5m"  # the period-long ratio is costly and changes slowly
LIVENESS_MARGIN = "10m"  # run time, push, scrape and evaluation delays on top of two missed runs


def compile_prometheus(model: Model, env: Environment) -> list[Artifact]:
    return list(_compile(model, model.source, env))


def rule_documents(model: Model, env: Environment) -> dict[str, Any]:
    """The generated rule files parsed back ({path: {"groups": [...]}}), for the targets that test or
    document them. Shared and cached: read it, never change it."""
    return _parsed(model, model.source, env)


@lru_cache(maxsize=16)
def _parsed(model: Model, source: str, env: Environment) -> dict[str, Any]:
    return {a.path: render.load_yaml(a.content) for a in _compile(model, source, env)}


@lru_cache(maxsize=16)  # the rule tests, routing tests and docs read the same rules
def _compile(model: Model, source: str, env: Environment) -> tuple[Artifact, ...]:
    """Cached by value; `source` is part of the key because the model's equality ignores it."""
    every = model.timing.evaluation_interval
    period_every = max(every, PERIOD_INTERVAL, key=durations.seconds)
    files = [Artifact(c.rules_file(env, model.service.name), _rules_file(model, env, [
        _group(f"{model.service.name}-recordings", _selftest_records(model, env), every),
        _group(f"{model.service.name}-alerts", _selftest_alerts(model, env), every),
    ]))]
    for slo in model.slos:
        files.append(Artifact(c.rules_file(env, f"slo-{slo.id}"), _rules_file(model, env, [
            _group(f"slo-{slo.id}-sli", _slo_records(model, env, slo), every),
            _group(f"slo-{slo.id}-period", _slo_period_records(model, env, slo), period_every),
            _group(f"slo-{slo.id}-alerts", _slo_alerts(model, env, slo), every),
        ])))
    return tuple(files)


def _rules_file(model: Model, env: Environment, groups: list[dict[str, Any]]) -> bytes:
    _link_dashboard(model, env, groups)
    return render.to_yaml({"groups": [g for g in groups if g["rules"]]}, model.source)


def dashboard_url(model: Model, env: Environment, step_id: str = c.ALL_STEPS) -> str:
    """The environment's dashboard (the spec's first) in the environment's Grafana, narrowed to one step
    when the alert is about one; "" without a grafana backend or a dashboard."""
    grafana = env.backend("grafana")
    if grafana is None or not model.dashboards:
        return ""
    url = f"{grafana.url.rstrip('/')}/d/{c.dashboard_uid(model, env, model.dashboards[0].id)}"
    return url if step_id in ("", c.ALL_STEPS) else f"{url}?var-step={quote(step_id, safe='')}"


def _link_dashboard(model: Model, env: Environment, groups: list[dict[str, Any]]) -> None:
    """Every alert rule, selftest and SLO alike, links the dashboard that shows its failure."""
    for group in groups:
        for rule in group["rules"]:
            step_id = str(rule.get("labels", {}).get(c.LABEL_STEP, ""))
            if "alert" in rule and (url := dashboard_url(model, env, step_id)):
                rule.setdefault("annotations", {})["dashboard_url"] = url


def _group(name: str, rules: list[Rule], interval: str) -> dict[str, Any]:
    return {"name": name, "interval": interval, "rules": rules}


# --- selftest rules ---------------------------------------------------------------------------

def _selftest_records(model: Model, env: Environment) -> list[Rule]:
    return [{"record": c.FAILING_STEPS_RECORD, "expr": queries.failing_steps_by_tier(model, env)}]


def _selftest_alerts(model: Model, env: Environment) -> list[Rule]:
    rules: list[Rule] = []
    for alert in model.alerts:
        if not alert.params_for(env.name).enabled:
            continue
        if alert.kind == "step_failed":
            rules += [_step_alert(model, env, alert, step) for step in model.steps_of(alert.tier)]
        else:
            rules.append(_run_alert(model, env, alert))
        if alert.kind == "not_reporting":
            rules.append(_never_reported(model, env, alert))
    return rules


def stale_after(alert: Alert, env: Environment) -> str:
    """A not_reporting alert's `stale_after` in `env`: the spec's, else two cadence intervals plus a margin."""
    given = alert.params_for(env.name).stale_after
    if given:
        return given
    return durations.format_seconds(2 * env.cadence.seconds + durations.seconds(LIVENESS_MARGIN))


LIVENESS_LOOKBACK_MIN = "7d"


def liveness_lookback(alert: Alert, env: Environment) -> str:
    """How far back the liveness rules look for the last run: at least a week, and twice `stale_after`. A
    last-run series that disappears (a Pushgateway restarted without persistence) still holds its last time
    this long, so a dead job keeps alerting instead of reading as never reported."""
    return durations.format_seconds(max(durations.seconds(LIVENESS_LOOKBACK_MIN),
                                        2 * durations.seconds(stale_after(alert, env))))


def never_reported_name(alert: Alert) -> str:
    """The informational alert beside a not_reporting alert: no run has reported (yet) in the environment."""
    return f"{alert.name}NoData"


def notice_tier(model: Model) -> str:
    """The least severe tier: where notices go (its channel), never paging."""
    order = {"critical": 0, "warning": 1, "info": 2}
    return sorted(model.tiers, key=lambda t: order[t.severity])[-1].id


def _labels(model: Model, env: Environment, tier_id: str, step_id: str) -> dict[str, str]:
    tier = model.tier(tier_id)
    labels = {c.LABEL_TIER: tier.id, c.LABEL_SEVERITY: tier.severity, c.LABEL_STEP: step_id,
              c.LABEL_SERVICE: model.service.name, model.metrics.env_label: env.name}
    if env.policy.page_on_any_failure and tier.severity != "critical":
        labels[c.LABEL_PAGE] = "oncall"
    return labels


def _alert_rule(alert: Alert, env: Environment, expr: str, labels: dict[str, str],
                annotations: dict[str, str]) -> Rule:
    rule: Rule = {"alert": alert.name, "expr": expr, "labels": labels,
                  "annotations": {"summary": fill(alert.summary, env=env.name), **annotations}}
    wait = alert.params_for(env.name).for_
    if durations.seconds(wait) > 0:
        rule["for"] = wait
    return rule


def failure_hold(model: Model, env: Environment, alert: Alert) -> float:
    """Seconds a step alert of a tier without tolerance keeps a failure after it happened, whatever runs
    after it: its `for` and three evaluations, so that the alert fires even when a passing retry follows
    within seconds."""
    return (durations.seconds(alert.params_for(env.name).for_ or "0s")
            + 3 * durations.seconds(model.timing.evaluation_interval))


def _step_alert(model: Model, env: Environment, alert: Alert, step: Step) -> Rule:
    step_matcher = f'{c.LABEL_STEP}="{step.id}"'
    tolerance = env.policy.tolerance_for(alert.tier)
    if tolerance == 0:  # every failure counts: from the step's last failure and last pass, not the gauge
        expr = queries.step_failed_since_pass(model, env, failure_hold(model, env, alert), step_matcher)
    else:
        expr = f"{queries.step_failed_alerting(model, env, step_matcher)} > 0"
    if tolerance > 0:  # a drill's failing steps and a real run's are counted apart
        tier_failing = queries.step_failed_alerting(model, env, f'{c.LABEL_TIER}="{alert.tier}"')
        on = f"{model.metrics.env_label}, {c.DRILL_LABEL}"
        expr += f"\nand on ({on})\ncount by ({on}) ({tier_failing} > 0) > {tolerance}"
    tier = model.tier(alert.tier)
    allowed = f"{tolerance} {tier.id.upper()} failure{'s' if tolerance != 1 else ''} tolerated in {env.name}"
    return _alert_rule(alert, env, expr, _labels(model, env, alert.tier, step.id), {
        "description": f"{step.description or step.id} ({step.category or tier.id}); {allowed}.",
        "remediation": step.remediation,
        "runbook_url": model.service.runbook_url(step.runbook or tier.runbook),
    })


def _run_alert(model: Model, env: Environment, alert: Alert) -> Rule:
    m, p = model.metrics, alert.params_for(env.name)
    env_m = c.run_matchers(model, env)  # a fire drill is no run: it neither feeds nor resolves these
    if alert.kind == "not_reporting":  # only an environment that has reported can go stale: see _never_reported
        last = f"max_over_time({c.selector(m.last_run_timestamp, env_m)}[{liveness_lookback(alert, env)}])"
        stale = stale_after(alert, env)
        expr = f"time() - max by ({m.env_label}) ({last}) > {c.fmt_number(durations.seconds(stale))}"
        description = (f"The last selftest run in {env.name} reported more than {stale} ago; it runs "
                       f"{env.cadence.describe()}.")
    elif alert.kind == "slow_runs":
        bucket = c.selector(m.run_duration + "_bucket", env_m)
        expr = (f"histogram_quantile({c.fmt_number(p.quantile)}, sum by ({m.env_label}, le) "
                f"(rate({bucket}[{p.window}]))) > {c.fmt_number(p.threshold_seconds)}")
        description = (f"p{c.fmt_number(p.quantile * 100)} run duration over {p.window} is above "
                       f"{c.fmt_number(p.threshold_seconds)} s.")
    else:
        expr = fill(alert.expr, env=env.name).strip()
        description = f"Custom alert {alert.name}."
    return _alert_rule(alert, env, expr, _labels(model, env, alert.tier, alert.step_id or c.ALL_STEPS), {
        "description": description,
        "remediation": alert.remediation or model.tier(alert.tier).description,
        "runbook_url": model.service.runbook_url(alert.runbook),
    })


def _never_reported(model: Model, env: Environment, alert: Alert) -> Rule:
    """An informational notice, never a page: no last-run metric at all for the environment (a new
    environment before its first run, or one whose metrics were deleted)."""
    m, tier = model.metrics, model.tier(notice_tier(model))
    labels = {c.LABEL_TIER: tier.id, c.LABEL_SEVERITY: tier.severity, c.LABEL_STEP: c.ALL_STEPS,
              c.LABEL_SERVICE: model.service.name, m.env_label: env.name}
    last = c.selector(m.last_run_timestamp, c.run_matchers(model, env))
    lookback = liveness_lookback(alert, env)
    annotations = {
        "summary": f"Selftest in {env.name} has not reported any run yet",
        "description": (f"No last-run metric for {env.name} in {lookback}: no selftest run has reported since "
                        f"these rules were loaded, or none for {lookback}. Informational; {alert.name} alerts "
                        f"once runs have reported and then stop for {stale_after(alert, env)}."),
        "remediation": alert.remediation or model.tier(alert.tier).description,
        "runbook_url": model.service.runbook_url(alert.runbook),
    }
    rule: Rule = {"alert": never_reported_name(alert), "expr": f"absent_over_time({last}[{lookback}])",
                  "labels": labels, "annotations": annotations}
    wait = alert.params_for(env.name).for_
    if durations.seconds(wait) > 0:
        rule["for"] = wait
    return rule


# --- SLO rules ----------------------------------------------------------------------------------

def _slo_labels(model: Model, env: Environment, slo: SLO) -> dict[str, str]:
    return {model.metrics.env_label: env.name, c.LABEL_SLO: slo.id}


def _slo_records(model: Model, env: Environment, slo: SLO) -> list[Rule]:
    """The error ratio over every window the fitted burn conditions use, and nothing else."""
    windows = slo_windows.windows_used(c.burn_windows(slo, env))
    return [{"record": c.slo_error_ratio_record(w), "expr": queries.sli_error_ratio(model, env, slo, w),
             "labels": _slo_labels(model, env, slo)} for w in windows]


def count_window(model: Model) -> str:
    """The window of the per-evaluation error and event counts: twice the period group's interval, so that
    every run is counted twice even if an evaluation is late (errors and events alike, so their ratio holds)."""
    every = max(model.timing.evaluation_interval, PERIOD_INTERVAL, key=durations.seconds)
    return durations.format_seconds(2 * durations.seconds(every))


def _slo_period_records(model: Model, env: Environment, slo: SLO) -> list[Rule]:
    """Occurrences over the period: failed runs / runs, from short counts summed over the period. Budget
    remaining is 1 (nothing consumed) while the period holds no run."""
    window, labels, matchers = count_window(model), _slo_labels(model, env, slo), c.slo_matchers(model, env, slo)
    errors, events = queries.sli_counts(model, env, slo, window)
    summed = {kind: f"sum_over_time({c.selector(c.slo_count_record(kind, window), matchers)}[{slo.period}])"
              for kind in ("errors", "events")}
    period = c.selector(c.SLO_ERROR_RATIO_PERIOD, matchers)
    return [
        {"record": c.slo_count_record("errors", window), "expr": errors, "labels": labels},
        {"record": c.slo_count_record("events", window), "expr": events, "labels": labels},
        {"record": c.SLO_ERROR_RATIO_PERIOD, "expr": f"{summed['errors']}\n/\n({summed['events']} > 0)",
         "labels": labels},
        {"record": c.SLO_BUDGET_REMAINING, "expr": _budget_remaining(slo, env, summed, period), "labels": labels},
    ]


def _budget_remaining(slo: SLO, env: Environment, summed: dict[str, str], period: str) -> str:
    """1 - the share of the period's error budget spent; 1 while the period holds no run. A run-based SLO's
    budget is counted in runs, over at least the runs its cadence promises in a period (P/T): one failed
    run of a new environment spends 1/B of it, not the whole budget nineteen times over. The sums count each
    run twice (count_window), so the floor is 2·P/T. An SLI on events has no such floor."""
    budget = c.fmt_number(1 - slo.objective)
    if not slo.sli.run_based:
        return f"1 - {period} / {budget}\nor on ()\nvector(1)"
    floor = c.fmt_number(2 * Fraction(int(durations.seconds(slo.period))) / Fraction(int(env.cadence.seconds)))
    return (f"1 - {summed['errors']}\n/\n({budget} * clamp_min({summed['events']}, {floor}))\n"
            f"or on ()\nvector(1)")


def burn_conditions(slo: SLO, env: Environment, severity: str) -> list[slo_windows.BurnWindow]:
    """The fitted burn-rate conditions of one severity (none for the page of an SLO that does not page)."""
    if (severity == "page" and not slo.page) or not c.burns(slo, env):
        return []
    return [w for w in c.burn_windows(slo, env) if w.severity == severity]


def _slo_alerts(model: Model, env: Environment, slo: SLO) -> list[Rule]:
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
                # run must never page or ticket on its own (increase() of a sparse counter reads ~2 for 2)
                errors, _ = queries.sli_counts(model, env, slo, window.long)
                conditions.append(f"on ({model.metrics.env_label}) {errors} >= {slo_windows.MIN_FAILED_RUNS - 0.5:g}")
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
