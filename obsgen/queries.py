"""PromQL for the selftest metrics and the SLIs, shared by every target.

Rules, dashboards and OpenSLO documents all ask the same questions of the same
series; they get the same text from here.
"""
from __future__ import annotations

from obsgen import conventions as c
from obsgen.model import SLO, Environment, Model
from obsgen.placeholders import fill


def step_failed(model: Model, env: Environment, *matchers: str) -> str:
    """Failed steps of the last real run, one series per (env, tier, step_id); fire drills left out."""
    m = model.metrics
    sel = c.selector(m.step_failed, c.run_matchers(model, env), *matchers)
    return f"max by ({m.env_label}, {c.LABEL_TIER}, {c.LABEL_STEP}) ({sel})"


def step_failed_alerting(model: Model, env: Environment, *matchers: str) -> str:
    """Failed steps as the step alerts read them: real runs and fire drills apart, one series per (env,
    tier, step_id, drill). A drill's series carry drill="true" on to the alert; a real run's have no such
    label. So a drill fires its own alert beside (never instead of) a real one, and cannot resolve one."""
    m = model.metrics
    sel = c.selector(m.step_failed, c.env_matcher(model, env), *matchers)
    return f"max by ({m.env_label}, {c.LABEL_TIER}, {c.LABEL_STEP}, {c.DRILL_LABEL}) ({sel})"


def step_failed_since_pass(model: Model, env: Environment, hold_seconds: float, *matchers: str) -> str:
    """A step's failure as its alert reads it, from the times `obsgen emit` keeps per step (not the gauge of
    the last run): it failed after it last passed, or it failed within the last `hold_seconds`. So a passing
    retry seconds after a failure cannot hide it (the failure holds the alert long enough to fire), and the
    alert resolves on a passing run, never on silence. Real runs and drills apart, as in
    step_failed_alerting; a step that never failed has no failure series, so it never fires."""
    m = model.metrics
    by = f"max by ({m.env_label}, {c.LABEL_TIER}, {c.LABEL_STEP}, {c.DRILL_LABEL})"
    failed = f"{by} ({c.selector(m.step_last_failure, c.env_matcher(model, env), *matchers)})"
    passed = f"{by} ({c.selector(m.step_last_pass, c.env_matcher(model, env), *matchers)})"
    return f"{failed} > {passed}\nor\n{failed} > time() - {c.fmt_number(hold_seconds)}"


def failing_steps_by_tier(model: Model, env: Environment) -> str:
    m = model.metrics
    return f"sum by ({m.env_label}, {c.LABEL_TIER}) ({step_failed(model, env)})"


def sli_counts(model: Model, env: Environment, slo: SLO, window: str) -> tuple[str, str]:
    """(errors, events) of the SLI over `window`, each summed by env: runs (or the user's events) counted
    with `increase`, so that a window without runs counts 0 of 0."""
    m = model.metrics
    e = c.run_matchers(model, env)
    by = f"sum by ({m.env_label})"
    if slo.sli.kind == "pass_rate":
        fail = c.selector(m.runs_total, e, 'result="fail"')
        return (f"{by} (increase({fail}[{window}]))",
                f"{by} (increase({c.selector(m.runs_total, e)}[{window}]))")
    if slo.sli.kind == "latency":
        le = c.fmt_number(slo.sli.threshold_seconds)
        bucket = c.selector(m.run_duration + "_bucket", e, f'le="{le}"')
        total = f"{by} (increase({c.selector(m.run_duration + '_count', e)}[{window}]))"
        return f"{total} - {by} (increase({bucket}[{window}]))", total
    bad = fill(slo.sli.error_query, env=env.name, window=window)
    total = fill(slo.sli.total_query, env=env.name, window=window)
    return f"({bad})", f"({total})"


def sli_error_ratio(model: Model, env: Environment, slo: SLO, window: str) -> str:
    """The share of bad runs over `window` (0..1), labelled by env only; no sample (never NaN) when the
    window holds no run."""
    m = model.metrics
    e = c.run_matchers(model, env)
    by = f"sum by ({m.env_label})"
    if slo.sli.kind == "latency":
        le = c.fmt_number(slo.sli.threshold_seconds)
        bucket = c.selector(m.run_duration + "_bucket", e, f'le="{le}"')
        good = f"{by} (increase({bucket}[{window}]))"
        total = f"{by} (increase({c.selector(m.run_duration + '_count', e)}[{window}]))"
        return f"1 - (\n{good}\n/\n({total} > 0)\n)"
    errors, events = sli_counts(model, env, slo, window)
    return f"{errors}\n/\n({events} > 0)"


