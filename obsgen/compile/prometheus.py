"""Prometheus rule files: selftest recording and alerting rules, and SLO burn-rate rules (`prometheus_slo`).

Per environment: one file for the selftest job's recording rules and alerts about the job as a whole, one
for the step alerts (one rule per step), and one per SLO. Every alert
carries the labels Alertmanager routes and inhibits on (tier, severity,
step_id, and slo/slo_alert for SLO alerts) and the annotations a responder
needs (summary, description, remediation, runbook_url).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import quote

from obsgen.compile import conventions as c
from obsgen.model import durations
from obsgen.compile import queries, render
from obsgen.model.artifact import Artifact
from obsgen.compile.prometheus_slo import PERIOD_INTERVAL, slo_alerts, slo_period_records, slo_records
from obsgen.model import Alert, Environment, Model, Step
from obsgen.model.placeholders import fill
from obsgen.spec import templates

Rule = dict[str, Any]
LIVENESS_MARGIN = "10m"  # run time, push, scrape and evaluation delays on top of two missed runs


def compile_prometheus(model: Model, env: Environment) -> list[Artifact]:
    return list(_compile(model, model.source, env))


def rule_documents(model: Model, env: Environment) -> dict[str, Any]:
    """The generated rule files as documents ({path: {"groups": [...]}}, what the files hold), for the
    targets that test or document them. Shared and cached: read it, never change it."""
    return dict(_documents(model, model.source, env))


@lru_cache(maxsize=16)  # the rule tests, routing tests and docs read the same rules
def _compile(model: Model, source: str, env: Environment) -> tuple[Artifact, ...]:
    """Cached by value; `source` is part of the key because the model's equality ignores it."""
    return tuple(Artifact(path, render.to_yaml(document, source)) for path, document in _documents(model, source, env))


@lru_cache(maxsize=16)
def _documents(model: Model, source: str, env: Environment) -> tuple[tuple[str, dict[str, Any]], ...]:
    every = model.timing.evaluation_interval
    period_every = max(every, PERIOD_INTERVAL, key=durations.seconds)
    name = model.service.name
    files = [(c.rules_file(env, c.steps_rules_stem(name)), _rules_file(model, env, [
        _group(f"{name}-steps", _step_alerts(model, env), every),
    ])), (c.rules_file(env, name), _rules_file(model, env, [
        _group(f"{name}-recordings", _selftest_records(model, env), every),
        _group(f"{name}-alerts", _selftest_alerts(model, env), every),
    ]))]  # the step alerts first: the docs and routing tests list alerts in this order
    files = [(path, document) for path, document in files if document["groups"]]
    for slo in model.slos:
        files.append((c.rules_file(env, f"slo-{slo.id}"), _rules_file(model, env, [
            _group(f"slo-{slo.id}-sli", slo_records(model, env, slo), every),
            _group(f"slo-{slo.id}-period", slo_period_records(model, env, slo), period_every),
            _group(f"slo-{slo.id}-alerts", slo_alerts(model, env, slo), every),
        ])))
    return tuple(files)


def _rules_file(model: Model, env: Environment, groups: list[dict[str, Any]]) -> dict[str, Any]:
    _link_dashboard(model, env, groups)
    _literal_annotations(groups)
    return {"groups": [g for g in groups if g["rules"]]}


def _literal_annotations(groups: list[dict[str, Any]]) -> None:
    """Prometheus expands every annotation as a Go template when the alert fires: every annotation but the
    summary (a template by design, checked by `validate`) is free text or built from it, so it is made
    literal, and `{{` in a remediation renders as written instead of breaking the rule file or running a
    query (see obsgen.spec.templates)."""
    for group in groups:
        for rule in group["rules"]:
            notes = rule.get("annotations")
            if notes:
                rule["annotations"] = {k: v if k == "summary" else templates.literal(str(v)) for k, v in notes.items()}


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

def last_run_fresh(model: Model, env: Environment) -> float:
    """Seconds the newest run's failing steps count against a tolerance: the default stale_after (a job that
    stopped holds no alert past it), and at least the longest `for` of those alerts plus three evaluations
    (so that they can fire)."""
    waits = [failure_hold(model, env, a) for a in model.alerts
             if a.kind == "step_failed" and a.params_for(env.name).enabled and env.policy.tolerance_for(a.tier) > 0]
    return max([durations.seconds(default_stale_after(env)), *waits])


def _selftest_records(model: Model, env: Environment) -> list[Rule]:
    """Failing steps by tier from the gauges (dashboards), and failing steps by tier in the newest run while
    it is fresh (the step alerts of a tier that tolerates failures: counted once, not once per step)."""
    on = f"{model.metrics.env_label}, {c.DRILL_LABEL}"
    fresh = c.fmt_number(last_run_fresh(model, env))
    counted = (f"count by ({on}, {c.LABEL_TIER}) (\n{queries.step_failed_in_last_run(model, env)}\n)\n"
               f"and on ({on})\n{queries.last_run(model, env)} > time() - {fresh}")
    records = [{"record": c.FAILING_STEPS_RECORD, "expr": queries.failing_steps_by_tier(model, env)}]
    if any(env.policy.tolerance_for(a.tier) > 0 for a in model.alerts if a.kind == "step_failed"):
        records.append({"record": c.LAST_RUN_FAILURES_RECORD, "expr": counted})
    return records


