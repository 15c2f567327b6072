"""PromQL for the selftest metrics and the SLIs, shared by every target.

Rules, dashboards and OpenSLO documents all ask the same questions of the same
series; they get the same text from here.
"""
from __future__ import annotations

from obsgen.compile import conventions as c
from obsgen.model import durations
from obsgen.model import SLO, Environment, Model
from obsgen.model.placeholders import fill


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


def step_failed_since_pass(model: Model, env: Environment, hold_seconds: float, lookback: str,
                           *matchers: str) -> str:
    """A step's failure as its alert reads it, from the times `obsgen emit` keeps per step (not the gauge of
    the last run), the newest over `lookback` (in the environment's group and in each run's own group): it
    failed after it last passed, or it failed within the last `hold_seconds`. So a passing retry seconds
    after a failure cannot hide it (the failure holds the alert long enough to fire), the alert resolves on
    a passing run, never on silence, and neither a Pushgateway restart, a restored older file nor a
    concurrent emit rewriting the environment's group takes a failure back. Real runs and drills apart, as
    in step_failed_alerting (a drill's times are read as they are, so that deleting its group resolves its
    alert); a step that never failed has no failure series, so it never fires."""
    m = model.metrics
    by = f"max by ({m.env_label}, {c.LABEL_TIER}, {c.LABEL_STEP}, {c.DRILL_LABEL})"

    def newest(metric: str) -> str:  # a drill's own times only while its group is there: deleting it ends it
        real = c.selector(metric, c.env_matcher(model, env), c.NOT_DRILL, *matchers)
        drill = c.selector(metric, c.env_matcher(model, env), f'{c.DRILL_LABEL}="true"', *matchers)
        return f"{by} (max_over_time({real}[{lookback}]) or {drill})"
    failed, passed = newest(m.step_last_failure), newest(m.step_last_pass)
    return f"{failed} > {passed}\nor\n{failed} > time() - {c.fmt_number(hold_seconds)}"


def last_run(model: Model, env: Environment) -> str:
    """The time of the newest run, by (env, drill): real runs and drills apart."""
    m = model.metrics
    return f"max by ({m.env_label}, {c.DRILL_LABEL}) ({c.selector(m.last_run_timestamp, c.env_matcher(model, env))})"


def step_failed_in_last_run(model: Model, env: Environment, *matchers: str) -> str:
    """The steps that failed in the newest run, by (env, tier, step_id, drill): their last failure is that
    run's time. A step the newest run did not run (a partial run) is not among them, whatever its gauge says."""
    m = model.metrics
    by = f"max by ({m.env_label}, {c.LABEL_TIER}, {c.LABEL_STEP}, {c.DRILL_LABEL})"
    failed = f"{by} ({c.selector(m.step_last_failure, c.env_matcher(model, env), *matchers)})"
    return f"{failed}\n== on ({m.env_label}, {c.DRILL_LABEL}) group_left\n{last_run(model, env)}"


def failing_steps_by_tier(model: Model, env: Environment) -> str:
    m = model.metrics
    return f"sum by ({m.env_label}, {c.LABEL_TIER}) ({step_failed(model, env)})"


def runs(model: Model, env: Environment, window: str, *matchers: str, metric: str = "") -> str:
    """The environment's real runs whose time lies within the last `window`, one series per run (`obsgen
    emit` writes one per run, labelled by the run's time), from `metric` (default the run's time) as its
    maximum over the window. A run is one series, however often it was scraped, pushed again or restored."""
    m = model.metrics
    sel = c.selector(metric or m.run_timestamp, c.run_matchers(model, env), *matchers)
    if metric and metric != m.run_timestamp:
        return f"max_over_time({sel}[{window}])"
    return f"max_over_time({sel}[{window}]) > time() - {c.fmt_number(durations.seconds(window))}"


def run_count(model: Model, env: Environment, window: str, *matchers: str) -> str:
    """Real runs within the last `window`, by env; no sample when there is none."""
    return f"count by ({model.metrics.env_label}) ({runs(model, env, window, *matchers)})"


