"""Alertmanager routing: tiers and SLO alert classes to receivers, with inhibition.

Kernel alerts page (PagerDuty), governance alerts go to the ticket channel
(Slack), optional ones to the informational channel; SLO page alerts page and
ticket alerts go to the ticket channel. Secrets appear only as *_file paths.
PagerDuty incidents link the runbook and the environment's dashboard; Slack
messages name both.
Targets Alertmanager 0.25 (quoted matcher values, no webhook url_file).

Two files per environment: `subtree.yaml`, the part obsgen owns in a shared
Alertmanager (see obsgen.compile.amtree: one route under the root selecting this
service and environment, receivers prefixed `<service>/<env>/`, inhibit rules
scoped to both), and `alertmanager.yaml`, a complete standalone config -- that
same subtree under a minimal root -- for an Alertmanager that serves only this
service, and the shape `obsgen apply` writes into an empty config.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from obsgen.compile import amtree
from obsgen.compile import conventions as c
from obsgen.compile import render
from obsgen.model.artifact import Artifact
from obsgen.compile.prometheus import dashboard_url
from obsgen.model import Channel, Environment, Model
from obsgen.spec import templates

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
# `drill` in every group_by: a fire drill's alerts (drill="true") form groups of their own, never one with a
# real alert, so a drill neither joins a real incident nor changes what a real notification lists.
PAGE_GROUP_BY = ["alertname", "env", c.LABEL_STEP, c.LABEL_SLO, c.DRILL_LABEL]  # one incident per step / SLO
CHAT_GROUP_BY = ["alertname", "env", c.LABEL_SLO, c.DRILL_LABEL]  # one message lists every failing step

# Notification texts. A group may hold firing and resolved alerts at once (Alertmanager sends the group
# whenever it changes): a firing notification names only the alerts that fire, and counts the resolved
# ones; a resolved notification names what resolved. A fire drill's notification says DRILL first.
_DRILL = '{{ if eq .CommonLabels.drill "true" }}[DRILL] {{ end }}'
_RESOLVED_ONLY = '{{ if eq .Status "resolved" }}%s{{ end }}'


def _listing(alerts: str, item: str, sep: str = ", ") -> str:
    """Go template text: `item` (with $a the alert) for each alert of `alerts`, separated by `sep`."""
    return f'{{{{ range $i, $a := {alerts} }}}}{{{{ if $i }}}}{sep}{{{{ end }}}}{item}{{{{ end }}}}'


_STEP = "{{ $a.Labels.step_id }}"
_SUMMARY = "{{ $a.Annotations.summary }}"
# What the notification is about: the firing alerts' summaries, or the resolved ones' when all resolved.
_ABOUT = ('{{ if eq .Status "firing" }}' + _listing(".Alerts.Firing", _SUMMARY, "; ") +
          '{{ else }}resolved: ' + _listing(".Alerts.Resolved", _SUMMARY, "; ") + '{{ end }}')

# Alertmanager adds its own `firing`, `resolved`, `num_firing` and `num_resolved` details (the raw
# "Labels:/Annotations:" dump of every alert) unless the config sets them: obsgen sets all four.
_DETAILS = {
    "step_id": "{{ .CommonLabels.step_id }}",
    "tier": "{{ .CommonLabels.tier }}",
    "env": "{{ .CommonLabels.env }}",
    "drill": '{{ if eq .CommonLabels.drill "true" }}true{{ else }}false{{ end }}',
    "message": _ABOUT,
    "description": "{{ .CommonAnnotations.description }}",
    "remediation": "{{ .CommonAnnotations.remediation }}",
    "runbook_url": "{{ .CommonAnnotations.runbook_url }}",
    "dashboard_url": "{{ .CommonAnnotations.dashboard_url }}",
    "firing": _listing(".Alerts.Firing", _STEP),
    "resolved": _RESOLVED_ONLY % _listing(".Alerts.Resolved", _STEP),
    "num_firing": "{{ .Alerts.Firing | len }}",
    "num_resolved": "{{ .Alerts.Resolved | len }}",
}
_PAGERDUTY_DESCRIPTION = _DRILL + "{{ .CommonLabels.alertname }} ({{ .CommonLabels.env }}): " + _ABOUT
_SLACK_TITLE = "[{{ .Status | toUpper }}{{ if eq .Status \"firing\" }}:{{ .Alerts.Firing | len }}{{ end }}] " \
               + _DRILL + "{{ .CommonLabels.alertname }} ({{ .CommonLabels.env }})"
_SLACK_ALERT = (
    "*{{ .Labels.step_id }}* (tier {{ .Labels.tier }}, {{ .Labels.severity }}): {{ .Annotations.summary }}\n"
    "Remediation: {{ .Annotations.remediation }}\n"
    "Runbook: {{ .Annotations.runbook_url }}\n"
    "{{ if .Annotations.dashboard_url }}Dashboard: {{ .Annotations.dashboard_url }}\n{{ end }}"
)
_SLACK_TEXT = (
    '{{ if eq .Status "firing" }}'
    "{{ range .Alerts.Firing }}" + _SLACK_ALERT + "{{ end }}"
    "{{ with .Alerts.Resolved }}({{ len . }} of this group resolved since the last message){{ end }}"
    "{{ else }}Resolved:\n"
    "{{ range .Alerts.Resolved }}*{{ .Labels.step_id }}* (tier {{ .Labels.tier }}, {{ .Labels.severity }}): "
    "{{ .Annotations.summary }}\n{{ end }}"
    "{{ end }}"
)


def compile_alertmanager(model: Model, env: Environment) -> list[Artifact]:
    return list(_compile(model, model.source, env))


@lru_cache(maxsize=16)  # the routing tests and docs read the same config
def _compile(model: Model, source: str, env: Environment) -> tuple[Artifact, ...]:
    """Cached by value; `source` is part of the key because the model's equality ignores it."""
    subtree = compile_subtree(model, env)
    return (Artifact(f"{env.name}/alertmanager/{SUBTREE}", render.to_yaml(subtree, model.source)),
            Artifact(f"{env.name}/alertmanager/{STANDALONE}", render.to_yaml(standalone(model, env, subtree),
                                                                            model.source)))