def _selftest_alerts(model: Model, env: Environment) -> list[Rule]:
    """The alerts about the job as a whole (liveness, slow runs, custom), in the spec's order."""
    rules: list[Rule] = []
    for alert in model.alerts:
        if not alert.params_for(env.name).enabled or alert.kind == "step_failed":
            continue
        rules.append(_run_alert(model, env, alert))
        if alert.kind == "not_reporting":
            rules.append(_never_reported(model, env, alert))
    return rules


def _step_alerts(model: Model, env: Environment) -> list[Rule]:
    """One rule per step of each enabled step_failed alert's tier, in the spec's order."""
    return [_step_alert(model, env, alert, step) for alert in model.alerts
            if alert.kind == "step_failed" and alert.params_for(env.name).enabled
            for step in model.steps_of(alert.tier)]


def stale_after(alert: Alert, env: Environment) -> str:
    """A not_reporting or no_passing_run alert's `stale_after` in `env`: the spec's, else
    `default_stale_after`."""
    return alert.params_for(env.name).stale_after or default_stale_after(env)


def default_stale_after(env: Environment) -> str:
    """Two cadence intervals plus a margin: a run missed is normal, two are not."""
    return durations.format_seconds(2 * env.cadence.seconds + durations.seconds(LIVENESS_MARGIN))


def freshness_page(model: Model, env: Environment) -> Alert | None:
    """The environment's enabled no_passing_run alert, the page a failing or silent job raises, if any."""
    return next((a for a in model.alerts if a.kind == "no_passing_run" and a.params_for(env.name).enabled), None)


LIVENESS_LOOKBACK_MIN = "7d"


def step_lookback(env: Environment) -> str:
    """How far back a step alert without tolerance looks for the step's last failure and pass: at least a
    week, and twice the default stale_after; a failure with no pass since stays that long."""
    return durations.format_seconds(max(durations.seconds(LIVENESS_LOOKBACK_MIN),
                                        2 * durations.seconds(default_stale_after(env))))


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
        expr = queries.step_failed_since_pass(model, env, failure_hold(model, env, alert),
                                              step_lookback(env), step_matcher)
    else:  # the step failed in the newest run, which is fresh and has more failing steps of the tier than
        # tolerated (LAST_RUN_FAILURES_RECORD): a drill's and a real run's apart; stale gauges play no part
        on = f"{model.metrics.env_label}, {c.DRILL_LABEL}"
        tier_failing = c.selector(c.LAST_RUN_FAILURES_RECORD, c.env_matcher(model, env), f'{c.LABEL_TIER}="{alert.tier}"')
        expr = (f"{queries.step_failed_in_last_run(model, env, step_matcher)}\nand on ({on})\n"
                f"{tier_failing} > {tolerance}")
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
    elif alert.kind == "no_passing_run":
        expr, description = _no_passing_run(model, env, alert)
    elif alert.kind == "slow_runs":
        durations_ = queries.runs(model, env, p.window, metric=m.run_duration)
        expr = (f"quantile by ({m.env_label}) ({c.fmt_number(p.quantile)},\n{durations_}\nand\n"
                f"{queries.runs(model, env, p.window)}\n) > {c.fmt_number(p.threshold_seconds)}")
        description = (f"p{c.fmt_number(p.quantile * 100)} run duration over {p.window} is above "
                       f"{c.fmt_number(p.threshold_seconds)} s.")
    else:
        expr = fill(alert.expr, env=env.name).strip()
        description = f"Custom alert {alert.name}."
    labels = _labels(model, env, alert.tier, alert.step_id or c.ALL_STEPS)
    if alert.kind == "not_reporting" and freshness_page(model, env):
        labels.pop(c.LABEL_PAGE, None)  # the no_passing_run alert pages for a silent job; this one explains it
    return _alert_rule(alert, env, expr, labels, {
        "description": description,
        "remediation": alert.remediation or model.tier(alert.tier).description,
        "runbook_url": model.service.runbook_url(alert.runbook),
    })


def _no_passing_run(model: Model, env: Environment, alert: Alert) -> tuple[str, str]:
    """No run without a paging failure for `stale_after`, from the per-run series (a Pushgateway restart
    loses none of them: they are read back over the lookback). It fires for a job that fails and for one
    that stopped, never between two slow failing runs, and resolves only when a run passes. An environment
    that never reported is left to the not_reporting notice."""
    m, stale, lookback = model.metrics, stale_after(alert, env), liveness_lookback(alert, env)
    seconds = c.fmt_number(durations.seconds(stale))
    not_paged = c.selector(m.run_timestamp, c.run_matchers(model, env), 'outcome!="page"')
    passed = f"max by ({m.env_label}) (max_over_time({not_paged}[{lookback}]))"
    every = c.selector(m.run_timestamp, c.run_matchers(model, env))
    first = f"min by ({m.env_label}) (min_over_time({every}[{lookback}]))"
    expr = (f"time() - {passed} > {seconds}\nor\n"
            f"time() - {first} > {seconds}\nunless on ({m.env_label})\n{passed}")
    tiers = ", ".join(t.upper() for t in queries.paging_tiers(model, env))
    description = (f"No selftest run in {env.name} has passed for more than {stale} (it runs "
                   f"{env.cadence.describe()}): every run since failed a tier that pages there ({tiers}), or "
                   f"no run reported. It resolves when a run passes.")
    return expr, description


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
