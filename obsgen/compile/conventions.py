"""Every name obsgen gives a generated thing, built in one place.

Rule names, label keys, file paths, uids and the PromQL selectors that both the
rule compiler and the dashboard compiler use live here, so that no target
has to read another target's output to agree with it.
"""
from __future__ import annotations

import hashlib
import math
from fractions import Fraction

from obsgen.compile import amtree

from obsgen.model import durations, slo_windows
from obsgen.model import SLO, Environment, Model
from obsgen.model.names import slug  # noqa: F401  (re-exported: c.slug)

# Labels obsgen puts on the alerts it generates. Alertmanager routes on these.
LABEL_TIER = "tier"
LABEL_STEP = "step_id"
LABEL_SEVERITY = "severity"
LABEL_SLO = "slo"
LABEL_SLO_ALERT = "slo_alert"  # page | ticket
LABEL_PAGE = "page"  # "oncall" when an environment pages on any failure
LABEL_SERVICE = "service"
ALL_STEPS = "all"  # step_id of alerts about a whole run, not one step

# Multiwindow multi-burn-rate alerts (Google SRE workbook): severity, long window,
# short window, share of the error budget consumed in the long window. The windows
# actually used are fitted to each environment's run cadence: `burn_windows`.
BURN_WINDOWS: tuple[tuple[str, str, str, Fraction], ...] = slo_windows.WORKBOOK

# Grafana ownership: every dashboard obsgen writes carries OWNED_TAG and its service's and environment's
# marker (`owner_tag`), and lives in that environment's folder (`grafana_folder_uid`); a dashboard is
# obsgen's only with both the marker and the folder.
OWNED_TAG = "obsgen"
GRAFANA_TAG_MAX = 50  # Grafana stores a dashboard tag in 50 characters (dashboard_tag.term)
GRAFANA_UID_MAX = 40


def slo_error_ratio_record(window: str) -> str:
    return f"slo:sli_error:ratio_rate{window}"


def slo_count_record(kind: str, window: str) -> str:
    """Errors (`kind` errors) or all events (`kind` events) of an SLI counted over `window`, summed over the
    period for the occurrence-based period ratio."""
    return f"slo:sli_{kind}:increase{window}"


def slo_run_count_record(kind: str, window: str) -> str:
    """Bad runs (`kind` errors) or all runs (`kind` events) of a run-based SLI within `window`."""
    return f"slo:sli_{kind}:count{window}"


def slo_period_count_record(kind: str) -> str:
    """Bad runs (`kind` errors) or all runs (`kind` events) of a run-based SLI over its period."""
    return f"slo:sli_{kind}:count_period"


SLO_ERROR_RATIO_PERIOD = "slo:sli_error:ratio_period"
SLO_BUDGET_REMAINING = "slo:error_budget_remaining:ratio"
FAILING_STEPS_RECORD = "selftest:failing_steps:sum"
LAST_RUN_FAILURES_RECORD = "selftest:last_run_failing_steps:count"  # by (env, tier, drill), while fresh


def am_owner(model: Model, env: Environment) -> amtree.Owner:
    """Who obsgen is in a shared Alertmanager config: its route's matchers and its receivers' prefix."""
    return amtree.Owner(model.service.name, env.name, model.metrics.env_label)


def env_matcher(model: Model, env: Environment) -> str:
    return f'{model.metrics.env_label}="{env.name}"'


# `obsgen drill` pushes its synthetic runs in a Pushgateway group labelled drill="true". Every rule and panel
# that reads run data selects `run_matchers` and so never sees a drill; only the step alerts the drill exists
# to fire read drill series, and carry the label on, so a drill's alert is told apart from a real one.
DRILL_LABEL = "drill"
NOT_DRILL = f'{DRILL_LABEL}!="true"'


# The per-run series `obsgen emit` writes (one per run, never rewritten) and the rules count: labelled by the
# run itself, its result under the environment's policy and its outcome there.
LABEL_RUN = "run"  # the run's time, `run_id`
LABEL_RESULT = "result"  # pass | fail
LABEL_OUTCOME = "outcome"  # OUTCOME_PASS | OUTCOME_TICKET | OUTCOME_PAGE: what the run's failures lead to
OUTCOME_PASS, OUTCOME_TICKET, OUTCOME_PAGE = "pass", "ticket", "page"
RUN_GROUP_KEEP = 3600  # seconds a run's own Pushgateway group stays after its push: scraped many times over


def run_id(when: float) -> str:
    """The `run` label of a run at `when`: its Unix time in seconds, to the millisecond, as text."""
    text = f"{when:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def run_matchers(model: Model, env: Environment) -> str:
    """The environment's real runs: its env label, fire drills left out."""
    return f"{env_matcher(model, env)},{NOT_DRILL}"


def selector(metric: str, *matchers: str) -> str:
    inner = ",".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}"


