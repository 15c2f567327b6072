"""Kubernetes resources validated offline as an API server would: the CRDs' structural schemas, the
built-in kinds' fields, and Kubernetes' rules for names, namespaces, labels and annotations.

Every resource here is written by hand; whether it is valid follows from the packaged CRD (read in the
assertions where a message quotes it) and Kubernetes' documented rules, not from the validator's output.
"""
from __future__ import annotations

import copy
import hashlib
from importlib import resources
from typing import Any

import pytest
import yaml

from obsgen.compile.kubernetes_schema import go_regex, structural, validate

CRD_DIR = resources.files("obsgen").joinpath("schemas", "kubernetes")
DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
MATCH_TYPES = ["!=", "=", "=~", "!~"]
LABELS = {"release": "kube-prometheus-stack", "app.kubernetes.io/managed-by": "obsgen",
          "app.kubernetes.io/part-of": "selftest", "obsgen.io/environment": "dev"}


def meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": "selftest-dev", "labels": dict(LABELS)}


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": meta("selftest-dev-selftest"),
        "spec": {"groups": [
            {"name": "selftest-kernel", "interval": "1m", "rules": [
                {"record": "selftest:kernel_runs:rate5m", "expr": "sum(rate(selftest_runs_total[5m]))",
                 "labels": {"tier": "kernel"}},
                {"alert": "SelftestKernelFailing", "expr": "selftest_last_run_success == 0", "for": "10m",
                 "labels": {"severity": "page", "team": "kernel"},
                 "annotations": {"summary": "kernel selftests fail", "runbook_url": "https://example.org/rb"}},
            ]},
            {"name": "selftest-governance", "rules": [
                {"alert": "SelftestGovernanceStale", "expr": "time() - selftest_last_run_timestamp > 3600",
                 "for": "1h30m", "keep_firing_for": "5m", "labels": {"team": "governance"}},
            ]},
        ]},
    }


def matcher(name: str, value: str, match_type: str = "=") -> dict[str, str]:
    return {"name": name, "value": value, "matchType": match_type}


def alertmanager_config() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig", "metadata": meta("selftest"),
        "spec": {
            "route": {
                "receiver": "selftest-default", "groupBy": ["alertname", "team"], "groupWait": "30s",
                "groupInterval": "5m", "repeatInterval": "4h", "matchers": [matcher("service", "selftest")],
                "routes": [
                    {"receiver": "pagerduty-oncall", "matchers": [matcher("team", "kernel")], "continue": False},
                    {"receiver": "slack-governance", "matchers": [matcher("team", "governance|policy", "=~")]},
                ],
            },
            "receivers": [
                {"name": "pagerduty-oncall", "pagerdutyConfigs": [
                    {"routingKey": {"name": "selftest-alerting", "key": "pagerduty-routing-key"},
                     "sendResolved": True, "severity": "critical"}]},
                {"name": "slack-governance", "slackConfigs": [
                    {"apiURL": {"name": "selftest-alerting", "key": "slack-governance"},
                     "channel": "#governance", "sendResolved": True, "title": "{{ .CommonLabels.alertname }}"}]},
                {"name": "selftest-default"},
            ],
            "inhibitRules": [
                {"sourceMatch": [matcher("severity", "page")], "targetMatch": [matcher("severity", "ticket")],
                 "equal": ["team", "alertname"]},
            ],
        },
    }


def config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {**meta("selftest-dev-dashboard-overview"), "annotations": {"grafana_folder": "Selftest"},
                     "labels": {**LABELS, "grafana_dashboard": "1"}},
        "data": {"selftest-overview.json": '{"title": "Selftest overview", "panels": []}'},
    }


def kustomization() -> dict[str, Any]:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["alertmanagerconfig.yaml", "dashboard-overview.yaml", "prometheusrule-selftest.yaml"]}


def changed(resource: dict[str, Any], change) -> dict[str, Any]:
    resource = copy.deepcopy(resource)
    change(resource)
    return resource


# --- valid resources pass ----------------------------------------------------------------------------

@pytest.mark.parametrize("make", [prometheus_rule, alertmanager_config, config_map, kustomization],
                         ids=lambda f: f.__name__)
def test_a_valid_resource_has_no_problems(make) -> None:
    assert validate(make()) == []


def test_an_int_or_string_field_takes_both_forms_and_nothing_else() -> None:
    # PrometheusRule's `expr` is x-kubernetes-int-or-string: a server takes 1 and "1" alike
    for expr in (1, "up == 0"):
        assert validate(changed(prometheus_rule(), lambda r: r["spec"]["groups"][0]["rules"][0].update(expr=expr))) == []
    for expr, kind in ((True, "boolean"), (["up"], "array"), (1.5, "number")):
        rule = changed(prometheus_rule(), lambda r: r["spec"]["groups"][0]["rules"][0].update(expr=expr))
        assert validate(rule) == [f"PrometheusRule/selftest-dev-selftest: spec.groups[0].rules[0].expr: "
                                  f"is {kind}, must be integer or string"]


