"""`obsgen drill`: a fire drill against live backends.

It pushes a synthetic failing run of one tier for one environment to the
Pushgateway (in its own group, labelled `drill="true"`, so real runs are not
touched and counters do not move), waits until Alertmanager holds the tier's
alert for every failing step, routed to the receivers the spec intends, then
deletes the drill group and waits for the alert to resolve. The result says
where the alert landed and how long it took.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from obsgen import durations
from obsgen.access import connect
from obsgen.errors import ObsgenError
from obsgen.http import BackendError, Http
from obsgen.model import Environment, Model

POLL = 0.5  # seconds between Alertmanager reads
SLACK = 120.0  # seconds on top of the alert's `for`, evaluation and group_wait for the default timeout


@dataclass
class DrillResult:
    env: str
    tier: str
    alertname: str
    steps: list[str]
    expected: list[str]
    receivers: list[str] = field(default_factory=list)
    state: str = ""
    time_to_alert: float | None = None  # push -> the alert in Alertmanager, routed
    delivered_after: float | None = None  # push -> Alertmanager has sent it to every receiver
    resolved_after: float | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def default_timeout(model: Model, env: Environment, tier: str) -> float:
    alert = _alert_for(model, tier)
    timing = model.timing
    return (durations.seconds(alert.params_for(env.name).for_ or "0s") + 2 * durations.seconds(
        timing.evaluation_interval) + durations.seconds(timing.group_wait) + SLACK)


def _alert_for(model: Model, tier: str):  # noqa: ANN202 - the model's Alert
    for alert in model.alerts:
        if alert.kind == "step_failed" and alert.tier == tier:
            return alert
    raise ObsgenError(f"the spec has no step_failed alert for tier {tier!r}; nothing to drill")


def run(model: Model, env: Environment, tier: str, pushgateway_url: str, alertmanager_url: str | None,
        timeout: float, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> DrillResult:
    from obsgen import emit
    from obsgen.compile.routing_tests import intended_channels, intended_receivers

    alert = _alert_for(model, tier)
    report = emit.synthetic_report(model, env.name, tier)
    steps = [s.id for s in report.steps if s.failed]
    labels = {"alertname": alert.name, "tier": tier, model.metrics.env_label: env.name}
    intent = {**labels, **({"page": "oncall"} if _pages(model, env, tier) else {})}
    expected = intended_receivers(model, env, intent)  # Alertmanager's names: <service>/<env>/<channel>
    result = DrillResult(env.name, tier, alert.name, steps, expected)
    am = _alertmanager(env, alertmanager_url)
    already = [a for a in _alerts(am, labels) if a["labels"].get("step_id") in steps]
    if already:
        raise ObsgenError(f"{alert.name} is already firing in {env.name} for {_names(already)}: a drill now "
                          f"would prove nothing; resolve it first")
    grouping = {model.metrics.env_label: env.name, **emit.DRILL_GROUPING}
    say(f"drill {env.name} {tier}: pushing a failing run ({', '.join(steps)} failing) to {pushgateway_url} "
        f"as group job={model.service.name} {' '.join(f'{k}={v}' for k, v in grouping.items())}")
    integrations = sorted({model.channel(ch).type for ch in intended_channels(model, env, intent)})
    sent_before = _notifications(am, integrations)
    start = clock()
    emit.emit_to_pushgateway(model, env.name, report, pushgateway_url, grouping=emit.DRILL_GROUPING,
                             accumulate=False)
    try:
        _wait_for_alert(am, labels, steps, result, start, timeout, clock)
        if result.ok and sent_before is not None:
            _wait_for_delivery(am, integrations, sent_before, result, start, timeout, clock)
    finally:
        emit.delete_group(pushgateway_url, model.service.name, grouping)
    if result.time_to_alert is not None:
        resolving = clock()
        while clock() - resolving < timeout:
            if not [a for a in _alerts(am, labels) if a["labels"].get("step_id") in steps]:
                result.resolved_after = clock() - resolving
                break
            time.sleep(POLL)
    return result


def _pages(model: Model, env: Environment, tier: str) -> bool:
    return env.policy.page_on_any_failure and model.tier(tier).severity != "critical"


def _wait_for_alert(am: tuple[Http, str], labels: dict[str, str], steps: list[str], result: DrillResult,
                    start: float, timeout: float, clock: Callable[[], float]) -> None:
    while True:
        found = {a["labels"].get("step_id"): a for a in _alerts(am, labels) if a["labels"].get("step_id") in steps}
        for alert in found.values():
            receivers = sorted(r["name"] for r in alert.get("receivers", []))
            state = (alert.get("status") or {}).get("state", "")
            if receivers != sorted(result.expected):
                result.receivers, result.state = receivers, state
                result.problem = (f"{result.alertname} for {alert['labels'].get('step_id')} was routed to "
                                  f"{', '.join(receivers) or 'no receiver'}, expected {', '.join(result.expected)}")
                return
            if state == "suppressed":
                status = alert.get("status") or {}
                why = "inhibited" if status.get("inhibitedBy") else "silenced"
                result.receivers, result.state = receivers, state
                result.problem = f"{result.alertname} for {alert['labels'].get('step_id')} arrived but is {why}"
                return
        if len(found) == len(steps):
            result.time_to_alert = clock() - start
            result.receivers, result.state = sorted(result.expected), "active"
            return
        if clock() - start > timeout:
            missing = [s for s in steps if s not in found]
            result.problem = (f"{result.alertname} did not reach Alertmanager within {timeout:g} s for "
                              f"{', '.join(missing)}")
            return
        time.sleep(POLL)


def _wait_for_delivery(am: tuple[Http, str], integrations: list[str], before: dict[str, tuple[float, float]],
                       result: DrillResult, start: float, timeout: float, clock: Callable[[], float]) -> None:
    """Keep the failure up until Alertmanager has sent it (its notification counters move): an alert
    resolved before group_wait ends is never sent, and a drill must prove the page leaves."""
    while True:
        now = _notifications(am, integrations) or {}
        sent = {i: now.get(i, (0.0, 0.0))[0] - before.get(i, (0.0, 0.0))[0] for i in integrations}
        failed = {i: now.get(i, (0.0, 0.0))[1] - before.get(i, (0.0, 0.0))[1] for i in integrations}
        if all(sent[i] > failed[i] for i in integrations):
            result.delivered_after = clock() - start
            return
        if clock() - start > timeout:
            broken = [i for i in integrations if failed[i] > 0]
            result.problem = (f"Alertmanager routed {result.alertname} to {', '.join(result.expected)} but "
                              + (f"could not deliver it ({', '.join(broken)} notifications failed; see "
                                 f"Alertmanager's log)" if broken else f"sent nothing within {timeout:g} s"))
            return
        time.sleep(POLL)


def _notifications(am: tuple[Http, str], integrations: list[str]) -> dict[str, tuple[float, float]] | None:
    """(sent, failed) notification counts per integration from Alertmanager's /metrics; None when the
    metrics are not those of one Alertmanager (Mimir's are not per tenant)."""
    http, prefix = am
    if prefix:
        return None
    text = http.request("GET", "/metrics").text
    counts: dict[str, list[float]] = {i: [0.0, 0.0] for i in integrations}
    for line in text.splitlines():
        for index, name in enumerate(("alertmanager_notifications_total{", "alertmanager_notifications_failed_total{")):
            if line.startswith(name):
                for integration in integrations:
                    if f'integration="{integration}"' in line:
                        counts[integration][index] += float(line.rsplit(" ", 1)[1])
    return {i: (c[0], c[1]) for i, c in counts.items()}


def _alertmanager(env: Environment, url: str | None) -> tuple[Http, str]:
    url = url or os.environ.get("OBSGEN_ALERTMANAGER_URL")
    spec, http = connect(env, "alertmanager", "Alertmanager", url)
    return http, "/alertmanager" if spec.mode == "mimir" and not url else ""


def _alerts(am: tuple[Http, str], labels: dict[str, str]) -> list[dict[str, Any]]:
    http, prefix = am
    filters = [f'{k}="{v}"' for k, v in sorted(labels.items())]
    response = http.request("GET", f"{prefix}/api/v2/alerts", params={"filter": filters})
    try:
        alerts = response.json()
    except json.JSONDecodeError:
        raise BackendError(f"{http.name}: GET /api/v2/alerts did not answer JSON") from None
    return [a for a in alerts if isinstance(a, dict) and isinstance(a.get("labels"), dict)]


def _names(alerts: list[dict[str, Any]]) -> str:
    return ", ".join(sorted(str(a["labels"].get("step_id")) for a in alerts))
