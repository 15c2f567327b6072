"""Generated routing tests: label sets of every generated alert -> the receivers the spec intends.

The expected receivers come from the spec's intent, not from the generated
route tree: a tier's alerts go to the tier's channel; SLO page and ticket
alerts go to the channels `slo_alerting` names; with `page_on_any_failure` the
alerts of every non-critical tier also page, except the never-reported notice
of a not_reporting alert, which never pages (nor does the not_reporting alert itself where a
no_passing_run alert pages for a silent job). A channel's Alertmanager receiver
is named `<service>/<env>/<channel>` (see obsgen.compile.amtree).

Every case runs against two configs (unless it names one with `config:`):
`standalone`, the generated `alertmanager/alertmanager.yaml`, and `shared`,
obsgen's subtree placed (where the spec says, first or last, with its
`continue`) into a fixed config of other teams -- a foreign root receiver,
two foreign routes with their receivers, a foreign inhibit rule, templates
and a `time_intervals` entry -- written next to the tests as
`shared-alertmanager.yaml`. In the shared config obsgen's alerts must still
reach exactly obsgen's receivers, other teams' alerts their own, and an alert
no route matches the foreign root's receiver. `routing.yaml`'s `subtree:`
tells `obsgen verify` to test the shared config with obsgen's parts taken from
`alertmanager/subtree.yaml` (what `apply` deploys into a shared Alertmanager),
so a hand edit of either file is caught.

`obsgen verify` checks each routing case with `amtool config routes test`
and evaluates the inhibition cases itself (amtool cannot): a failing
critical-tier alert silences the lesser tiers' step alerts of the same
environment but never an alert about whole runs (not reporting, slow runs),
nor a fire drill's alert anything; an SLO page silences the ticket of the same
SLO, and obsgen's inhibit rules never mute another team's alert.
"""
from __future__ import annotations

import copy
from typing import Any

from obsgen.compile import amtree
from obsgen.compile import conventions as c
from obsgen.compile import render
from obsgen.model.artifact import Artifact
from obsgen.compile.alertmanager import compile_subtree
from obsgen.compile.prometheus import rule_documents
from obsgen.model import Environment, Model

PATH = "tests/routing.yaml"
SHARED_PATH = "tests/shared-alertmanager.yaml"
STANDALONE, SHARED = "standalone", "shared"
CONFIGS = {STANDALONE: "../alertmanager/alertmanager.yaml", SHARED: "shared-alertmanager.yaml"}
SUBTREE_FILE = "../alertmanager/subtree.yaml"  # what `apply` puts into a shared config

# The other teams of the shared test config: their root receiver, and (service, receiver) per foreign route.
FOREIGN_ROOT = "platform-default"
FOREIGN_TEAMS = (("billing", "billing-oncall"), ("search", "search-chat"), ("checkout", "checkout-chat"))
MAINTENANCE = "weekend-maintenance"


def compile_routing_tests(model: Model, env: Environment) -> list[Artifact]:
    alerts = _alerts(model, env)
    owner = c.am_owner(model, env)
    teams = foreign_teams(model)
    cases = [_route_case(model, env, labels) for labels in alerts]
    somewhere_else = {"alertname": "SomethingElse", model.metrics.env_label: env.name}
    cases.append({"name": "an alert no route matches goes to the root receiver (obsgen's minimal root)",
                  "config": STANDALONE, "labels": somewhere_else,
                  "receivers": [owner.receiver(_least_severe(model).channel)]})
    cases.append({"name": "an alert no route matches goes to the root receiver (the shared config's own)",
                  "config": SHARED, "labels": somewhere_else, "receivers": [FOREIGN_ROOT]})
    cases += _foreign_cases(model, env, alerts, teams)
    cases += _inhibition_cases(model, env, alerts, teams)
    document = {"configs": dict(CONFIGS), "environment": env.name,
                "subtree": {"file": SUBTREE_FILE, "into": SHARED,
                            "owner": {"service": owner.service, "env": owner.env, "env_label": owner.env_label}},
                "tests": cases}
    return [Artifact(f"{env.name}/{PATH}", render.to_yaml(document, model.source)),
            Artifact(f"{env.name}/{SHARED_PATH}", render.to_yaml(shared_config(model, env), model.source))]


def _least_severe(model: Model) -> Any:
    return sorted(model.tiers, key=lambda t: {"critical": 0, "warning": 1, "info": 2}[t.severity])[-1]


def foreign_teams(model: Model) -> list[tuple[str, str]]:
    """The two other teams of the shared config (never one named like this spec's service)."""
    return [t for t in FOREIGN_TEAMS if t[0] != model.service.name][:2]