def test_a_child_route_keeps_unknown_fields_as_the_crd_preserves_them() -> None:
    config = changed(alertmanager_config(), lambda c: c["spec"]["route"]["routes"][0].update(anything="kept"))
    assert validate(config) == []


def test_a_nullable_field_takes_null_and_a_plain_one_does_not() -> None:
    from jsonschema import Draft7Validator

    schema = structural({"type": "object", "properties": {
        "a": {"type": "string", "nullable": True}, "b": {"type": "string", "enum": ["x"], "nullable": True},
        "c": {"type": "string"}}})
    assert Draft7Validator(schema).is_valid({"a": None, "b": None, "c": "y"})
    assert not Draft7Validator(schema).is_valid({"c": None})


# --- each broken resource names its problem ----------------------------------------------------------

def test_an_unknown_field_in_a_rule_is_an_error() -> None:
    rule = changed(prometheus_rule(), lambda r: r["spec"]["groups"][0]["rules"][1].update(severity="page"))
    assert validate(rule) == ["PrometheusRule/selftest-dev-selftest: spec.groups[0].rules[1].severity: unknown field"]


def test_an_unknown_top_level_field_is_an_error() -> None:
    rule = changed(prometheus_rule(), lambda r: r.update(data={}))
    assert validate(rule) == ["PrometheusRule/selftest-dev-selftest: data: unknown field"]


def test_for_must_match_the_crds_duration_pattern() -> None:
    crd = yaml.safe_load(CRD_DIR.joinpath("monitoring.coreos.com_prometheusrules.yaml").read_text(encoding="utf-8"))
    pattern = (crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["groups"]
               ["items"]["properties"]["rules"]["items"]["properties"]["for"]["pattern"])
    assert pattern == DURATION
    for bad in ("10 minutes", "1m30", "-5m", "1.5h"):
        rule = changed(prometheus_rule(), lambda r: r["spec"]["groups"][0]["rules"][1].update({"for": bad}))
        assert validate(rule) == [f"PrometheusRule/selftest-dev-selftest: spec.groups[0].rules[1].for: "
                                  f"{bad!r} does not match {DURATION!r}"]


def test_two_groups_with_one_name_are_refused_as_the_list_map_keys_require() -> None:
    rule = changed(prometheus_rule(), lambda r: r["spec"]["groups"][1].update(name="selftest-kernel"))
    assert validate(rule) == ["PrometheusRule/selftest-dev-selftest: spec.groups[1]: "
                              "item 1 duplicates an earlier item (name='selftest-kernel')"]


def test_a_case_insensitive_go_pattern_is_read_as_go_reads_it() -> None:
    # partial_response_strategy: ^(?i)(abort|warn)?$ -- Python refuses a global flag after '^'
    for value, problems in (("WARN", []), ("abort", []), ("panic", ["'panic' does not match '^(?i)(abort|warn)?$'"])):
        rule = changed(prometheus_rule(), lambda r: r["spec"]["groups"][0].update(partial_response_strategy=value))
        assert validate(rule) == [f"PrometheusRule/selftest-dev-selftest: spec.groups[0].partial_response_strategy: {p}"
                                  for p in problems]
    # RE2: a flag group holds to the end of its enclosing group, across its alternatives
    assert go_regex("^((?i)sun|mon)day$").match("MONday") and not go_regex("^((?i)sun|mon)day$").match("monDAY")


def test_a_routing_key_given_as_a_string_is_refused_without_echoing_it() -> None:
    config = changed(alertmanager_config(), lambda c: c["spec"]["receivers"][0]["pagerdutyConfigs"][0].update(
        routingKey="0123456789abcdef0123456789abcdef"))
    problems = validate(config)
    assert problems == ["AlertmanagerConfig/selftest: spec.receivers[0].pagerdutyConfigs[0].routingKey: "
                        "is string, must be object"]
    assert "0123456789abcdef" not in "".join(problems)


def test_a_secret_key_reference_needs_its_key() -> None:
    config = changed(alertmanager_config(),
                     lambda c: c["spec"]["receivers"][1]["slackConfigs"][0].update(apiURL={"name": "selftest-alerting"}))
    assert validate(config) == ["AlertmanagerConfig/selftest: spec.receivers[1].slackConfigs[0].apiURL: "
                                "'key' is a required property"]


@pytest.mark.parametrize("where", [
    ("route", "matchers", 0), ("inhibitRules", 0, "sourceMatch", 0), ("route", "routes", 1, "matchers", 0)],
    ids=["route", "inhibit-rule", "child-route"])
def test_a_matcher_with_an_unknown_match_type_is_refused(where) -> None:
    def change(config):
        node = config["spec"]
        for step in where:
            node = node[step]
        node["matchType"] = "=="
    path = "spec." + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in where).lstrip(".")
    assert validate(changed(alertmanager_config(), change)) == [
        f"AlertmanagerConfig/selftest: {path}.matchType: '==' is not one of {MATCH_TYPES!r}"]


