"""Semantic checks a JSON Schema cannot express: references, uniqueness, ranges, PromQL.

Each check takes the located document and returns problems; they run even when
the schema found problems, so a user sees every mistake at once. They read the
raw document defensively (a wrong type is the schema's to report, not ours).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterator

from obsgen.model import durations
from obsgen.errors import Problem
from obsgen.model.names import grafana_dashboard_title, grafana_folder_title, slug
from obsgen.spec.bounds import shown
from obsgen.spec.source import Located
from obsgen.errors import did_you_mean

Check = Callable[[Located], Iterator[Problem]]
_PANELS_NEEDING_SLOS = ("error_budget_remaining", "burn_rate")


def _items(data: Any, key: str) -> list[tuple[int, dict]]:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)]


def _ids(data: Any, key: str, id_key: str = "id") -> set[str]:
    return {v[id_key] for _, v in _items(data, key) if isinstance(v.get(id_key), str)}


def _unknown(what: str, value: str, known: set[str]) -> str:
    return f"unknown {what} {shown(value)}{did_you_mean(value, known)} (known: {', '.join(sorted(known)) or 'none'})"


def duplicate_ids(doc: Located) -> Iterator[Problem]:
    for section, id_key in (("tiers", "id"), ("steps", "id"), ("channels", "id"), ("environments", "name"),
                            ("slos", "id"), ("alerts", "name"), ("dashboards", "id")):
        seen: dict[str, int] = {}
        for i, item in _items(doc.data, section):
            value = item.get(id_key)
            if not isinstance(value, str):
                continue
            if value in seen:
                yield doc.problem((section, i, id_key),
                                  f"duplicate {id_key} {shown(value)} (first used at {section}[{seen[value]}])")
            else:
                seen[value] = i


def references(doc: Located) -> Iterator[Problem]:
    data = doc.data
    tiers, channels, steps = _ids(data, "tiers"), _ids(data, "channels"), _ids(data, "steps")
    envs = _ids(data, "environments", "name")
    for i, tier in _items(data, "tiers"):
        if isinstance(tier.get("channel"), str) and tier["channel"] not in channels:
            yield doc.problem(("tiers", i, "channel"), _unknown("channel", tier["channel"], channels))
    for i, step in _items(data, "steps"):
        if isinstance(step.get("tier"), str) and step["tier"] not in tiers:
            yield doc.problem(("steps", i, "tier"), _unknown("tier", step["tier"], tiers))
    for i, alert in _items(data, "alerts"):
        if isinstance(alert.get("tier"), str) and alert["tier"] not in tiers:
            yield doc.problem(("alerts", i, "tier"), _unknown("tier", alert["tier"], tiers))
        if isinstance(alert.get("step_id"), str) and alert["step_id"] not in steps:
            yield doc.problem(("alerts", i, "step_id"), _unknown("step", alert["step_id"], steps))
        for env in alert.get("overrides") or {} if isinstance(alert.get("overrides"), dict) else {}:
            if env not in envs:
                yield doc.problem(("alerts", i, "overrides", env), _unknown("environment", env, envs), at_key=True)
    slo_alerting = data.get("slo_alerting") if isinstance(data, dict) else None
    if isinstance(slo_alerting, dict):
        for key in ("page_channel", "ticket_channel"):
            if isinstance(slo_alerting.get(key), str) and slo_alerting[key] not in channels:
                yield doc.problem(("slo_alerting", key), _unknown("channel", slo_alerting[key], channels))


def environments(doc: Located) -> Iterator[Problem]:
    data = doc.data
    channel_types = {c["id"]: c.get("type") for _, c in _items(data, "channels") if isinstance(c.get("id"), str)}
    severities = {t["id"]: t.get("severity") for _, t in _items(data, "tiers") if isinstance(t.get("id"), str)}
    for i, env in _items(data, "environments"):
        targets = env.get("channels") if isinstance(env.get("channels"), dict) else {}
        for channel in sorted(set(targets) - set(channel_types)):
            yield doc.problem(("environments", i, "channels", channel),
                              _unknown("channel", channel, set(channel_types)), at_key=True)
        if isinstance(env.get("channels"), dict):
            for channel in sorted(set(channel_types) - set(targets)):
                yield doc.problem(("environments", i, "channels"), f"no target for channel {channel!r}")
        for channel, target in targets.items():
            kind = channel_types.get(channel)
            if not isinstance(target, dict):
                continue
            need = {"pagerduty": "routing_key_file", "slack": "api_url_file"}.get(kind or "")
            if need and need not in target and not any(k in target for k in ("routing_key", "api_url", "webhook_url",
                                                                               "service_key")):
                yield doc.problem(("environments", i, "channels", channel), f"a {kind} channel needs {need!r}")
            wrong = {"pagerduty": ("api_url_file", "channel"), "slack": ("routing_key_file", "url")}.get(kind or (), ())
            for key in wrong:
                if key in target:
                    yield doc.problem(("environments", i, "channels", channel, key),
                                      f"{key!r} does not apply to a {kind} channel")
        policy = env.get("policy") if isinstance(env.get("policy"), dict) else {}
        tolerance = policy.get("tolerance") if isinstance(policy.get("tolerance"), dict) else {}
        for tier, count in tolerance.items():
            if tier not in severities:
                yield doc.problem(("environments", i, "policy", "tolerance", tier),
                                  _unknown("tier", tier, set(severities)), at_key=True)
            elif severities[tier] == "critical" and count != 0:
                yield doc.problem(("environments", i, "policy", "tolerance", tier),
                                  f"tier {tier!r} is critical: its failures are always fatal, tolerance must be 0")
        for kind, backend in (env.get("backends") or {}).items() if isinstance(env.get("backends"), dict) else ():
            if isinstance(backend, dict) and backend.get("token_env") and backend.get("token_file"):
                yield doc.problem(("environments", i, "backends", kind), "set token_env or token_file, not both")
            if isinstance(backend, dict) and backend.get("mode") == "prometheus" and "rules_dir" not in backend:
                yield doc.problem(("environments", i, "backends", kind), "mode prometheus needs 'rules_dir'")
            if isinstance(backend, dict) and backend.get("mode") == "alertmanager" and "config_file" not in backend:
                yield doc.problem(("environments", i, "backends", kind), "mode alertmanager needs 'config_file'")
            if isinstance(backend, dict) and backend.get("owns") == "whole" and "route" in backend:
                yield doc.problem(("environments", i, "backends", kind, "route"),
                                  "'route' places obsgen's route in a shared config; with owns: whole obsgen "
                                  "writes the whole config, so remove 'route' or use owns: subtree")


_RETIRED_METRICS = {
    "runs_total": "obsgen emit no longer keeps run counters in the Pushgateway (a read-modify-write that races "
                  "and restarts can corrupt); it writes one series per run, named by metrics.run_timestamp",
    "duration_buckets": "obsgen emit writes each run's duration (metrics.run_duration, one series per run) "
                        "instead of a histogram, so a latency threshold is any number of seconds",
}


def metrics(doc: Located) -> Iterator[Problem]:
    """Keys of `metrics` retired in 0.9.0, with what replaced them."""
    given = doc.data.get("metrics") if isinstance(doc.data, dict) else None
    for key, why in _RETIRED_METRICS.items():
        if isinstance(given, dict) and key in given:
            yield doc.problem(("metrics", key), f"no longer used: {why}; remove it")


def slos(doc: Located) -> Iterator[Problem]:
    for i, slo in _items(doc.data, "slos"):
        objective = slo.get("objective")
        if isinstance(objective, (int, float)) and not isinstance(objective, bool) and not 0 < objective < 1:
            example = f"{objective / 100:g}" if 50 <= objective < 100 else "0.95"
            yield doc.problem(("slos", i, "objective"), f"objective {objective!r} is out of range: write it as a "
                                                        f"ratio between 0 and 1, e.g. {example}")
        period = slo.get("period", "30d")
        if isinstance(period, str) and durations.is_duration(period):
            secs = durations.seconds(period)
            if secs % 86400 or len([c for c in period if c.isalpha()]) != 1:
                yield doc.problem(("slos", i, "period"), f"period {period!r} must be whole days or weeks, e.g. 7d, 28d, 30d")
            elif secs < 3 * 86400:
                yield doc.problem(("slos", i, "period"), f"period {period!r} is shorter than the 3d burn-rate window")
        sli = slo.get("sli") if isinstance(slo.get("sli"), dict) else {}
        kind = sli.get("kind")
        if kind == "latency":
            threshold = sli.get("threshold_seconds")
            if threshold is None:
                yield doc.problem(("slos", i, "sli"), "a latency SLI needs threshold_seconds")
        if kind == "ratio":
            for key in ("error_query", "total_query"):
                if key not in sli:
                    yield doc.problem(("slos", i, "sli"), f"a ratio SLI needs {key!r}")
        elif kind is not None:
            for key in ("error_query", "total_query"):
                if key in sli:
                    yield doc.problem(("slos", i, "sli", key), f"{key!r} applies only to kind ratio")
            if sli.get("counts") == "events":
                yield doc.problem(("slos", i, "sli", "counts"), f"a {kind} SLI counts the selftest's runs; "
                                  f"counts: events applies only to kind ratio (an SLI on requests)")



def cadences(doc: Located) -> Iterator[Problem]:
    """A cadence of 0 means no runs at all: nothing could be fitted to it."""
    for i, env in _items(doc.data, "environments"):
        cadence = env.get("cadence") if isinstance(env.get("cadence"), dict) else {}
        for key, value in cadence.items():
            if durations.is_duration(value) and durations.seconds(value) <= 0:
                yield doc.problem(("environments", i, "cadence", key),
                                  f"cadence {key} {value} is zero: give the longest normal gap between two runs, "
                                  f"e.g. 15m, 1h, 1d")


_ALERT_NEEDS = {"custom": ("expr",), "slow_runs": ("threshold_seconds",)}


def alerts(doc: Located) -> Iterator[Problem]:
    steps_by_tier: dict[str, int] = {}
    for _, step in _items(doc.data, "steps"):
        steps_by_tier[step.get("tier")] = steps_by_tier.get(step.get("tier"), 0) + 1
    for i, alert in _items(doc.data, "alerts"):
        kind = alert.get("kind")
        for key in _ALERT_NEEDS.get(kind, ()):
            if key not in alert:
                yield doc.problem(("alerts", i), f"a {kind} alert needs {key!r}")
        if kind != "custom":
            for key in ("expr", "step_id"):
                if key in alert:
                    yield doc.problem(("alerts", i, key), f"{key!r} applies only to kind custom")
        if kind == "step_failed" and isinstance(alert.get("tier"), str) and not steps_by_tier.get(alert["tier"]):
            yield doc.problem(("alerts", i, "tier"), f"no step has tier {alert['tier']!r}, so this alert can never fire")
        elif kind == "step_failed" and isinstance(alert.get("tier"), str):
            yield from _beyond_tolerance(doc, i, alert, steps_by_tier[alert["tier"]])
        if kind in ("not_reporting", "no_passing_run"):
            yield from _stale_after_cadence(doc, i, alert)


def _cadence(env: dict) -> tuple[str, str]:
    """(interval, how the spec says it) of an environment's cadence; the default is every 1h."""
    cadence = env.get("cadence") if isinstance(env.get("cadence"), dict) else {}
    for key in ("at_least_every", "every"):
        if durations.is_duration(cadence.get(key)):
            return cadence[key], f"{key.replace('_', ' ')} {cadence[key]}"
    return "1h", "every 1h (the default)"