def bad_runs(model: Model, env: Environment, slo: SLO, window: str) -> str:
    """Runs within `window` that are bad for a run-based SLI, one series per run: failed under the
    environment's policy (pass_rate), or slower than the threshold (latency)."""
    if slo.sli.kind == "latency":
        slow = runs(model, env, window, metric=model.metrics.run_duration)
        return f"{slow} > {c.fmt_number(slo.sli.threshold_seconds)}\nand\n{runs(model, env, window)}"
    return runs(model, env, window, 'result="fail"')


def run_counts(model: Model, env: Environment, slo: SLO, window: str) -> tuple[str, str]:
    """(bad runs, all runs) of a run-based SLI within `window`, each by env: no sample where there is none
    (the rules record them, then read 0 bad runs as `or 0 * all`)."""
    by = f"count by ({model.metrics.env_label})"
    return f"{by} (\n{bad_runs(model, env, slo, window)}\n)", run_count(model, env, window)


def sli_counts(model: Model, env: Environment, slo: SLO, window: str) -> tuple[str, str]:
    """(errors, events) of the SLI over `window`, each by env. Runs are counted as distinct per-run series
    (no sample before the first run; errors 0 once there is one); the user's events with their queries."""
    if slo.sli.run_based:
        by = f"count by ({model.metrics.env_label})"
        events = run_count(model, env, window)
        return f"({by} (\n{bad_runs(model, env, slo, window)}\n) or 0 * {events})", events
    bad = fill(slo.sli.error_query, env=env.name, window=window)
    total = fill(slo.sli.total_query, env=env.name, window=window)
    return f"({bad})", f"({total})"


def sli_error_ratio(model: Model, env: Environment, slo: SLO, window: str) -> str:
    """The share of bad runs (or events) over `window` (0..1), labelled by env only; no sample (never NaN)
    when the window holds none."""
    errors, events = sli_counts(model, env, slo, window)
    if slo.sli.run_based:
        return f"{errors}\n/\n{events}"
    return f"{errors}\n/\n({events} > 0)"


OPENSLO_SLICE = "5m"  # run-based OpenSLO queries count the runs of each such slice (counter: false)


def sli_good_total(model: Model, env: Environment, slo: SLO) -> tuple[str, str, str, bool]:
    """(kind, numerator, denominator, counter) for OpenSLO ratioMetric: kind is good or bad. A run-based
    SLI counts the runs of the last OPENSLO_SLICE (counter false: each sample is a count of occurrences);
    one on events gives the user's counters."""
    if slo.sli.run_based:
        by = f"count by ({model.metrics.env_label})"
        return ("bad", f"{by} ({bad_runs(model, env, slo, OPENSLO_SLICE)})",
                run_count(model, env, OPENSLO_SLICE), False)
    return ("bad", fill(slo.sli.error_query, env=env.name), fill(slo.sli.total_query, env=env.name), True)


# --- the run policy and per-step failures (obsgen emit and the dashboards) -------------------------

DRILL_LABEL = c.DRILL_LABEL  # `obsgen drill` pushes its synthetic runs in a group labelled drill="true"


def run_limits(model: Model, env: Environment) -> tuple[tuple[str, int], ...]:
    """The environment's policy for one run: (tier, failing steps tolerated) for every tier whose failures
    count. A run fails when a tier's failing steps exceed its number; an informational tier counts only
    where the environment pages on any failure. `obsgen emit` gives a run its result by this, and the
    dashboard's Status reads the last run by it."""
    return tuple((t.id, env.policy.tolerance_for(t.id)) for t in model.tiers
                 if t.severity != "info" or env.policy.page_on_any_failure)


def paging_tiers(model: Model, env: Environment) -> tuple[str, ...]:
    """The tiers whose failures page in `env`: a critical tier everywhere, every tier where the environment
    pages on any failure (the step alerts' routing)."""
    return tuple(t.id for t in model.tiers if t.severity == "critical" or env.policy.page_on_any_failure)


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