def sli_good_total(model: Model, env: Environment, slo: SLO) -> tuple[str, str, str]:
    """(kind, numerator, denominator) as counter selectors for OpenSLO ratioMetric: kind is good or bad."""
    m = model.metrics
    e = c.run_matchers(model, env)
    if slo.sli.kind == "pass_rate":
        return ("bad", c.selector(m.runs_total, e, 'result="fail"'), c.selector(m.runs_total, e))
    if slo.sli.kind == "latency":
        le = c.fmt_number(slo.sli.threshold_seconds)
        return ("good", c.selector(m.run_duration + "_bucket", e, f'le="{le}"'), c.selector(m.run_duration + "_count", e))
    return ("bad", fill(slo.sli.error_query, env=env.name), fill(slo.sli.total_query, env=env.name))


# --- the run policy and per-step failures (obsgen emit and the dashboards) -------------------------

DRILL_LABEL = c.DRILL_LABEL  # `obsgen drill` pushes its synthetic runs in a group labelled drill="true"


def run_limits(model: Model, env: Environment) -> tuple[tuple[str, int], ...]:
    """The environment's policy for one run: (tier, failing steps tolerated) for every tier whose failures
    count. A run fails when a tier's failing steps exceed its number; an informational tier counts only
    where the environment pages on any failure. `obsgen emit` gives a run its result by this, and the
    dashboard's Status reads the last run by it."""
    return tuple((t.id, env.policy.tolerance_for(t.id)) for t in model.tiers
                 if t.severity != "info" or env.policy.page_on_any_failure)


def tolerated_weights(model: Model, env: Environment) -> tuple[tuple[str, int, int], ...]:
    """(tier, tolerance, weight) of the tiers that tolerate failures: `last_run_status` encodes their
    failing steps as one number, sum(failing × weight), each weight one more than the tolerances before it."""
    out, weight = [], 1
    for tier, tolerance in run_limits(model, env):
        if tolerance > 0:
            out.append((tier, tolerance, weight))
            weight *= tolerance + 1
    return tuple(out)


def last_run_status(model: Model, env: Environment) -> str:
    """The last run under the environment's policy (`run_limits`), from the step gauges: -1 when it fails,
    else the failing steps it tolerated encoded by `tolerated_weights` (0: none failed). No sample
    before any run."""
    limits = run_limits(model, env)
    tier = {t: f"sum by ({c.LABEL_TIER}) ({step_failed(model, env, _tier_matcher(t))})" for t, _ in limits}
    breaking = "\nor ".join(f"{tier[t]} > {limit}" for t, limit in limits)
    tolerated = "".join(f"{tier[t]} * {weight}\nor " for t, _, weight in tolerated_weights(model, env))
    status = f"sum(\n{tolerated}0 * group({step_failed(model, env)})\n)"
    return f"-group(\n{breaking}\n)\nor\n{status}" if breaking else status


def _tier_matcher(tier: str) -> str:
    return f'{c.LABEL_TIER}="{tier}"'


def step_failures(model: Model, env: Environment, window: str, *matchers: str) -> str:
    """Runs in which each step failed over `window`, by (step_id, tier): increase() of the per-step
    failure counter `obsgen emit` keeps, so the count does not depend on the scrape interval. Rounded:
    the counter moves by whole runs, and increase() extrapolates to the window's edges."""
    m = model.metrics
    sel = c.selector(m.step_failures_total, c.run_matchers(model, env), *matchers)
    return f"round(sum by ({c.LABEL_STEP}, {c.LABEL_TIER}) (increase({sel}[{window}])))"


def last_step_failure(model: Model, env: Environment, window: str, *matchers: str) -> str:
    """Unix time of the last run within `window` in which each step failed, by (step_id, tier): the run's
    own timestamp while the step's gauge said 1 (searched at the evaluation interval), fire drills left out."""
    m = model.metrics
    e = c.run_matchers(model, env)
    failing = f"max by ({m.env_label}, {c.LABEL_TIER}, {c.LABEL_STEP}) ({c.selector(m.step_failed, e, *matchers)}) == 1"
    run_time = f"max by ({m.env_label}) ({c.selector(m.last_run_timestamp, e)})"
    return (f"max by ({c.LABEL_STEP}, {c.LABEL_TIER}) (max_over_time((\n({failing})\n* on ({m.env_label}) "
            f"group_left {run_time}\n)[{window}:]))")
