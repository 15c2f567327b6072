"""Kubernetes resources for the Prometheus Operator and Grafana's dashboard sidecar, per environment.

An environment with a `kubernetes` block gets `<env>/kubernetes/`, a directory `kubectl apply -k`, kustomize,
Argo CD or Flux take as it is:

- `prometheusrule-<rule file stem>.yaml`: one PrometheusRule (monitoring.coreos.com/v1) per `prometheus/` rule
  file, whose `spec.groups` are that file's groups (the same documents, obsgen.compile.prometheus.rule_documents);
- `alertmanagerconfig.yaml`: one AlertmanagerConfig (monitoring.coreos.com/v1alpha1) named after the service,
  holding the routing subtree of obsgen.compile.alertmanager (route, receivers, inhibit rules) in the CRD's
  shape, credentials as references to keys of the spec's Secret (obsgen never writes a secret value). No
  `namespace` matcher is written: the Operator adds it to the top route and to both sides of every inhibit
  rule, prefixes receiver names `<namespace>/<name>/` and forces `continue: true` on the top route;
- `dashboard-<dashboard id>.yaml`: one ConfigMap per dashboard for Grafana's sidecar (label
  `grafana_dashboard: "1"`, folder by the `grafana_folder` annotation), its data the dashboard JSON exactly as
  `grafana/<id>.json`. ConfigMaps rather than the Grafana Operator's GrafanaDashboard: the sidecar ships with
  kube-prometheus-stack's Grafana and needs no other operator. Kubernetes stores at most 1 MiB in a
  ConfigMap: a larger dashboard is a build error naming it. Apply with `kubectl apply --server-side` (or a
  GitOps tool's server-side apply): client-side apply copies the object into its last-applied annotation,
  which is limited to 256 KiB;
- `kustomization.yaml`: the files above, sorted.

Every resource carries the spec's labels (what the Operator's `ruleSelector` / `alertmanagerConfigSelector`
match on) and obsgen's ownership labels: app.kubernetes.io/managed-by, app.kubernetes.io/part-of (the
service) and obsgen.io/environment. The names are checked against Kubernetes' rules by `obsgen validate`
(obsgen.spec.checks.kubernetes).
"""
from __future__ import annotations

import posixpath
from typing import Any

from obsgen.compile import conventions as c
from obsgen.compile import render
from obsgen.compile.alertmanager import compile_subtree
from obsgen.compile.grafana import compile_grafana
from obsgen.compile.prometheus import rule_documents
from obsgen.compile.routing import parse_matcher
from obsgen.errors import ObsgenError
from obsgen.model import K8S_ENVIRONMENT, K8S_MANAGED_BY, K8S_PART_OF, Environment, Kubernetes, Model, k8s_name
from obsgen.model.artifact import Artifact
from obsgen.model.names import grafana_folder_title

DIR = "kubernetes"
CONFIGMAP_MAX = 1024 * 1024  # bytes of data a ConfigMap may hold
RULES_SUFFIX = ".rules.yaml"
# The keys of obsgen's Alertmanager subtree and what the AlertmanagerConfig CRD calls them.
_ROUTE_KEYS = {"receiver": "receiver", "group_by": "groupBy", "group_wait": "groupWait",
               "group_interval": "groupInterval", "repeat_interval": "repeatInterval", "continue": "continue"}
_PLAIN_KEYS = {"send_resolved": "sendResolved", "severity": "severity", "description": "description",
               "client": "client", "url": "url", "title": "title", "text": "text", "channel": "channel"}


def compile_kubernetes(model: Model, env: Environment) -> list[Artifact]:
    if env.kubernetes is None:
        return []
    k8s = env.kubernetes
    resources: dict[str, dict[str, Any]] = {}
    for path, document in rule_documents(model, env).items():
        stem = posixpath.basename(path).removesuffix(RULES_SUFFIX)
        resources[f"prometheusrule-{stem}.yaml"] = _resource(
            model, env, k8s, "monitoring.coreos.com/v1", "PrometheusRule", k8s_name(model.service.name, stem),
            {"groups": document["groups"]})
    resources["alertmanagerconfig.yaml"] = _resource(
        model, env, k8s, "monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", model.service.name,
        alertmanager_config_spec(model, env))
    for dashboard_id, configmap in _dashboards(model, env, k8s).items():
        resources[f"dashboard-{dashboard_id}.yaml"] = configmap
    artifacts = [Artifact(f"{env.name}/{DIR}/{name}", render.to_yaml(resource, model.source))
                 for name, resource in sorted(resources.items())]
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": sorted(resources)}
    return artifacts + [Artifact(f"{env.name}/{DIR}/kustomization.yaml", render.to_yaml(kustomization, model.source))]