def _stale_after_cadence(doc: Located, i: int, alert: dict) -> Iterator[Problem]:
    """A stale_after shorter than the cadence would alert between two normal runs."""
    overrides = alert.get("overrides") if isinstance(alert.get("overrides"), dict) else {}
    for _, env in _items(doc.data, "environments"):
        name = env.get("name")
        override = overrides.get(name) if isinstance(overrides.get(name), dict) else {}
        path = ("alerts", i, "overrides", name, "stale_after") if "stale_after" in override else \
            ("alerts", i, "stale_after")
        given = override.get("stale_after", alert.get("stale_after"))
        if not durations.is_duration(given) or not _enabled_in(alert, name):
            continue
        interval, said = _cadence(env)
        if durations.seconds(given) < durations.seconds(interval):
            yield doc.problem(path, f"stale_after {given} is shorter than {name}'s cadence ({said}): it would "
                                    f"alert between two normal runs; make it longer, or leave it out for the "
                                    f"default of two cadence intervals plus 10m")


def _enabled_in(alert: dict, env: str) -> bool:
    override = (alert.get("overrides") or {}).get(env)
    return not (isinstance(override, dict) and override.get("enabled") is False)


def _beyond_tolerance(doc: Located, i: int, alert: dict, steps: int) -> Iterator[Problem]:
    """A step alert whose tier has no more steps than an environment tolerates can never fire there."""
    for _, env in _items(doc.data, "environments"):
        policy = env.get("policy") if isinstance(env.get("policy"), dict) else {}
        tolerance = (policy.get("tolerance") or {}).get(alert["tier"], 0) if isinstance(policy.get("tolerance"),
                                                                                       dict) else 0
        if isinstance(tolerance, int) and tolerance >= steps and _enabled_in(alert, env.get("name")):
            yield doc.problem(("alerts", i, "tier"), f"in {env.get('name')}, tier {alert['tier']!r} has {steps} "
                                                     f"step(s) and tolerates {tolerance} failure(s), so this alert "
                                                     f"can never fire there (lower the tolerance or disable the "
                                                     f"alert for {env.get('name')} with overrides: enabled: false)")