def slo_matchers(model: Model, env: Environment, slo: SLO) -> str:
    return f'{env_matcher(model, env)},{LABEL_SLO}="{slo.id}"'


def fmt_number(value: Fraction | float | int) -> str:
    """A number as PromQL/YAML text, exact where it terminates: 13.44, 0.05, 0.9333333333333333."""
    frac = Fraction(value).limit_denominator(10**12) if isinstance(value, float) else Fraction(value)
    if frac.denominator == 1:
        return str(frac.numerator)
    den = frac.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den == 1:  # terminating decimal: print it exactly
        text = f"{float(frac):.15f}".rstrip("0").rstrip(".")
        if Fraction(text) == frac:
            return text
    return repr(float(frac))


def burn_windows(slo: SLO, env: Environment) -> tuple[slo_windows.BurnWindow, ...]:
    """The burn-rate windows of `slo` in `env`: fitted to the environment's run cadence for an SLI that counts
    runs; the workbook's own for one that counts events (requests), whose stream the workbook assumes."""
    if not slo.sli.run_based:
        return slo_windows.workbook(durations.seconds(slo.period))
    return slo_windows.fit(durations.seconds(slo.period), slo.objective, env.cadence.seconds)


def burns(slo: SLO, env: Environment) -> bool:
    """Whether `slo` gets burn-rate alerts in `env`: not where a run-based SLO's error budget is fewer than
    two runs (a daily or weekly job), too few to tell a bad run from a bad SLO. Its budget and dashboards
    stay; its failures page through the step alerts."""
    if not slo.sli.run_based:
        return True
    runs = slo_windows.budget_runs(durations.seconds(slo.period), slo.objective, env.cadence.seconds)
    return runs >= slo_windows.MIN_BUDGET_RUNS


def slo_notes(model: Model) -> list[str]:
    """What the operator should know about SLOs that get no burn-rate alerts somewhere, with the options."""
    notes = []
    for slo in model.slos:
        for env in model.environments:
            if burns(slo, env):
                continue
            period, cadence = durations.seconds(slo.period), env.cadence.seconds
            runs = slo_windows.budget_runs(period, slo.objective, cadence)
            most = 1 - Fraction(slo_windows.MIN_BUDGET_RUNS) * Fraction(int(cadence)) / Fraction(int(period))
            options = (f"lower the objective to {fmt_number(math.floor(most * 1000) / 1000)} or less, "
                       if most > 0 else "")
            notes.append(f"SLO {slo.id} in {env.name} (runs {env.cadence.describe()}): its error budget, "
                         f"{fmt_number(slo.objective)} over {slo.period}, is {float(runs):.3g} run(s), too few to "
                         f"tell a bad run from a bad SLO, so {env.name} gets no burn-rate alerts for it (its budget "
                         f"and dashboards stay; failures there page through the step alerts and a no_passing_run "
                         f"alert). For burn-rate alerts there: {options}lengthen the period, or run more often")
    return notes


def slo_basis(slo: SLO, env: Environment) -> str:
    """What an SLO counts, for texts: `runs every 15m`, or `counts events` for an SLI on requests."""
    return f"runs {env.cadence.describe()}" if slo.sli.run_based else "counts events"


def burn_factor(period_seconds: float, long_window_seconds: float, budget_share: Fraction) -> Fraction:
    """Burn rate that consumes `budget_share` of the budget in the long window."""
    return budget_share * Fraction(int(period_seconds)) / Fraction(int(long_window_seconds))


def _bounded(text: str, limit: int) -> str:
    """`text` itself when it fits in `limit` characters, else its start and 8 hex digits of its sha256."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return text[:limit - 9].rstrip("-:") + "-" + digest


def dashboard_uid(model: Model, env: Environment, dashboard_id: str) -> str:
    """Stable, readable uid derived from names; Grafana allows at most 40 characters."""
    return _bounded(slug(f"{model.service.name}-{env.name}-{dashboard_id}"), GRAFANA_UID_MAX)


def grafana_folder_uid(model: Model, env: Environment) -> str:
    """The uid of the environment's Grafana folder, distinct per service and environment."""
    return _bounded(slug(f"obsgen-{model.service.name}-{env.name}"), GRAFANA_UID_MAX)


def owner_tag(model: Model, env: Environment) -> str:
    """The marker tag of this service's and environment's dashboards: `obsgen:<service>:<env>`."""
    return _bounded(f"{OWNED_TAG}:{model.service.name}:{env.name}", GRAFANA_TAG_MAX)


def env_dir(env: Environment) -> str:
    return env.name


def rules_file(env: Environment, group: str) -> str:
    return f"{env.name}/prometheus/{group}.rules.yaml"


def steps_rules_stem(service: str) -> str:
    """The stem of the rule file holding the step alerts (one rule per step), apart from the file of the
    job's records and alerts: promtool loads every rule of a file for every test group, so the job's
    tests do not pay for the steps."""
    return f"{service}-steps"
