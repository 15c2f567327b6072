"""Generated routing tests: label sets of every generated alert -> the receivers the spec intends.

The expected receivers come from the spec's intent, not from the generated
route tree: a tier's alerts go to the tier's channel; SLO page and ticket
alerts go to the channels `slo_alerting` names; with `page_on_any_failure` the
alerts of every non-critical tier also page, except the never-reported notice
of a not_reporting alert, which never pages. `obsgen verify` checks each case
with `amtool config routes test` against the generated Alertmanager config and
evaluates the inhibition cases itself (amtool cannot): a failing critical-tier
alert silences the lesser tiers of the same environment, and an SLO page
silences the ticket of the same SLO.
"""
from __future__ import annotations

from typing import Any

from obsgen import conventions as c
from obsgen import render
from obsgen.artifact import Artifact
from obsgen.compile.prometheus import rule_documents
from obsgen.model import Environment, Model

PATH = "tests/routing.yaml"


def compile_routing_tests(model: Model, env: Environment) -> list[Artifact]:
    alerts = _alerts(model, env)
    cases = [_route_case(model, env, labels) for labels in alerts]
    root = sorted(model.tiers, key=lambda t: {"critical": 0, "warning": 1, "info": 2}[t.severity])[-1].channel
    cases.append({"name": "an alert no route matches goes to the root receiver",
                  "labels": {"alertname": "SomethingElse", model.metrics.env_label: env.name},
                  "receivers": [root]})
    cases += _inhibition_cases(model, env, alerts)
    document = {"alertmanager_config": "../alertmanager/alertmanager.yaml", "environment": env.name,
                "tests": cases}
    return [Artifact(f"{env.name}/{PATH}", render.to_yaml(document, model.source))]


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


def intended_receivers(model: Model, env: Environment, labels: dict[str, str]) -> list[str]:
    slo_alert = labels.get(c.LABEL_SLO_ALERT)
    if slo_alert:
        return [model.slo_alerting.page_channel if slo_alert == "page" else model.slo_alerting.ticket_channel]
    tier = model.tier(labels[c.LABEL_TIER])
    notices = {f"{a.name}NoData" for a in model.alerts if a.kind == "not_reporting"}
    if labels.get("alertname") in notices:
        return [tier.channel]
    pager = next((t.channel for t in model.tiers if t.severity == "critical"), model.slo_alerting.page_channel)
    if env.policy.page_on_any_failure and tier.severity != "critical" and tier.channel != pager:
        return [pager, tier.channel]
    return [tier.channel]


def _route_case(model: Model, env: Environment, labels: dict[str, str]) -> dict[str, Any]:
    receivers = intended_receivers(model, env, labels)
    what = labels.get(c.LABEL_SLO) and f"SLO {labels[c.LABEL_SLO]} {labels[c.LABEL_SLO_ALERT]}" or \
        f"{labels[c.LABEL_TIER]} {labels['alertname']}"
    return {"name": f"{what} routes to {' and '.join(receivers)}", "labels": labels, "receivers": receivers}


def _inhibition_cases(model: Model, env: Environment, alerts: list[dict[str, str]]) -> list[dict[str, Any]]:
    env_label = model.metrics.env_label
    critical = {t.id for t in model.tiers if t.severity == "critical"}
    sources = [a for a in alerts if a.get(c.LABEL_TIER) in critical and a.get(c.LABEL_SEVERITY) == "critical"]
    lesser = [a for a in alerts if a.get(c.LABEL_TIER) not in critical | {c.ALL_STEPS}]
    cases: list[dict[str, Any]] = []
    if sources:
        source = sources[0]
        other_env = {**source, env_label: f"not-{env.name}"}
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
    return cases