def dashboards(doc: Located) -> Iterator[Problem]:
    yield from _folder_named_dashboards(doc)
    if _items(doc.data, "slos"):
        return
    for i, dash in _items(doc.data, "dashboards"):
        panels = dash.get("panels") if isinstance(dash.get("panels"), list) else []
        for j, panel in enumerate(panels):
            if panel in _PANELS_NEEDING_SLOS:
                yield doc.problem(("dashboards", i, "panels", j), f"panel {panel!r} needs at least one SLO")


def _folder_named_dashboards(doc: Located) -> Iterator[Problem]:
    """Grafana (up to 11.2) refuses a dashboard whose title has the slug of a folder: its own folder's here
    (both titles as obsgen deploys them, from obsgen.model.names)."""
    service = doc.data.get("service") if isinstance(doc.data, dict) else None
    name = service.get("name") if isinstance(service, dict) else None
    for _, env in _items(doc.data, "environments"):
        backends = env.get("backends") if isinstance(env.get("backends"), dict) else {}
        grafana, env_name = backends.get("grafana"), env.get("name")
        if not isinstance(grafana, dict) or not isinstance(env_name, str):
            continue
        folder = grafana_folder_title(str(name), env_name, grafana.get("folder") if isinstance(grafana.get("folder"), str) else "")
        for i, dash in _items(doc.data, "dashboards"):
            title = dash.get("title")
            deployed = grafana_dashboard_title(title, env_name) if isinstance(title, str) else ""
            if deployed and slug(deployed) == slug(folder):
                yield doc.problem(("dashboards", i, "title"),
                                  f"in {env_name} this dashboard is titled {deployed!r}, which Grafana refuses "
                                  f"beside its folder {folder!r}: both slugs are {slug(folder)!r}; choose another "
                                  f"title or folder")


