"""promtool tests of the liveness alerts: not_reporting (and its never-reported notice) and no_passing_run.

Inputs as `obsgen emit` writes them (the last run's time; one series per run, kept by the Pushgateway for
an hour after its push), times and texts from the model (`stale_after`, default two cadence intervals plus
10m; the lookback, at least 7d and twice stale_after), as in `rule_tests`.

promtool evaluates every rule of the file at every minute from 0 to a group's last check, so a group's
cost is its span: the rules compare ages (time() minus a reported time), so the test's clock starts shortly
before what a group checks, with runs before 0 (a value in the past; a per-run series shows from 0 while
the Pushgateway still keeps its group, so a run that must be seen is at most an hour before 0).

- not_reporting: the last run reported, then none: quiet at stale_after, fires `for` after the next
  evaluation, not before; a fire drill reporting every minute is no run; a last-run series that then
  disappears (a Pushgateway restart) keeps the alert firing and the notice quiet; never reported (another
  environment's run older than stale_after, and a drill, count as no first run): only the informational
  notice fires, the alert quiet for longer than it would take to fire on the other environment's run.
- no_passing_run: passing runs, then runs that fail a paging tier: fires stale_after after the last passing
  run (not before, however many failing runs arrive); a drill's passing run resolves nothing; keeps firing
  an hour after the runs' series are gone, and resolves at the first passing run; runs whose failures only
  ticket count as passing; an environment that never reported (another environment's failing run older than
  stale_after does not count) stays quiet.
"""
from __future__ import annotations

from obsgen.compile import conventions as c
from obsgen.model import durations
from obsgen.compile import rule_test_kit as kit
from obsgen.compile.rule_tests import (SEVERITY_ORDER, STEP, TAIL, Rules, _after, _intended, _wait, run_series,
                                       stale_seconds, stale_text)
from obsgen.model import Alert, Environment, Model

LEAD = 2 * STEP  # evaluations before an age reaches stale_after: the test's clock starts there
EARLIEST = STEP - c.RUN_GROUP_KEEP  # the oldest run whose series a test starting at 0 still scrapes


def _notice(model: Model, env: Environment, alert: Alert, series_labels: dict[str, str]) -> kit.Doc:
    """The never-reported notice: the least severe tier's labels, never a page label."""
    tier = sorted(model.tiers, key=lambda t: SEVERITY_ORDER.index(t.severity))[-1]
    labels = {c.LABEL_TIER: tier.id, c.LABEL_SEVERITY: tier.severity, c.LABEL_STEP: c.ALL_STEPS,
              c.LABEL_SERVICE: model.service.name, model.metrics.env_label: env.name}
    annotations = {
        "summary": f"Selftest in {env.name} has not reported any run yet",
        "description": (f"No last-run metric for {env.name} in {_lookback_text(alert, env)}: no selftest run "
                        f"has reported since these rules were loaded, or none for {_lookback_text(alert, env)}. "
                        f"Informational; {alert.name} alerts once runs have reported and then stop for "
                        f"{stale_text(alert, env)}."),
        "remediation": alert.remediation or model.tier(alert.tier).description,
        "runbook_url": model.service.runbook_url(alert.runbook),
        **kit.intended_dashboard(model, env, c.ALL_STEPS),
    }
    return kit.intended(labels, annotations, series_labels, 1.0)


def _lookback_text(alert: Alert, env: Environment) -> str:
    """The README's liveness lookback: at least 7d, and twice stale_after."""
    return durations.format_seconds(max(7 * 86400, 2 * stale_seconds(alert, env)))


