"""`obsgen drill`: a fire drill against live backends.

It pushes a synthetic failing run of one tier for one environment to the Pushgateway (in its own group,
labelled `drill="true"`, so real runs are not touched and counters do not move), follows the tier's alert
through Alertmanager, then deletes the drill group and waits for the alert to resolve. The result says
what the drill confirmed and what it could not:

- routed: Alertmanager holds the alert for every failing step, active (not silenced or inhibited) and
  routed to exactly the receivers the spec intends;
- grouped: under each of those receivers Alertmanager holds an alert group with it
  (`/api/v2/alerts/groups`), the unit it notifies;
- sent (a plain Alertmanager): every notifier of those receivers sent successfully after the drill's
  groups formed, and the rise of the counters was the drill's own (below).

The drill's alert carries `drill="true"`: the step alerts aggregate by env, tier, step_id and drill, so a
drill fires an alert of its own beside a real one (never instead of one), Alertmanager groups it apart
(`drill` is in every group_by), its notifications say [DRILL], and it inhibits nothing. Every other rule
and panel leaves drills out, so a drill can neither resolve nor raise any other alert: a dead job stays
not-reporting through a drill. The drill refuses to start while a drill alert of the tier is firing.

Whose notification. Alertmanager counts notifications per integration
(`alertmanager_notifications_total{integration}`; 0.26+ started with
`--enable-feature=receiver-name-in-metrics` adds `receiver_name`), not per alert, and its notification log
is not in its API. So the drill reads the counters before every read of the alert groups and counts from
the last reading taken before any of its groups existed: a notification sent before its alert reached
Alertmanager cannot count. A rise is the drill's own only when no other alert group of a receiver using
that integration (of the same receiver, when the counters name it) appeared, changed or went away while
the drill watched; otherwise the drill says the delivery is not confirmed and why. What it cannot see:
a repeat notification (repeat_interval) of another group that did not change, or the late resolve
notification of a group that resolved just before the drill started.

Mimir: the tenant's Alertmanager API (`/alertmanager/api/v2/...` with X-Scope-OrgID) shows alerts and
groups, so routing and grouping are confirmed the same way. Mimir counts notifications per tenant only on
its Alertmanager replicas' own /metrics (`cortex_alertmanager_notifications_total{user}`), which the
tenant API does not serve: the drill keeps the failure up for group_wait after the group formed, so
Alertmanager had it to send, and says "routing confirmed, delivery not observable".
"""
from __future__ import annotations

import time
from collections.abc import Callable

from obsgen.model import durations
from obsgen.compile import queries as q
from obsgen.run.drill.alertmanager import open_alertmanager, read_alerts, step_names, notification_counts
from obsgen.run.drill.result import DrillResult, lines
from obsgen.run.drill.watch import POLL, Watch
from obsgen.errors import ObsgenError
from obsgen.model import Environment, Model

__all__ = ["DrillResult", "default_timeout", "lines", "notification_counts", "run"]

SLACK = 120.0  # seconds on top of the alert's `for`, evaluation and group_wait for the default timeout


def default_timeout(model: Model, env: Environment, tier: str) -> float:
    alert = _alert_for(model, tier)
    timing = model.timing
    return (durations.seconds(alert.params_for(env.name).for_ or "0s") + 2 * durations.seconds(
        timing.evaluation_interval) + durations.seconds(timing.group_wait) + SLACK)


def _alert_for(model: Model, tier: str):  # the model's Alert
    for alert in model.alerts:
        if alert.kind == "step_failed" and alert.tier == tier:
            return alert
    raise ObsgenError(f"the spec has no step_failed alert for tier {tier!r}; nothing to drill")


def run(model: Model, env: Environment, tier: str, pushgateway_url: str, alertmanager_url: str | None,
        timeout: float, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> DrillResult:
    from obsgen.run import emit
    from obsgen.compile.routing_tests import intended_channels, intended_receivers

    alert = _alert_for(model, tier)
    report = emit.synthetic_report(model, env.name, tier)
    steps = [s.id for s in report.steps if s.failed]
    labels = {"alertname": alert.name, "tier": tier, model.metrics.env_label: env.name, q.DRILL_LABEL: "true"}
    intent = {**labels, **({"page": "oncall"} if _pages(model, env, tier) else {})}
    expected = intended_receivers(model, env, intent)  # Alertmanager's names: <service>/<env>/<channel>
    am = open_alertmanager(env, alertmanager_url)
    result = DrillResult(env.name, tier, alert.name, steps, expected, tenant=am.tenant)
    already = [a for a in read_alerts(am, labels) if a["labels"].get("step_id") in steps]
    if already:
        raise ObsgenError(f"a drill's {alert.name} is already firing in {env.name} for {step_names(already)}: another "
                          f"drill is running, or one was stopped before it cleaned up (delete the Pushgateway "
                          f"group job={model.service.name} {model.metrics.env_label}={env.name} drill=true)")
    watch = Watch(am, labels, steps, result, fallback=sorted(
        {model.channel(ch).type for ch in intended_channels(model, env, intent)}))
    grouping = {model.metrics.env_label: env.name, **emit.DRILL_GROUPING}
    say(f"drill {env.name} {tier}: pushing a failing run ({', '.join(steps)} failing) to {pushgateway_url} "
        f"as group job={model.service.name} {' '.join(f'{k}={v}' for k, v in grouping.items())}")
    watch.read()  # before the push: the counters the drill counts from, and the other groups as they were
    start = clock()
    emit.emit_to_pushgateway(model, env.name, report, pushgateway_url, grouping=emit.DRILL_GROUPING,
                             accumulate=False)
    try:
        watch.follow(start, timeout, durations.seconds(model.timing.group_wait), say, clock)
    finally:
        emit.delete_group(pushgateway_url, model.service.name, grouping)
    if result.time_to_alert is not None:
        resolving = clock()
        while clock() - resolving < timeout:
            if not [a for a in read_alerts(am, labels) if a["labels"].get("step_id") in steps]:
                result.resolved_after = clock() - resolving
                break
            time.sleep(POLL)
    return result


def _pages(model: Model, env: Environment, tier: str) -> bool:
    return env.policy.page_on_any_failure and model.tier(tier).severity != "critical"