def promql(doc: Located) -> Iterator[Problem]:
    import promql_parser

    from obsgen.model.placeholders import fill

    exprs = [(("alerts", i, "expr"), a["expr"]) for i, a in _items(doc.data, "alerts") if isinstance(a.get("expr"), str)]
    for i, slo in _items(doc.data, "slos"):
        sli = slo.get("sli") if isinstance(slo.get("sli"), dict) else {}
        exprs += [(("slos", i, "sli", k), sli[k]) for k in ("error_query", "total_query") if isinstance(sli.get(k), str)]
    for path, expr in exprs:
        try:
            promql_parser.parse(fill(expr, env="env", window="5m"))
        except (ValueError, TypeError) as exc:
            yield doc.problem(path, f"invalid PromQL: {exc}: {shown(expr.strip())}")


def summaries(doc: Located) -> Iterator[Problem]:
    """An alert's summary is a Prometheus template: only label, value and humanize actions (and {{env}}), never
    one that queries, loops or defines (obsgen.spec.templates). Other free text is made literal at compile."""
    from obsgen.spec.templates import summary_problem

    for i, alert in _items(doc.data, "alerts"):
        if isinstance(alert.get("summary"), str) and (why := summary_problem(alert["summary"])):
            yield doc.problem(("alerts", i, "summary"), why)


# Kubernetes' rules for what obsgen writes into a resource's metadata (apimachinery's validation).
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # a namespace: at most 63
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")  # a name: at most 253
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")  # a label value or key's name: at most 63
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")  # a key of a Secret's data: at most 253