def labels(model: Model, env: Environment, k8s: Kubernetes) -> dict[str, str]:
    """The spec's labels and obsgen's ownership labels (which the spec may not set: validate refuses them)."""
    return {**dict(k8s.labels), K8S_MANAGED_BY: "obsgen", K8S_PART_OF: model.service.name,
            K8S_ENVIRONMENT: env.name}


def _resource(model: Model, env: Environment, k8s: Kubernetes, api_version: str, kind: str, name: str,
              spec: dict[str, Any], key: str = "spec") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": k8s.namespace, "labels": labels(model, env, k8s)}, key: spec}


def _dashboards(model: Model, env: Environment, k8s: Kubernetes) -> dict[str, dict[str, Any]]:
    """One ConfigMap per dashboard, keyed by the dashboard id; refused when Kubernetes could not store it."""
    backend = env.backend("grafana")
    folder = grafana_folder_title(model.service.name, env.name, backend.folder if backend else "")
    json_files = {a.path: a.content for a in compile_grafana(model, env)}
    out = {}
    for dashboard in model.dashboards:
        text = json_files[f"{env.name}/grafana/{dashboard.id}.json"].decode()
        data = {f"{c.dashboard_uid(model, env, dashboard.id)}.json": text}
        size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
        if size > CONFIGMAP_MAX:
            raise ObsgenError(f"dashboard {dashboard.id!r} of environment {env.name!r} is {size} bytes, over the "
                              f"{CONFIGMAP_MAX} bytes (1 MiB) a Kubernetes ConfigMap may hold: split it into "
                              f"dashboards with fewer panels")
        configmap = _resource(model, env, k8s, "v1", "ConfigMap", k8s_name(model.service.name,
                                                                             f"dashboard-{dashboard.id}"), data, "data")
        configmap["metadata"]["labels"]["grafana_dashboard"] = "1"
        configmap["metadata"]["annotations"] = {"grafana_folder": folder}
        out[dashboard.id] = configmap
    return out


def alertmanager_config_spec(model: Model, env: Environment) -> dict[str, Any]:
    """The AlertmanagerConfig's spec: obsgen's subtree (compile_subtree, what the alertmanager target writes)
    in the CRD's shape. Receivers are named by channel id (the Operator prefixes them); the top route keeps
    the service and environment matchers, and the Operator adds the namespace matcher and `continue`."""
    assert env.kubernetes is not None
    subtree = compile_subtree(model, env)
    prefix = c.am_owner(model, env).prefix
    route = _route(subtree["route"], prefix)
    route.pop("continue", None)  # the Operator forces continue: true on the top route
    return {"route": route,
            "receivers": [_receiver(r, prefix, env.kubernetes) for r in subtree["receivers"]],
            "inhibitRules": [{"sourceMatch": _matchers(r["source_matchers"]),
                              "targetMatch": _matchers(r["target_matchers"]), "equal": list(r["equal"])}
                             for r in subtree["inhibit_rules"]]}


def _matchers(texts: list[str]) -> list[dict[str, str]]:
    out = []
    for text in texts:
        m = parse_matcher(text)
        out.append({"name": m.name, "value": m.value, "matchType": m.op})
    return out


def _route(route: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in route.items():
        if key == "matchers":
            out["matchers"] = _matchers(value)
        elif key == "routes":
            out["routes"] = [_route(r, prefix) for r in value]
        elif key == "receiver":
            out["receiver"] = value.removeprefix(prefix)
        else:
            out[_ROUTE_KEYS[key]] = value  # KeyError: a route key this conversion does not know yet
    return out


def _receiver(receiver: dict[str, Any], prefix: str, k8s: Kubernetes) -> dict[str, Any]:
    channel = receiver["name"].removeprefix(prefix)
    out: dict[str, Any] = {"name": channel}
    secret = {"name": k8s.secret, "key": k8s.secret_key(channel)}
    for config in receiver.get("pagerduty_configs", ()):
        out.setdefault("pagerdutyConfigs", []).append(_config(config, {"routing_key_file": ("routingKey", secret)}))
    for config in receiver.get("slack_configs", ()):
        out.setdefault("slackConfigs", []).append(_config(config, {"api_url_file": ("apiURL", secret)}))
    return out


def _config(config: dict[str, Any], secrets: dict[str, tuple[str, dict[str, str]]]) -> dict[str, Any]:
    """One notifier's config: secret files become Secret key references, details a key/value list, links
    PagerDuty link configs; any other key must be one the CRD names (a KeyError otherwise)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in secrets:
            name, ref = secrets[key]
            out[name] = dict(ref)
        elif key == "details":
            out["details"] = [{"key": k, "value": v} for k, v in value.items()]
        elif key == "links":
            out["pagerDutyLinkConfigs"] = [{"href": link["href"], "alt": link["text"]} for link in value]
        else:
            out[_PLAIN_KEYS[key]] = value
    return out
