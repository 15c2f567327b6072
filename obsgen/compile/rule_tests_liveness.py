"""promtool tests of the liveness alerts: not_reporting (and its never-reported notice) and no_passing_run.

Inputs as `obsgen emit` writes them (the last run's time; one series per run, kept by the Pushgateway for
an hour after its push), times and texts from the model (`stale_after`, default two cadence intervals plus
10m; the lookback, at least 7d and twice stale_after), as in `rule_tests`.

- not_reporting: runs at the environment's cadence, then none: quiet through the normal gaps, fires
  `stale_after` after the last run; never reported: only the informational notice fires; a fire drill is
  no run; a last-run series that disappears (a Pushgateway restart) keeps the alert firing.
- no_passing_run: passing runs, then runs that fail a paging tier: fires stale_after after the last passing
  run (not before, however many failing runs arrive), keeps firing after the runs stop and their series
  are gone, and resolves at the first passing run; runs whose failures only ticket count as passing; a
  drill's passing run resolves nothing; an environment that never reported stays quiet.
"""
from __future__ import annotations

from obsgen import conventions as c
from obsgen import durations
from obsgen.compile import rule_test_kit as kit
from obsgen.compile.rule_tests import (SEVERITY_ORDER, STEP, TAIL, Rules, _after, _intended, _wait, run_series,
                                       stale_seconds, stale_text)
