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

import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obsgen import durations
from obsgen import queries as q
from obsgen.access import connect
from obsgen.errors import ObsgenError
from obsgen.http import BackendError, Http
from obsgen.model import Environment, Model

POLL = 0.5  # seconds between Alertmanager reads
SLACK = 120.0  # seconds on top of the alert's `for`, evaluation and group_wait for the default timeout
MIMIR_PREFIX = "/alertmanager"  # Mimir's -http.alertmanager-http-prefix (its default)
SENT, FAILED = "alertmanager_notifications_total", "alertmanager_notifications_failed_total"
NAMED = 3  # other alert groups named in a message

Key = tuple[str | None, str]  # (receiver, or None when the counters are per integration only; integration)
GroupKey = tuple[str, tuple[tuple[str, str], ...]]  # (receiver, group labels)


@dataclass
class DrillResult:
    env: str
    tier: str
    alertname: str
    steps: list[str]
    expected: list[str]
    receivers: list[str] = field(default_factory=list)
    state: str = ""
    time_to_alert: float | None = None  # push -> the alert in Alertmanager, routed and in its groups
    delivered_after: float | None = None  # push -> Alertmanager sent it, and the drill could tell it was its own
    resolved_after: float | None = None
    problem: str = ""
    unconfirmed: bool = False  # the problem is that delivery could not be told apart, not a fault found
    tenant: str = ""  # Mimir: the tenant whose Alertmanager was read
    confirmed: list[str] = field(default_factory=list)
    not_confirmed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def verdict(self) -> str:
        if self.problem:
            return "NOT CONFIRMED" if self.unconfirmed else "FAILED"
        return "OK" if self.delivered_after is not None else "routing confirmed, delivery not observable"


def lines(result: DrillResult) -> list[str]:
    """What the drill confirmed and did not, then its one-line result (`drill ENV TIER: VERDICT: ...`)."""
    out = [f"  confirmed: {text}" for text in result.confirmed]
    out += [f"  not confirmed: {text}" for text in result.not_confirmed]
    name = f"drill {result.env} {result.tier}"
    if result.problem:
        return out + [f"{name}: {result.verdict}: {result.problem}"]
    resolved = (f"resolved {result.resolved_after:.1f} s after the drill group was removed"
                if result.resolved_after is not None else "still active when the timeout ran out")
    sent = f", sent after {result.delivered_after:.1f} s" if result.delivered_after is not None else ""
    tenant = f" (tenant {result.tenant})" if result.tenant else ""
    last = (f"{name}: {result.verdict}: {result.alertname} for {', '.join(result.steps)} reached "
            f"{', '.join(result.receivers)}{tenant} after {result.time_to_alert:.1f} s{sent}; {resolved}")
    return [*out, last]


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


@dataclass
class _Am:
    http: Http
    prefix: str  # "" for an Alertmanager, MIMIR_PREFIX for Mimir's
    mimir: bool
    tenant: str