def foreign_config(model: Model, env: Environment) -> dict[str, Any]:
    """Other teams' Alertmanager config, before obsgen's subtree goes in: a root with its own receiver,
    two routes of other services, their receivers, an inhibit rule of theirs, their templates and a
    maintenance window."""
    env_label = model.metrics.env_label
    (first, first_receiver), (second, second_receiver) = foreign_teams(model)
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {"receiver": FOREIGN_ROOT, "group_by": ["alertname", env_label], "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "4h",
                  "routes": [{"matchers": [f'service="{first}"'], "receiver": first_receiver},
                             {"matchers": [f'service="{second}"'], "receiver": second_receiver,
                              "mute_time_intervals": [MAINTENANCE]}]},
        "receivers": [{"name": FOREIGN_ROOT}, {"name": first_receiver}, {"name": second_receiver}],
        "inhibit_rules": [{"source_matchers": [f'service="{first}"', 'severity="critical"'],
                           "target_matchers": [f'service="{first}"', 'severity="warning"'],
                           "equal": [env_label]}],
        "templates": ["/etc/alertmanager/templates/*.tmpl"],
        "time_intervals": [{"name": MAINTENANCE, "time_intervals": [{"weekdays": ["saturday", "sunday"]}]}],
    }


def shared_config(model: Model, env: Environment) -> dict[str, Any]:
    """obsgen's subtree placed into the other teams' config where the spec says (first or last, `continue`)."""
    subtree = copy.deepcopy(compile_subtree(model, env))
    config = foreign_config(model, env)
    amtree.place(config, c.am_owner(model, env), route=subtree["route"], position=subtree["position"],
                 receivers=subtree["receivers"], inhibit_rules=subtree["inhibit_rules"])
    return config


