"""PromQL for the selftest metrics and the SLIs, shared by every target.

Rules, dashboards and OpenSLO documents all ask the same questions of the same
series; they get the same text from here.
"""
from __future__ import annotations

from obsgen import conventions as c
from obsgen.model import SLO, Environment, Model
from obsgen.placeholders import fill


def step_failed(model: Model, env: Environment, *matchers: str) -> str:
    """Failed steps of the last run, one series per (env, tier, step_id)."""
    m = model.metrics
    sel = c.selector(m.step_failed, c.env_matcher(model, env), *matchers)
    return f"max by ({m.env_label}, {c.LABEL_TIER}, {c.LABEL_STEP}) ({sel})"


def failing_steps_by_tier(model: Model, env: Environment) -> str:
    m = model.metrics
    return f"sum by ({m.env_label}, {c.LABEL_TIER}) ({step_failed(model, env)})"


def sli_error_ratio(model: Model, env: Environment, slo: SLO, window: str) -> str:
    """The share of bad events over `window` (0..1), labelled by env only."""
    m = model.metrics
    e = c.env_matcher(model, env)
    by = f"sum by ({m.env_label})"
    if slo.sli.kind == "pass_rate":
        fail = c.selector(m.runs_total, e, 'result="fail"')
        bad = f"{by} (rate({fail}[{window}]))"
        total = f"{by} (rate({c.selector(m.runs_total, e)}[{window}]))"
        return f"{bad}\n/\n{total}"
    if slo.sli.kind == "latency":
        le = c.fmt_number(slo.sli.threshold_seconds)
        bucket = c.selector(m.run_duration + "_bucket", e, f'le="{le}"')
        good = f"{by} (rate({bucket}[{window}]))"
        total = f"{by} (rate({c.selector(m.run_duration + '_count', e)}[{window}]))"
        return f"1 - (\n{good}\n/\n{total}\n)"
    bad = fill(slo.sli.error_query, env=env.name, window=window)
    total = fill(slo.sli.total_query, env=env.name, window=window)
    return f"({bad})\n/\n({total})"


def sli_good_total(model: Model, env: Environment, slo: SLO) -> tuple[str, str, str]:
    """(kind, numerator, denominator) as counter selectors for OpenSLO ratioMetric: kind is good or bad."""
    m = model.metrics
    e = c.env_matcher(model, env)
    if slo.sli.kind == "pass_rate":
        return ("bad", c.selector(m.runs_total, e, 'result="fail"'), c.selector(m.runs_total, e))
    if slo.sli.kind == "latency":
        le = c.fmt_number(slo.sli.threshold_seconds)
        return ("good", c.selector(m.run_duration + "_bucket", e, f'le="{le}"'), c.selector(m.run_duration + "_count", e))
    return ("bad", fill(slo.sli.error_query, env=env.name), fill(slo.sli.total_query, env=env.name))