def test_a_name_with_upper_case_is_refused() -> None:
    rule = changed(prometheus_rule(), lambda r: r["metadata"].update(name="selftest-dev-Selftest"))
    assert validate(rule) == ["PrometheusRule/selftest-dev-Selftest: metadata.name: 'selftest-dev-Selftest' is not "
                              "a DNS-1123 subdomain (lower case alphanumerics, '-' and '.', starting and ending "
                              "alphanumeric)"]


def test_a_name_over_253_characters_is_refused() -> None:
    name = ("a" * 60 + ".") * 4 + "b" * 10  # 254, every part a valid label
    assert len(name) == 254
    assert validate(changed(config_map(), lambda c: c["metadata"].update(name=name))) == [
        f"ConfigMap/{name}: metadata.name: {name!r} is 254 characters, more than 253"]


def test_a_label_value_of_64_characters_is_refused() -> None:
    assert validate(changed(config_map(), lambda c: c["metadata"]["labels"].update(tier="k" * 63))) == []
    assert validate(changed(config_map(), lambda c: c["metadata"]["labels"].update(tier="k" * 64))) == [
        "ConfigMap/selftest-dev-dashboard-overview: metadata.labels['tier']: value is 64 characters, more than 63"]


def test_label_and_annotation_keys_follow_the_qualified_name_rule() -> None:
    config = changed(config_map(), lambda c: (c["metadata"]["labels"].update({"Example.org/tier": "x"}),
                                               c["metadata"]["annotations"].update({"-folder": "x"})))
    assert validate(config) == [
        "ConfigMap/selftest-dev-dashboard-overview: metadata.annotations['-folder']: key name '-folder' must be "
        "alphanumerics, '-', '_' or '.', starting and ending alphanumeric",
        "ConfigMap/selftest-dev-dashboard-overview: metadata.labels['Example.org/tier']: key prefix 'Example.org' "
        "must be a DNS-1123 subdomain of at most 253 characters"]


def test_a_namespace_with_a_dot_is_refused() -> None:
    config = changed(alertmanager_config(), lambda c: c["metadata"].update(namespace="selftest.dev"))
    assert validate(config) == ["AlertmanagerConfig/selftest: metadata.namespace: 'selftest.dev' is not a DNS-1123 "
                                "label (lower case alphanumerics and '-', starting and ending alphanumeric)"]


def test_a_configmap_holds_strings_only() -> None:
    config = changed(config_map(), lambda c: c["data"].update({"count": 3, "bad key": "x"}))
    assert validate(config) == [
        "ConfigMap/selftest-dev-dashboard-overview: data['bad key']: key must be at most 253 of alphanumerics, "
        "'-', '_' or '.'",
        "ConfigMap/selftest-dev-dashboard-overview: data['count']: value must be a string, not int"]


def test_a_configmap_over_one_mebibyte_is_refused() -> None:
    key = "big.json"
    fits = changed(config_map(), lambda c: c.update(data={key: "x" * (1024 * 1024 - len(key))}))
    assert validate(fits) == []
    over = changed(config_map(), lambda c: c.update(data={key: "x" * (1024 * 1024 - len(key) + 1)}))
    assert validate(over) == ["ConfigMap/selftest-dev-dashboard-overview: data: total size 1048577 bytes is over "
                              "the 1048576-byte limit of an object"]


def test_a_kustomization_lists_paths_and_knows_its_fields() -> None:
    bad = changed(kustomization(), lambda k: k.update(resource=["x.yaml"], namespace="Selftest"))
    assert validate(bad) == [
        "Kustomization/?: namespace: 'Selftest' is not a DNS-1123 label (lower case alphanumerics and '-', "
        "starting and ending alphanumeric)",
        "Kustomization/?: resource: unknown field"]


def test_an_unknown_kind_is_reported() -> None:
    resource = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": meta("x")}
    assert validate(resource) == ["ServiceMonitor/x: apiVersion 'monitoring.coreos.com/v1' kind 'ServiceMonitor' "
                                  "is not a kind obsgen validates"]


# --- the packaged CRDs ---------------------------------------------------------------------------------

def test_the_crds_are_the_copies_their_provenance_names_under_the_apache_licence() -> None:
    provenance = CRD_DIR.joinpath("PROVENANCE.md").read_text(encoding="utf-8")
    notice = CRD_DIR.joinpath("NOTICE").read_text(encoding="utf-8")
    crds = sorted(e.name for e in CRD_DIR.iterdir() if e.name.endswith(".yaml"))
    assert len(crds) == 4
    for name in crds:
        digest = hashlib.sha256(CRD_DIR.joinpath(name).read_bytes()).hexdigest()
        assert f"| {name} |" in provenance and f"| {digest} |" in provenance, name
        assert name in notice
    assert "Apache License, Version 2.0" in notice
    assert "github.com/prometheus-operator/prometheus-operator" in notice
    assert "github.com/grafana/grafana-operator" in notice