def _alerts(model: Model, env: Environment) -> list[dict[str, str]]:
    """The label set of every generated alert (one per alert name and routing-relevant labels)."""
    seen, out = set(), []
    for document in rule_documents(model, env).values():
        for group in document["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                labels = {"alertname": rule["alert"], **{k: str(v) for k, v in rule.get("labels", {}).items()}}
                key = tuple(sorted((k, v) for k, v in labels.items() if k != c.LABEL_STEP))
                if key not in seen:
                    seen.add(key)
                    out.append(labels)
    return out


def intended_channels(model: Model, env: Environment, labels: dict[str, str]) -> list[str]:
    """The spec's channels (ids) an alert with these labels should reach, in Alertmanager's order."""
    slo_alert = labels.get(c.LABEL_SLO_ALERT)
    if slo_alert:
        return [model.slo_alerting.page_channel if slo_alert == "page" else model.slo_alerting.ticket_channel]
    tier = model.tier(labels[c.LABEL_TIER])
    notices = {f"{a.name}NoData" for a in model.alerts if a.kind == "not_reporting"}
    if labels.get("alertname") in notices:
        return [tier.channel]
    silent = {a.name for a in model.alerts if a.kind == "not_reporting"}
    freshness = any(a.kind == "no_passing_run" and a.params_for(env.name).enabled for a in model.alerts)
    if labels.get("alertname") in silent and freshness:  # the no_passing_run alert pages for a silent job
        return [tier.channel]
    pager = next((t.channel for t in model.tiers if t.severity == "critical"), model.slo_alerting.page_channel)
    if env.policy.page_on_any_failure and tier.severity != "critical" and tier.channel != pager:
        return [pager, tier.channel]
    return [tier.channel]


def intended_receivers(model: Model, env: Environment, labels: dict[str, str]) -> list[str]:
    """The Alertmanager receivers (`<service>/<env>/<channel>`) of `intended_channels`."""
    owner = c.am_owner(model, env)
    return [owner.receiver(channel) for channel in intended_channels(model, env, labels)]


def _describe(labels: dict[str, str]) -> str:
    return labels.get(c.LABEL_SLO) and f"SLO {labels[c.LABEL_SLO]} {labels[c.LABEL_SLO_ALERT]}" or \
        f"{labels[c.LABEL_TIER]} {labels['alertname']}"


def _route_case(model: Model, env: Environment, labels: dict[str, str]) -> dict[str, Any]:
    receivers = intended_receivers(model, env, labels)
    return {"name": f"{_describe(labels)} routes to {' and '.join(receivers)}", "labels": labels,
            "receivers": receivers}


def _kernel_like(model: Model, alerts: list[dict[str, str]]) -> dict[str, str]:
    """A generated alert of a critical tier (or, without one, the first alert)."""
    critical = {t.id for t in model.tiers if t.severity == "critical"}
    return next((a for a in alerts if a.get(c.LABEL_TIER) in critical), alerts[0])


def _foreign_cases(model: Model, env: Environment, alerts: list[dict[str, str]],
                   teams: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Shared config only: other teams' alerts (labelled like obsgen's but for another service) reach
    their own receivers, and obsgen's alert of another environment reaches none of obsgen's."""
    if not alerts:
        return []
    like = _kernel_like(model, alerts)
    cases = [{"name": f"another team's alert (service={service}, otherwise like {like['alertname']}) "
                      f"reaches its own receiver {receiver}",
              "config": SHARED, "labels": {**like, "service": service}, "receivers": [receiver]}
             for service, receiver in teams]
    env_label = model.metrics.env_label
    cases.append({"name": f"{like['alertname']} of another environment ({env_label}=not-{env.name}) reaches "
                          f"none of obsgen's receivers but the shared root's",
                  "config": SHARED, "labels": {**like, env_label: f"not-{env.name}"}, "receivers": [FOREIGN_ROOT]})
    return cases


def _inhibition_cases(model: Model, env: Environment, alerts: list[dict[str, str]],
                      teams: list[tuple[str, str]]) -> list[dict[str, Any]]:
    env_label = model.metrics.env_label
    critical = {t.id for t in model.tiers if t.severity == "critical"}
    sources = [a for a in alerts if a.get(c.LABEL_TIER) in critical and a.get(c.LABEL_SEVERITY) == "critical"]
    lesser = [a for a in alerts if a.get(c.LABEL_TIER) not in critical | {c.ALL_STEPS}]
    runs = [a for a in lesser if a.get(c.LABEL_STEP) == c.ALL_STEPS]  # about whole runs: never silenced
    lesser = [a for a in lesser if a not in runs]
    cases: list[dict[str, Any]] = []
    if sources:
        source = sources[0]
        other_env = {**source, env_label: f"not-{env.name}"}
        for target in runs:
            cases.append({"name": f"{target[c.LABEL_TIER]} {target['alertname']} (about whole runs) is not "
                                  f"silenced while {source['alertname']} fires in {env.name}",
                          "labels": target, "firing": [source], "inhibited": False})
        for target in lesser[:1]:
            cases.append({"name": f"{target[c.LABEL_TIER]} {target['alertname']} is not silenced by a fire "
                                  f"drill's {source['alertname']}",
                          "labels": target, "firing": [{**source, c.DRILL_LABEL: "true"}], "inhibited": False})
        for target in lesser:
            cases.append({"name": f"{target[c.LABEL_TIER]} {target['alertname']} is silenced while "
                                  f"{source['alertname']} fires in {env.name}",
                          "labels": target, "firing": [source], "inhibited": True})
            cases.append({"name": f"{target[c.LABEL_TIER]} {target['alertname']} is not silenced by "
                                  f"{source['alertname']} of another environment",
                          "labels": target, "firing": [other_env], "inhibited": False})
        for target in lesser[:1]:
            cases.append({"name": f"{source['alertname']} is not silenced by {target['alertname']}",
                          "labels": source, "firing": [target], "inhibited": False})
            for service, _ in teams[:1]:
                cases.append({"name": f"another team's alert (service={service}, otherwise like "
                                      f"{target['alertname']}) is not silenced while {source['alertname']} "
                                      f"fires in {env.name}",
                              "labels": {**target, "service": service}, "firing": [source], "inhibited": False})
    pages = [a for a in alerts if a.get(c.LABEL_SLO_ALERT) == "page"]
    for page in pages:
        ticket = next(a for a in alerts if a.get(c.LABEL_SLO_ALERT) == "ticket"
                      and a.get(c.LABEL_SLO) == page[c.LABEL_SLO])
        cases.append({"name": f"SLO {page[c.LABEL_SLO]} ticket is silenced while its page fires",
                      "labels": ticket, "firing": [page], "inhibited": True})
        others = [p for p in pages if p[c.LABEL_SLO] != page[c.LABEL_SLO]]
        if others:
            cases.append({"name": f"SLO {page[c.LABEL_SLO]} ticket is not silenced by the page of "
                                  f"SLO {others[0][c.LABEL_SLO]}",
                          "labels": ticket, "firing": [others[0]], "inhibited": False})
        for service, _ in teams[:1]:
            cases.append({"name": f"another team's ticket (service={service}, otherwise like SLO "
                                  f"{page[c.LABEL_SLO]}'s) is not silenced while SLO {page[c.LABEL_SLO]}'s "
                                  f"page fires",
                          "labels": {**ticket, "service": service}, "firing": [page], "inhibited": False})
    return cases