def run(model: Model, env: Environment, tier: str, pushgateway_url: str, alertmanager_url: str | None,
        timeout: float, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> DrillResult:
    from obsgen import emit
    from obsgen.compile.routing_tests import intended_channels, intended_receivers

    alert = _alert_for(model, tier)
    report = emit.synthetic_report(model, env.name, tier)
    steps = [s.id for s in report.steps if s.failed]
    labels = {"alertname": alert.name, "tier": tier, model.metrics.env_label: env.name, q.DRILL_LABEL: "true"}
    intent = {**labels, **({"page": "oncall"} if _pages(model, env, tier) else {})}
    expected = intended_receivers(model, env, intent)  # Alertmanager's names: <service>/<env>/<channel>
    am = _alertmanager(env, alertmanager_url)
    result = DrillResult(env.name, tier, alert.name, steps, expected, tenant=am.tenant)
    already = [a for a in _alerts(am, labels) if a["labels"].get("step_id") in steps]
    if already:
        raise ObsgenError(f"a drill's {alert.name} is already firing in {env.name} for {_names(already)}: another "
                          f"drill is running, or one was stopped before it cleaned up (delete the Pushgateway "
                          f"group job={model.service.name} {model.metrics.env_label}={env.name} drill=true)")
    watch = _Watch(am, labels, steps, result, fallback=sorted(
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
            if not [a for a in _alerts(am, labels) if a["labels"].get("step_id") in steps]:
                result.resolved_after = clock() - resolving
                break
            time.sleep(POLL)
    return result


def _pages(model: Model, env: Environment, tier: str) -> bool:
    return env.policy.page_on_any_failure and model.tier(tier).severity != "critical"


class _Watch:
    """Alertmanager as the drill sees it, one reading per poll: the notification counters, then the alert
    groups (in that order, so a reading whose groups hold none of the drill's was taken before any of
    them existed), and which other alert groups appeared, changed or went away since the baseline."""

    def __init__(self, am: _Am, labels: dict[str, str], steps: list[str], result: DrillResult,
                 fallback: list[str]) -> None:
        self.am, self.labels, self.steps, self.result = am, labels, steps, result
        self.fallback = fallback  # the spec's channel types, when Alertmanager's config cannot be read
        self.notifiers = None if am.mimir else _notifiers(am)
        self.counts: dict[Key, list[float]] = {}
        self.base: dict[Key, list[float]] = {}
        self.others: dict[GroupKey, frozenset[tuple[str, str]]] | None = None
        self.changed: dict[GroupKey, str] = {}  # other groups that moved since the baseline
        self.own: dict[str, dict[str, Any]] = {}  # step_id -> the drill's alert
        self.own_groups: list[GroupKey] = []

    def read(self) -> None:
        if not self.am.mimir:
            self.counts = notification_counts(self.am.http.request("GET", "/metrics").text)
        groups = _groups(self.am)
        own: dict[str, dict[str, Any]] = {}
        own_groups, others = [], {}
        for group in groups:
            key = (str((group.get("receiver") or {}).get("name", "")),
                   tuple(sorted((str(k), str(v)) for k, v in group["labels"].items())))
            mine = [a for a in group["alerts"] if self._mine(a)]
            for alert in mine:
                own.setdefault(alert["labels"]["step_id"], alert)
            if mine:
                own_groups.append(key)
            else:
                others[key] = frozenset((str(a.get("fingerprint") or sorted(a["labels"].items())),
                                         str((a.get("status") or {}).get("state", ""))) for a in group["alerts"])
        moved = {} if self.others is None else _moves(self.others, others)
        self.others, self.own, self.own_groups = others, own, own_groups
        if not own_groups:  # nothing of the drill's was notified before this reading's counters
            self.base, self.changed = self.counts, moved
        else:
            self.changed.update(moved)

    def _mine(self, alert: Any) -> bool:
        labels = alert.get("labels") if isinstance(alert, dict) else None
        return isinstance(labels, dict) and labels.get("step_id") in self.steps and \
            all(labels.get(k) == v for k, v in self.labels.items())

    def follow(self, start: float, timeout: float, group_wait: float, say: Callable[[str], None],
               clock: Callable[[], float]) -> None:
        result, routed = self.result, None
        while True:
            self.read()
            if self._misrouted():
                return
            if routed is None and len(self.own) == len(self.steps) and \
                    set(result.expected) <= {r for r, _ in self.own_groups}:
                routed = clock()
                result.time_to_alert = routed - start
                result.receivers, result.state = sorted(result.expected), "active"
                self._confirm_route()
                say(f"drill {result.env} {result.tier}: {result.alertname} routed to {', '.join(result.receivers)} "
                    f"and grouped after {result.time_to_alert:.1f} s; "
                    + ("keeping it up for group_wait" if self.am.mimir else "waiting for its notification"))
            if routed is None:
                if clock() - start > timeout:
                    missing = [s for s in self.steps if s not in self.own]
                    result.problem = (f"{result.alertname} did not reach Alertmanager within {timeout:g} s for "
                                      f"{', '.join(missing)}" if missing else
                                      f"{result.alertname} reached Alertmanager but no alert group holds it "
                                      f"under {', '.join(result.expected)} within {timeout:g} s")
                    return
            elif self.am.mimir:
                if clock() - routed >= group_wait + POLL or clock() - start > timeout:
                    self._not_observable(clock() - routed)
                    return
            elif self._delivered(clock() - start, timeout):
                return
            time.sleep(POLL)

    def _misrouted(self) -> bool:
        result = self.result
        for step, alert in sorted(self.own.items()):
            receivers = sorted(str(r.get("name")) for r in alert.get("receivers", []) if isinstance(r, dict))
            status = alert.get("status") or {}
            if receivers != sorted(result.expected):
                result.receivers, result.state = receivers, status.get("state", "")
                result.problem = (f"{result.alertname} for {step} was routed to {', '.join(receivers) or 'no receiver'}"
                                  f", expected {', '.join(result.expected)}")
                return True
            if status.get("state") == "suppressed":
                result.receivers, result.state = receivers, "suppressed"
                why = "inhibited" if status.get("inhibitedBy") else "silenced"
                result.problem = f"{result.alertname} for {step} arrived but is {why}"
                return True
        return False

    def _confirm_route(self) -> None:
        result = self.result
        where = f"tenant {result.tenant}'s Alertmanager" if self.am.mimir else "Alertmanager"
        result.confirmed.append(f"{result.alertname} for {', '.join(self.steps)} is in {where}, active (not "
                                f"silenced or inhibited), routed to {', '.join(result.receivers)} as the spec intends")
        groups = "; ".join(f"{{{', '.join(f'{k}={v!r}' for k, v in labels)}}} under {receiver}"
                           for receiver, labels in sorted(self.own_groups))
        result.confirmed.append(f"Alertmanager holds its alert group{'s' if len(self.own_groups) > 1 else ''} "
                                f"{groups}")

    def _need(self) -> tuple[Counter[Key], bool]:
        """Notifications the drill's groups must cause, by counter; and whether the counters name receivers."""
        per_receiver = any(receiver is not None for receiver, _ in self.counts)
        need: Counter[Key] = Counter()
        for receiver, _ in self.own_groups:
            kinds = Counter(self.fallback) if self.notifiers is None else self.notifiers.get(receiver, Counter())
            for integration, n in kinds.items():
                need[(receiver if per_receiver else None, integration)] += n
        return need, per_receiver

    def _delivered(self, elapsed: float, timeout: float) -> bool:
        """True when the drill is done waiting for its notification (result filled in either way)."""
        result = self.result
        need, per_receiver = self._need()
        silent = sorted({r for r, _ in self.own_groups if self.notifiers is not None and not self.notifiers.get(r)})
        if silent:
            result.problem = (f"{result.alertname} reached {', '.join(silent)}, which has no notifier in the config "
                              f"Alertmanager runs: nothing is sent")
            return True
        counts, base = self.counts, self.base
        failed = {k: counts.get(k, [0.0, 0.0])[1] - base.get(k, [0.0, 0.0])[1] for k in need}
        sent = {k: counts.get(k, [0.0, 0.0])[0] - base.get(k, [0.0, 0.0])[0] - failed[k] for k in need}
        if all(sent[k] >= n for k, n in need.items()):
            return self._attribute(need, sent, failed, per_receiver, elapsed)
        if elapsed > timeout:
            broken = sorted({i for (_, i), n in failed.items() if n > 0})
            result.problem = (f"Alertmanager routed {result.alertname} to {', '.join(result.expected)} but "
                              + (f"could not deliver it ({', '.join(broken)} notifications failed; see "
                                 f"Alertmanager's log)" if broken else
                                 f"sent nothing for it within {timeout:g} s"))
            return True
        return False

    def _attribute(self, need: Counter[Key], sent: dict[Key, float], failed: dict[Key, float],
                   per_receiver: bool, elapsed: float) -> bool:
        result = self.result
        what = ", ".join(f"{sent[k]:g} {_counter_name(k)} notification{'' if sent[k] == 1 else 's'}"
                         for k in sorted(need, key=str))
        unit = "receiver" if per_receiver else "integration"
        sharing = (", ".join(sorted({r for r, _ in need if r})) if per_receiver else
                   f"receivers using {', '.join(sorted({i for _, i in need}))}")
        suspects = sorted(g for g in self.changed if any(self._shares(g, k) for k in need))
        if suspects:
            named = "; ".join(f"{receiver} {{{', '.join(f'{k}={v!r}' for k, v in labels)}}} {self.changed[(receiver, labels)]}"
                              for receiver, labels in suspects[:NAMED])
            more = f" and {len(suspects) - NAMED} more" if len(suspects) > NAMED else ""
            result.problem = (f"{result.alertname} reached {', '.join(result.receivers)} and {what} went out after "
                              f"its group formed, but other alert groups of {sharing} moved meanwhile "
                              f"({named}{more}); Alertmanager counts notifications per {unit}, not per alert, so "
                              f"whether one was the drill's is not known: run it again when they are quiet")
            result.unconfirmed = True
            return True
        result.delivered_after = elapsed
        clean = "none failed" if not any(failed.values()) else \
            f"{', '.join(f'{n:g} {_counter_name(k)}' for k, n in failed.items() if n)} failed meanwhile"
        one = sum(sent.values()) == 1
        result.confirmed.append(f"{what} sent after its group formed ({clean}), while no other alert group of "
                                f"{sharing} appeared, changed or went away: {'it was' if one else 'they were'} "
                                f"the drill's (Alertmanager counts a notification sent when the service's API "
                                f"accepts it, per {unit}; a repeat of another, unchanged group at that very "
                                f"moment would look the same)")
        return True

    def _shares(self, group: GroupKey, key: Key) -> bool:
        receiver, integration = key
        if receiver is not None:
            return group[0] == receiver
        return self.notifiers is None or self.notifiers.get(group[0], Counter()).get(integration, 0) > 0

    def _not_observable(self, held: float) -> None:
        result = self.result
        result.confirmed.append(f"it stayed firing {held:.1f} s after its group formed (group_wait of the "
                                f"spec's timing), so Alertmanager had it to send")
        result.not_confirmed.append(f"delivery: Mimir counts notifications per tenant only on its Alertmanager "
                                    f"replicas' own /metrics (cortex_alertmanager_notifications_total"
                                    f"{{user=\"{result.tenant}\"}}), which the tenant API does not serve; look for "
                                    f"the notification at {', '.join(result.receivers)}")


def _moves(before: dict[GroupKey, frozenset[tuple[str, str]]], after: dict[GroupKey, frozenset[tuple[str, str]]]
           ) -> dict[GroupKey, str]:
    moved = {}
    for key in before.keys() | after.keys():
        if key not in before:
            moved[key] = "appeared"
        elif key not in after:
            moved[key] = "went away"
        elif before[key] != after[key]:
            moved[key] = "changed"
    return moved


def _counter_name(key: Key) -> str:
    receiver, integration = key
    return f"{receiver} {integration}" if receiver else integration


_SAMPLE = re.compile(r"^(\w+)\{(.*)\}\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def notification_counts(text: str) -> dict[Key, list[float]]:
    """[sent, failed] notifications by (receiver, integration) from Alertmanager's /metrics: receiver is
    None unless the counters carry `receiver_name` (0.26+ with --enable-feature=receiver-name-in-metrics).
    Failures of all reasons are added up."""
    counts: dict[Key, list[float]] = {}
    for line in text.splitlines():
        if not line.startswith((SENT + "{", FAILED + "{")):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(2)))
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        key = (labels.get("receiver_name"), labels.get("integration", ""))
        counts.setdefault(key, [0.0, 0.0])[match.group(1) == FAILED] += value
    return counts


def _notifiers(am: _Am) -> dict[str, Counter[str]] | None:
    """Each receiver's notifiers by integration (`pagerduty_configs` of two -> pagerduty: 2) in the config
    Alertmanager runs (/api/v2/status); None when it cannot be read (the drill then assumes every other
    group shares the drill's notifiers)."""
    import yaml

    try:
        status = am.http.json(am.http.request("GET", f"{am.prefix}/api/v2/status"))
        config = yaml.safe_load(str((status.get("config") or {}).get("original") or ""))
    except (BackendError, yaml.YAMLError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("receivers"), list):
        return None
    out: dict[str, Counter[str]] = {}
    for receiver in config["receivers"]:
        if isinstance(receiver, dict) and "name" in receiver:
            out[str(receiver["name"])] = Counter({key.removesuffix("_configs"): len(value)
                                                  for key, value in receiver.items()
                                                  if key.endswith("_configs") and isinstance(value, list) and value})
    return out


def _alertmanager(env: Environment, url: str | None) -> _Am:
    """The environment's Alertmanager; for Mimir, `url` (like the spec's) is Mimir's base URL, as for diff
    and apply, and the tenant's Alertmanager API is under MIMIR_PREFIX."""
    url = url or os.environ.get("OBSGEN_ALERTMANAGER_URL")
    spec, http = connect(env, "alertmanager", "Alertmanager", url)
    mimir = spec.mode == "mimir"
    return _Am(http, MIMIR_PREFIX if mimir else "", mimir, (spec.tenant or "") if mimir else "")


def _groups(am: _Am) -> list[dict[str, Any]]:
    response = am.http.request("GET", f"{am.prefix}/api/v2/alerts/groups")
    groups = am.http.json(response, list)
    return [g for g in groups if isinstance(g, dict) and isinstance(g.get("labels"), dict)
            and isinstance(g.get("alerts"), list)
            and all(isinstance(a, dict) and isinstance(a.get("labels"), dict) for a in g["alerts"])]


def _alerts(am: _Am, labels: dict[str, str]) -> list[dict[str, Any]]:
    filters = [f'{k}="{v}"' for k, v in sorted(labels.items())]
    response = am.http.request("GET", f"{am.prefix}/api/v2/alerts", params={"filter": filters})
    alerts = am.http.json(response, list)
    return [a for a in alerts if isinstance(a, dict) and isinstance(a.get("labels"), dict)]


def _names(alerts: list[dict[str, Any]]) -> str:
    return ", ".join(sorted(str(a["labels"].get("step_id")) for a in alerts))