from obsgen.model import Alert, Environment, Model


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
    cadence = kit.ceil_to(env.cadence.seconds, STEP)
    for_text, wait = _wait(alert, env)
    mine, other = {env_label: env.name}, {env_label: f"not-{env.name}"}
    pages = env.policy.page_on_any_failure or model.tier(alert.tier).severity == "critical"
    how = "pages" if pages else f"does not page ({model.tier(alert.tier).severity})"

    # Two runs a cadence apart (at 0 and at `cadence`), then none: the last run's age passes stale_after at
    # cadence + stale, so the alert is active from the next evaluation and fires `for` later.
    last = cadence
    fire_at = last + stale + STEP + wait
    samples = fire_at // STEP + TAIL
    stale_group = kit.group(
        f"{env.name}: runs {env.cadence.describe()} then none: {alert.name} fires stale_after {stale_txt} "
        f"after the last run{_after(for_text, wait, 'while younger')}, and {how}",
        STEP, {kit.series(metric, mine): kit.gauge_notation([("0", cadence // STEP), (str(last),
                                                                                      samples - cadence // STEP)])},
        [kit.alert_case(last, alert.name, []), kit.alert_case(last + stale, alert.name, []),
         kit.alert_case(fire_at - STEP, alert.name, []),
         kit.alert_case(fire_at, alert.name, [_intended(model, env, alert, mine, float(fire_at - last))]),
         kit.alert_case(fire_at, notice_name, [])])

    # Never reported (another environment's metric does not count): only the notice, never a page.
    end = max(wait, STEP) + stale + STEP
    never_group = kit.group(
        f"{env.name}: never reported: {alert.name} stays quiet and only the notice {notice_name} fires"
        + (_after(for_text, wait) if wait else f" at once (for {for_text})") + ", without a page label",
        STEP, {kit.series(metric, other): f"0+{STEP}x{end // STEP + TAIL}"},
        ([kit.alert_case(wait - STEP, notice_name, [])] if wait else [])
        + [kit.alert_case(wait, notice_name, [_notice(model, env, alert, mine)]),
           kit.alert_case(end, notice_name, [_notice(model, env, alert, mine)]),
           kit.alert_case(end, alert.name, [])])

    # A fire drill is no run: the job dead after its second run, a drill reporting fresh times every minute
    # from then on; the alert fires all the same. And where nothing ever reported, a drill does not count
    # as a first run: the notice fires.
    drill = {**mine, c.DRILL_LABEL: "true"}
    drill_group = kit.group(
        f"{env.name}: runs {env.cadence.describe()} then none, a fire drill reporting every minute after: "
        f"{alert.name} fires all the same, stale_after {stale_txt} after the last real run",
        STEP, {kit.series(metric, mine): kit.gauge_notation([("0", cadence // STEP), (str(last),
                                                                                      samples - cadence // STEP)]),
               kit.series(metric, drill): f"{last}+{STEP}x{samples}"},
        [kit.alert_case(fire_at - STEP, alert.name, []),
         kit.alert_case(fire_at, alert.name, [_intended(model, env, alert, mine, float(fire_at - last))])])
    never_drill_group = kit.group(
        f"{env.name}: never reported, a fire drill reporting every minute: the drill is no first run, "
        f"{alert.name} stays quiet and the notice {notice_name} fires",
        STEP, {kit.series(metric, drill): f"0+{STEP}x{end // STEP + TAIL}"},
        [kit.alert_case(end, notice_name, [_notice(model, env, alert, mine)]),
         kit.alert_case(end, alert.name, [])])

    # A Pushgateway restarted without persistence: the last-run series disappears while the alert fires. The
    # rules still see the last run, so the alert keeps firing and the never-reported notice stays quiet.
    gone = fire_at + STEP
    check = gone + 10 * STEP  # well past Prometheus's 5m staleness
    restart_group = kit.group(
        f"{env.name}: runs {env.cadence.describe()} then none, and the last-run series disappears (a Pushgateway "
        f"restart) while {alert.name} fires: it keeps firing, and {notice_name} stays quiet",
        STEP, {kit.series(metric, mine): kit.gauge_notation([("0", cadence // STEP), (str(last),
                                                                                      (gone - last) // STEP)])
               + f" _x{(check - gone) // STEP + TAIL}"},
        [kit.alert_case(check, alert.name, [_intended(model, env, alert, mine, float(check - last))]),
         kit.alert_case(check, notice_name, [])])

    # Runs at the cadence: at the end of the longest normal gap neither alert fires.
    runs = 4
    quiet_at = runs * cadence - STEP  # just before the fifth run
    values = kit.gauge_notation([(str(i * cadence), cadence // STEP) for i in range(runs)]
                                + [(str(runs * cadence), TAIL)])
    fresh_group = kit.group(
        f"{env.name}: runs {env.cadence.describe()} fire neither {alert.name} nor {notice_name}",
        STEP, {kit.series(metric, mine): values},
        [kit.alert_case(quiet_at, alert.name, []), kit.alert_case(quiet_at, notice_name, [])])
    return [stale_group, drill_group, restart_group, never_group, never_drill_group, fresh_group]




def no_passing_run(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    mine = {model.metrics.env_label: env.name}
    stale, stale_txt = stale_seconds(alert, env), stale_text(alert, env)
    cadence = kit.ceil_to(env.cadence.seconds, STEP)
    for_text, wait = _wait(alert, env)

    def firing(at: int, last_pass: int) -> list[kit.Doc]:
        return [_intended(model, env, alert, mine, float(at - last_pass))]

    # Passing runs at 0 and one cadence later, then runs every cadence that fail a paging tier: the alert
    # fires stale_after after the last pass (plus for), keeps firing after the failing runs stop and their
    # series are gone, and resolves at the first passing run.
    last_pass = cadence
    fire_at = last_pass + stale + STEP + wait
    failing = range(2 * cadence, fire_at + cadence, cadence)
    silent = fire_at + 2 * cadence + int(durations.seconds("1h"))  # the failing runs' groups are gone by then
    passes = silent + cadence
    end = passes + 2 * STEP
    inputs = {**run_series(model, env, [0, last_pass], end), **run_series(model, env, failing, end, outcome=c.OUTCOME_PAGE),
              **run_series(model, env, [passes], end)}
    groups = [kit.group(
        f"{env.name}: runs pass then fail a paging tier {env.cadence.describe()}, then stop: {alert.name} fires "
        f"stale_after {stale_txt} after the last passing run{_after(for_text, wait, 'while younger')}, keeps "
        f"firing when the runs stop, and resolves at the first passing run",
        STEP, inputs,
        [kit.alert_case(fire_at - STEP, alert.name, []),
         kit.alert_case(fire_at, alert.name, firing(fire_at, last_pass)),
         kit.alert_case(silent, alert.name, firing(silent, last_pass)),
         kit.alert_case(passes + STEP, alert.name, [])])]

    # Runs whose failures only ticket there count as passing; passing runs at the cadence fire nothing.
    quiet_at = 6 * cadence - STEP
    ticketing = any(t.severity != "critical" for t in model.tiers) and not env.policy.page_on_any_failure
    groups.append(kit.group(
        f"{env.name}: runs {env.cadence.describe()} that " + ("fail only ticketing tiers" if ticketing else "pass")
        + f": {alert.name} stays quiet", STEP,
        run_series(model, env, range(0, 6 * cadence, cadence), quiet_at, outcome=c.OUTCOME_TICKET if ticketing else c.OUTCOME_PASS),
        [kit.alert_case(quiet_at, alert.name, [])]))

    # A drill's passing run resolves nothing; an environment that never reported stays quiet.
    drill_at = fire_at + STEP
    drill_end = drill_at + 2 * STEP
    groups.append(kit.group(
        f"{env.name}: a fire drill that passes while {alert.name} fires resolves nothing", STEP,
        {**run_series(model, env, [0, last_pass], drill_end),
         **run_series(model, env, range(2 * cadence, drill_at, cadence), drill_end, outcome=c.OUTCOME_PAGE),
         **run_series(model, env, [drill_at], drill_end, drill=True)},
        [kit.alert_case(drill_at + STEP, alert.name, firing(drill_at + STEP, last_pass))]))
    other = {model.metrics.env_label: f"not-{env.name}", "run": "0", "result": "fail", "outcome": c.OUTCOME_PAGE}
    never_at = stale + 2 * cadence
    groups.append(kit.group(
        f"{env.name}: never reported (another environment's runs do not count): {alert.name} stays quiet", STEP,
        {kit.series(model.metrics.run_timestamp, other): f"0x{never_at // STEP + TAIL}"},
        [kit.alert_case(never_at, alert.name, [])]))
    return groups