SUBTREE, STANDALONE = "subtree.yaml", "alertmanager.yaml"


def compile_subtree(model: Model, env: Environment) -> dict[str, Any]:
    """What obsgen owns in a shared config, and where its route hangs (`position`)."""
    owner = c.am_owner(model, env)
    route = {"matchers": list(owner.matchers), **_route(model, env)}
    if env.alertmanager_placement[1]:
        route["continue"] = True
    return {
        "position": env.alertmanager_placement[0],
        "route": route,
        "receivers": [_receiver(model, env, ch) for ch in model.channels],
        "inhibit_rules": _inhibit_rules(model, owner),
    }


def minimal_root(model: Model, env: Environment) -> dict[str, Any]:
    """The root of a config that has none: obsgen's least severe channel catches what no route matches."""
    return {"receiver": c.am_owner(model, env).receiver(_least_severe(model).channel), "group_by": CHAT_GROUP_BY,
            "group_wait": model.timing.group_wait, "group_interval": model.timing.group_interval,
            "repeat_interval": model.timing.repeat_interval}


def standalone(model: Model, env: Environment, subtree: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"global": {"resolve_timeout": "5m"}}
    amtree.place(config, c.am_owner(model, env), route=subtree["route"], position=subtree["position"],
                 receivers=subtree["receivers"], inhibit_rules=subtree["inhibit_rules"],
                 root=minimal_root(model, env))
    return config


def _least_severe(model: Model) -> Any:
    return sorted(model.tiers, key=lambda t: SEVERITY_RANK[t.severity])[-1]


def _matcher(label: str, value: str, op: str = "=") -> str:
    return f'{label}{op}"{value}"'


def _child(model: Model, env: Environment, channel_id: str, *matchers: str, cont: bool = False) -> dict[str, Any]:
    kind = model.channel(channel_id).type
    route: dict[str, Any] = {"receiver": c.am_owner(model, env).receiver(channel_id), "matchers": list(matchers),
                             "group_by": PAGE_GROUP_BY if kind == "pagerduty" else CHAT_GROUP_BY}
    if cont:
        route["continue"] = True
    return route