def _label_key_problem(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix or (prefix == "" and key.startswith("/")):
        return "has more than one '/'" if "/" in prefix else "has an empty prefix before '/'"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return "has a prefix that is no DNS subdomain (lower case alphanumerics, '-' and '.', at most 253)"
    if len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return "is no label name (alphanumerics, '-', '_' and '.', starting and ending alphanumeric, at most 63)"
    return ""


def _label_value_ok(value: str) -> bool:
    return len(value) <= 63 and (value == "" or bool(_LABEL_NAME.fullmatch(value)))


def kubernetes(doc: Located) -> Iterator[Problem]:
    """What a cluster would refuse, found before anything is built: the namespace, labels and Secret. The
    resources' names (obsgen.model.k8s_name: the service and an SLO or dashboard id, each an id of at most 63
    characters) and the label values obsgen adds (service, environment) always meet Kubernetes' rules, as the
    schema's id pattern holds them to. Each environment needs its own namespace, as the resources' names do
    not name the environment."""
    from obsgen.model import K8S_ENVIRONMENT, K8S_MANAGED_BY, K8S_PART_OF

    data = doc.data
    service = data.get("service", {}).get("name") if isinstance(data.get("service"), dict) else None
    if not isinstance(service, str):
        return
    channels = _ids(data, "channels")
    namespaces: dict[str, str] = {}
    for i, env in _items(data, "environments"):
        block = env.get("kubernetes")
        if not isinstance(block, dict) or not isinstance(env.get("name"), str):
            continue
        at = ("environments", i, "kubernetes")
        namespace = block.get("namespace", f"{service}-{env['name']}")
        where = at + ("namespace",) if "namespace" in block else at
        if isinstance(namespace, str) and (len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace)):
            yield doc.problem(where, f"namespace {shown(namespace)} is no DNS-1123 label (lower case alphanumerics "
                                     f"and '-', starting and ending alphanumeric, at most 63 characters)")
        elif isinstance(namespace, str) and namespace in namespaces:
            yield doc.problem(where, f"environment {namespaces[namespace]!r} already uses namespace "
                                     f"{shown(namespace)}: give each environment its own namespace")
        elif isinstance(namespace, str):
            namespaces[namespace] = env["name"]
        labels = block.get("labels") if isinstance(block.get("labels"), dict) else {}
        for key, value in labels.items():
            if key in (K8S_MANAGED_BY, K8S_PART_OF, K8S_ENVIRONMENT):
                yield doc.problem(at + ("labels", key), f"label {shown(key)} is set by obsgen (it marks what "
                                                        f"obsgen owns): leave it out", at_key=True)
            elif why := _label_key_problem(str(key)):
                yield doc.problem(at + ("labels", key), f"label key {shown(key)} {why}", at_key=True)
            if isinstance(value, str) and not _label_value_ok(value):
                yield doc.problem(at + ("labels", key), f"label value {shown(value)} is not valid (alphanumerics, "
                                                        f"'-', '_' and '.', starting and ending alphanumeric, at "
                                                        f"most 63 characters)")
        secret = block.get("secret", f"{service}-alerting")
        if isinstance(secret, str) and (len(secret) > 253 or not _DNS_SUBDOMAIN.fullmatch(secret)):
            yield doc.problem(at + ("secret",) if "secret" in block else at,
                              f"secret {shown(secret)} is no valid Secret name (lower case alphanumerics, '-' "
                              f"and '.', at most 253 characters)")
        keys = block.get("secret_keys") if isinstance(block.get("secret_keys"), dict) else {}
        for channel, key in keys.items():
            if channel not in channels:
                yield doc.problem(at + ("secret_keys", channel), _unknown("channel", str(channel), channels),
                                  at_key=True)
            if isinstance(key, str) and (len(key) > 253 or not _SECRET_KEY.fullmatch(key)):
                yield doc.problem(at + ("secret_keys", channel), f"secret key {shown(key)} is no valid key of a "
                                                                 f"Secret (alphanumerics, '-', '_' and '.')")


CHECKS: tuple[Check, ...] = (duplicate_ids, references, environments, cadences, metrics, slos, alerts, dashboards,
                             summaries, promql, kubernetes)


def run(doc: Located) -> list[Problem]:
    return [p for check in CHECKS for p in check(doc)]
