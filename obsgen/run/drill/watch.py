"""The drill's watch over Alertmanager while its alert is up: routed, grouped, and whether the notifications
that went out were its own."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from obsgen.run.drill.alertmanager import Key, Am, read_groups, read_notifiers, notification_counts
from obsgen.run.drill.result import DrillResult

POLL = 0.5  # seconds between Alertmanager reads
NAMED = 3  # other alert groups named in a message
GroupKey = tuple[str, tuple[tuple[str, str], ...]]  # (receiver, group labels)


class Watch:
    """Alertmanager as the drill sees it, one reading per poll: the notification counters, then the alert
    groups (in that order, so a reading whose groups hold none of the drill's was taken before any of
    them existed), and which other alert groups appeared, changed or went away since the baseline."""

    def __init__(self, am: Am, labels: dict[str, str], steps: list[str], result: DrillResult,
                 fallback: list[str]) -> None:
        self.am, self.labels, self.steps, self.result = am, labels, steps, result
        self.fallback = fallback  # the spec's channel types, when Alertmanager's config cannot be read
        self.notifiers = None if am.mimir else read_notifiers(am)
        self.counts: dict[Key, list[float]] = {}
        self.base: dict[Key, list[float]] = {}
        self.others: dict[GroupKey, frozenset[tuple[str, str]]] | None = None
        self.changed: dict[GroupKey, str] = {}  # other groups that moved since the baseline
        self.own: dict[str, dict[str, Any]] = {}  # step_id -> the drill's alert
        self.own_groups: list[GroupKey] = []

    def read(self) -> None:
        if not self.am.mimir:
            self.counts = notification_counts(self.am.http.request("GET", "/metrics").text)
        groups = read_groups(self.am)
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