def _route(model: Model, env: Environment) -> dict[str, Any]:
    routes = []
    if env.policy.page_on_any_failure:
        page_channel = next((t.channel for t in model.tiers if t.severity == "critical"), model.slo_alerting.page_channel)
        routes.append(_child(model, env, page_channel, _matcher(c.LABEL_PAGE, "oncall"), cont=True))
    if any(slo.page for slo in model.slos):
        routes.append(_child(model, env, model.slo_alerting.page_channel, _matcher(c.LABEL_SLO_ALERT, "page")))
    if model.slos:
        routes.append(_child(model, env, model.slo_alerting.ticket_channel, _matcher(c.LABEL_SLO_ALERT, "ticket")))
    routes += [_child(model, env, t.channel, _matcher(c.LABEL_TIER, t.id)) for t in model.tiers]
    return {
        "receiver": c.am_owner(model, env).receiver(_least_severe(model).channel),
        "group_by": CHAT_GROUP_BY,
        "group_wait": model.timing.group_wait,
        "group_interval": model.timing.group_interval,
        "repeat_interval": model.timing.repeat_interval,
        "routes": routes,
    }


def _inhibit_rules(model: Model, owner: amtree.Owner) -> list[dict[str, Any]]:
    """Each rule selects this service and environment on both sides, so it never mutes another team's alert."""
    env_label = model.metrics.env_label
    scope = list(owner.matchers)
    rules = []
    critical = [t.id for t in model.tiers if t.severity == "critical"]
    lesser = [t.id for t in model.tiers if t.severity != "critical"]
    for tier in critical:
        if lesser:  # a failing critical step silences the lesser tiers' steps of the same environment; a drill
            # never, nor an alert about whole runs (no passing run: that may be a governance failure in prod)
            rules.append({"source_matchers": [*scope, _matcher(c.LABEL_TIER, tier),
                                              _matcher(c.LABEL_SEVERITY, "critical"), c.NOT_DRILL,
                                              _matcher(c.LABEL_STEP, c.ALL_STEPS, "!=")],
                          # not the alerts about whole runs (liveness, slow runs): a job that failed and then
                          # died must still say it stopped reporting
                          "target_matchers": [*scope, _matcher(c.LABEL_TIER, "|".join(lesser), "=~"),
                                              _matcher(c.LABEL_STEP, c.ALL_STEPS, "!=")],
                          "equal": [env_label]})
    if any(slo.page for slo in model.slos):  # a page for an SLO silences its ticket
        rules.append({"source_matchers": [*scope, _matcher(c.LABEL_SLO_ALERT, "page")],
                      "target_matchers": [*scope, _matcher(c.LABEL_SLO_ALERT, "ticket")],
                      "equal": [env_label, c.LABEL_SLO]})
    return rules


def _receiver(model: Model, env: Environment, channel: Channel) -> dict[str, Any]:
    target = env.target(channel.id)
    if channel.type == "pagerduty":
        config: dict[str, Any] = {
            "routing_key_file": target.routing_key_file,
            "send_resolved": True,
            "severity": '{{ if .CommonLabels.severity }}{{ .CommonLabels.severity }}{{ else }}critical{{ end }}',
            "description": _PAGERDUTY_DESCRIPTION,
            "client": f"obsgen {model.service.name}",
            "details": dict(_DETAILS),
            "links": [{"href": "{{ .CommonAnnotations.runbook_url }}", "text": "Runbook"}],
        }
        if dashboard_url(model, env):  # every alert of the environment carries one (see compile.prometheus)
            config["links"].append({"href": "{{ .CommonAnnotations.dashboard_url }}", "text": "Dashboard"})
        if target.url:
            config["url"] = target.url
        return {"name": c.am_owner(model, env).receiver(channel.id), "pagerduty_configs": [config]}
    config = {
        "api_url_file": target.api_url_file,
        "send_resolved": True,
        "title": _SLACK_TITLE,
        "text": _SLACK_TEXT,
    }
    if target.slack_channel:
        config["channel"] = templates.literal(target.slack_channel)  # Alertmanager expands it as a template
    return {"name": c.am_owner(model, env).receiver(channel.id), "slack_configs": [config]}