def not_reporting(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    env_label, metric = model.metrics.env_label, model.metrics.last_run_timestamp
    notice_name = f"{alert.name}NoData"
    stale, stale_txt = stale_seconds(alert, env), stale_text(alert, env)
    for_text, wait = _wait(alert, env)
    mine, other = {env_label: env.name}, {env_label: f"not-{env.name}"}
    pages = env.policy.page_on_any_failure or model.tier(alert.tier).severity == "critical"
    how = "pages" if pages else f"does not page ({model.tier(alert.tier).severity})"

    # The test's clock starts LEAD before the last run's age reaches stale_after (the rules compare ages,
    # time() minus the reported time, so the window need not hold the hours before): quiet at stale_after,
    # active from the next evaluation, firing `for` later. A fire drill reporting fresh times every minute is
    # no run. Then a Pushgateway restarted without persistence drops the last-run series: the rules still
    # see the last run, so the alert keeps firing and the never-reported notice stays quiet.
    last = min(0, LEAD - stale)
    fire_at = last + stale + STEP + wait
    gone = fire_at + STEP
    check = gone + 10 * STEP  # well past Prometheus's 5m staleness
    drill = {**mine, c.DRILL_LABEL: "true"}
    stale_group = kit.group(
        f"{env.name}: runs {env.cadence.describe()} then none, a fire drill reporting every minute after: "
        f"{alert.name} fires stale_after {stale_txt} after the last real run{_after(for_text, wait, 'while younger')}, "
        f"and {how}; when the last-run series disappears (a Pushgateway restart) it keeps firing, and "
        f"{notice_name} stays quiet",
        STEP, {kit.series(metric, mine): kit.gauge_notation([(str(last), gone // STEP)])
               + f" _x{(check - gone) // STEP + TAIL}",
               kit.series(metric, drill): f"0+{STEP}x{check // STEP + TAIL}"},
        [kit.alert_case(0, alert.name, []), kit.alert_case(last + stale, alert.name, []),
         kit.alert_case(fire_at - STEP, alert.name, []),
         kit.alert_case(fire_at, alert.name, [_intended(model, env, alert, mine, float(fire_at - last))]),
         kit.alert_case(fire_at, notice_name, []),
         kit.alert_case(check, alert.name, [_intended(model, env, alert, mine, float(check - last))]),
         kit.alert_case(check, notice_name, [])])

    # Never reported (another environment's last run, older than stale_after, and a fire drill do not count
    # as a first run): only the notice, never a page; the alert quiet for longer than it would take to fire
    # on the other environment's run.
    end = LEAD + STEP + max(wait, STEP)
    never_group = kit.group(
        f"{env.name}: never reported (another environment's run older than stale_after, and a fire drill "
        f"reporting every minute, count as no first run): {alert.name} stays quiet and only the notice "
        f"{notice_name} fires" + (_after(for_text, wait) if wait else f" at once (for {for_text})")
        + ", without a page label",
        STEP, {kit.series(metric, other): kit.gauge_notation([(str(last), end // STEP + TAIL)]),
               kit.series(metric, drill): f"0+{STEP}x{end // STEP + TAIL}"},
        ([kit.alert_case(wait - STEP, notice_name, [])] if wait else [])
        + [kit.alert_case(wait, notice_name, [_notice(model, env, alert, mine)]),
           kit.alert_case(end, notice_name, [_notice(model, env, alert, mine)]),
           kit.alert_case(end, alert.name, [])])
    return [stale_group, never_group]


def no_passing_run(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    mine = {model.metrics.env_label: env.name}
    stale, stale_txt = stale_seconds(alert, env), stale_text(alert, env)
    cadence = kit.ceil_to(env.cadence.seconds, STEP)
    for_text, wait = _wait(alert, env)

    def firing(at: int, last_pass: int) -> list[kit.Doc]:
        return [_intended(model, env, alert, mine, float(at - last_pass))]

    # Passing runs a cadence apart, then runs every cadence that fail a paging tier: the alert fires
    # stale_after after the last pass (plus for); a fire drill's passing run resolves nothing; it keeps
    # firing after the runs stop and their series are gone (a Pushgateway restart), and resolves at the first
    # passing run. The test's clock starts LEAD before the last pass's age reaches stale_after, or where its
    # series (kept an hour) is still scraped.
    last_pass = max(EARLIEST, LEAD - stale)
    fire_at = last_pass + stale + STEP + wait
    failing = range(last_pass + cadence, max(fire_at + STEP, last_pass + 2 * cadence), cadence)
    drill_at = fire_at + STEP
    gone = max(drill_at, failing[-1]) + 2 * STEP
    silent = gone + c.RUN_GROUP_KEEP  # an hour on, as long as the Pushgateway would have kept the runs
    passes = silent + STEP
    end = passes + 2 * STEP
    inputs = {**run_series(model, env, [last_pass - cadence, last_pass], end, gone=gone),
              **run_series(model, env, failing, end, outcome=c.OUTCOME_PAGE, gone=gone),
              **run_series(model, env, [drill_at], end, drill=True, gone=gone), **run_series(model, env, [passes], end)}
    groups = [kit.group(
        f"{env.name}: runs pass then fail a paging tier {env.cadence.describe()}, then stop: {alert.name} fires "
        f"stale_after {stale_txt} after the last passing run{_after(for_text, wait, 'while younger')}, a fire "
        f"drill that passes resolves nothing, it keeps firing an hour after the runs' series disappear (a "
        f"Pushgateway restart), and resolves at the first passing run",
        STEP, inputs,
        [kit.alert_case(fire_at - STEP, alert.name, []),
         kit.alert_case(fire_at, alert.name, firing(fire_at, last_pass)),
         kit.alert_case(drill_at + STEP, alert.name, firing(drill_at + STEP, last_pass)),
         kit.alert_case(silent, alert.name, firing(silent, last_pass)),
         kit.alert_case(passes + STEP, alert.name, [])])]

    # Runs whose failures only ticket there count as passing; passing runs at the cadence fire nothing,
    # checked when the first run is older than stale_after plus for (were it failing, the alert would fire).
    quiet_at = last_pass + stale + 2 * STEP + wait
    ticketing = any(t.severity != "critical" for t in model.tiers) and not env.policy.page_on_any_failure
    groups.append(kit.group(
        f"{env.name}: runs {env.cadence.describe()} that " + ("fail only ticketing tiers" if ticketing else "pass")
        + f": {alert.name} stays quiet", STEP,
        run_series(model, env, range(last_pass, quiet_at, cadence), quiet_at,
                   outcome=c.OUTCOME_TICKET if ticketing else c.OUTCOME_PASS),
        [kit.alert_case(quiet_at, alert.name, [])]))

    # An environment that never reported stays quiet: another environment's failing run, older than
    # stale_after, does not count (were it counted, the alert would fire by never_at).
    run = min(0, LEAD - stale)
    other = {model.metrics.env_label: f"not-{env.name}", "run": c.run_id(run), "result": "fail",
             "outcome": c.OUTCOME_PAGE}
    never_at = run + stale + 2 * STEP + wait
    groups.append(kit.group(
        f"{env.name}: never reported (another environment's failing run older than stale_after does not count): "
        f"{alert.name} stays quiet", STEP,
        {kit.series(model.metrics.run_timestamp, other): kit.gauge_notation([(str(run), never_at // STEP + TAIL)])},
        [kit.alert_case(never_at, alert.name, [])]))
    return groups
