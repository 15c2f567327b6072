"""obsgen.compile.k8s_operator: an AlertmanagerConfig converted as the Prometheus Operator does, inside a
root config with another team's route, then routed and checked by the real amtool (Alertmanager 0.25).

The resource is written by hand here (kernel -> PagerDuty, governance -> Slack, one inhibit rule), so what
is tested is the conversion the Operator documents, not obsgen's own resource builder. Secret values are
placeholders: nothing reads a real Secret.
"""
from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REFERENCE_SPEC, require_tool, run_tool

from obsgen.compile import k8s_operator
from obsgen.compile.routing import inhibited
from obsgen.errors import ObsgenError

NS = "selftest-dev"
SECRET = "selftest-alerting"
PAGER = f"{NS}/selftest/pagerduty-oncall"
TICKETS = f"{NS}/selftest/slack-tickets"
INFO = f"{NS}/selftest/slack-info"


def _m(name: str, value: str, op: str | None = "=") -> dict[str, str]:
    return {"name": name, "value": value, **({"matchType": op} if op else {})}


AMC: dict[str, Any] = {
    "apiVersion": "monitoring.coreos.com/v1alpha1",
    "kind": "AlertmanagerConfig",
    "metadata": {"name": "selftest", "namespace": NS, "labels": {"release": "kube-prometheus-stack"}},
    "spec": {
        "route": {
            "receiver": "slack-info", "groupBy": ["alertname", "env"], "groupWait": "30s",
            "groupInterval": "5m", "repeatInterval": "4h",
            "matchers": [_m("service", "selftest"), _m("env", "dev")],
            "routes": [
                {"receiver": "pagerduty-oncall", "matchers": [_m("tier", "kernel")],
                 "groupBy": ["alertname", "env", "step_id"]},
                {"receiver": "slack-tickets", "matchers": [_m("tier", "governance", None)]},  # no matchType: "="
            ],
        },
        "receivers": [
            {"name": "pagerduty-oncall", "pagerdutyConfigs": [{
                "routingKey": {"name": SECRET, "key": "pagerduty-routing-key"}, "sendResolved": True,
                "client": "obsgen selftest", "details": [{"key": "tier", "value": "{{ .CommonLabels.tier }}"}],
                "pagerDutyLinkConfigs": [{"href": "{{ .CommonAnnotations.runbook_url }}", "alt": "Runbook"}]}]},
            {"name": "slack-tickets", "slackConfigs": [{
                "apiURL": {"name": SECRET, "key": "slack-webhook-url"}, "channel": "#selftest-dev",
                "sendResolved": True, "title": "{{ .CommonLabels.alertname }}"}]},
            {"name": "slack-info", "slackConfigs": [{
                "apiURL": {"name": SECRET, "key": "slack-webhook-url"}, "channel": "#selftest-dev-info"}]},
        ],
        "inhibitRules": [{
            "sourceMatch": [_m("service", "selftest"), _m("tier", "kernel"), _m("severity", "critical")],
            "targetMatch": [_m("service", "selftest"), _m("tier", "governance|optional", "=~")],
            "equal": ["env"],
        }],
    },
}

# other teams' Alertmanager: a team's route and inhibit rule, a cluster-wide audit route, a default receiver
ROOT_CONFIG: dict[str, Any] = {
    "route": {"receiver": "platform-default", "group_by": ["alertname"],
              "routes": [{"receiver": "billing-oncall", "matchers": ['service="billing"']},
                         {"receiver": "cluster-audit", "matchers": ['audit="true"']}]},
    "receivers": [{"name": "platform-default"}, {"name": "billing-oncall"}, {"name": "cluster-audit"}],
    "inhibit_rules": [{"source_matchers": ['service="billing"', 'severity="critical"'],
                       "target_matchers": ['service="billing"', 'severity="warning"'], "equal": ["env"]}],
}

SECRETS = {(SECRET, "pagerduty-routing-key"): "placeholder-routing-key",
           (SECRET, "slack-webhook-url"): "https://hooks.slack.invalid/placeholder"}

SELFTEST = {"service": "selftest", "env": "dev", "alertname": "SelftestKernelStepFailed", "severity": "critical"}


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    return k8s_operator.merge(ROOT_CONFIG, AMC, SECRETS)


@pytest.fixture(scope="module")
def config_file(merged: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("operator") / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path


def _routes_to(config_file: Path, labels: dict[str, str], receivers: list[str]) -> None:
    """amtool routes `labels` to exactly `receivers` (in order), or the test fails with what it said."""
    result = run_tool(require_tool("amtool"), "config", "routes", "test", f"--config.file={config_file}",
                      f"--verify.receivers={','.join(receivers)}", *(f"{k}={v}" for k, v in sorted(labels.items())))
    assert result.returncode == 0, f"{labels}: expected {receivers}, amtool says {result.stdout}{result.stderr}"


def test_amtool_check_config_accepts_the_merged_config(config_file: Path) -> None:
    result = run_tool(require_tool("amtool"), "check-config", str(config_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_kernel_of_the_namespace_routes_to_the_prefixed_pagerduty_receiver(config_file: Path) -> None:
    _routes_to(config_file, {**SELFTEST, "namespace": NS, "tier": "kernel"}, [PAGER])


def test_governance_of_the_namespace_routes_to_the_prefixed_slack_receiver(config_file: Path) -> None:
    _routes_to(config_file, {**SELFTEST, "namespace": NS, "tier": "governance", "severity": "warning"}, [TICKETS])
    _routes_to(config_file, {**SELFTEST, "namespace": NS, "tier": "optional", "severity": "info"}, [INFO])


@pytest.mark.parametrize("namespace", [None, "billing", "selftest-prod"])
def test_an_alert_without_the_namespace_label_or_of_another_namespace_reaches_no_receiver_of_obsgens(
        config_file: Path, namespace: str | None) -> None:
    labels = {**SELFTEST, "tier": "kernel", **({"namespace": namespace} if namespace else {})}
    _routes_to(config_file, labels, ["platform-default"])


def test_the_other_teams_alerts_still_reach_their_receivers(config_file: Path) -> None:
    _routes_to(config_file, {"service": "billing", "namespace": "billing", "severity": "critical"}, ["billing-oncall"])
    _routes_to(config_file, {"service": "billing", "namespace": NS, "severity": "critical"}, ["billing-oncall"])
    _routes_to(config_file, {"service": "search"}, ["platform-default"])


def test_obsgens_alerts_still_reach_the_routes_after_it(config_file: Path) -> None:
    """The Operator forces `continue: true` on the resource's top route, placed first: the routes the
    root had still see every alert."""
    _routes_to(config_file, {**SELFTEST, "namespace": NS, "tier": "kernel", "audit": "true"}, [PAGER, "cluster-audit"])


def test_the_top_route_goes_first_under_the_root_with_the_namespace_matcher_and_continue(
        merged: dict[str, Any]) -> None:
    assert merged["route"]["receiver"] == "platform-default"
    assert merged["route"]["routes"] == [
        {"receiver": INFO, "group_by": ["alertname", "env"], "group_wait": "30s", "group_interval": "5m",
         "repeat_interval": "4h", "matchers": ['service="selftest"', 'env="dev"', f'namespace="{NS}"'],
         "routes": [
             {"receiver": PAGER, "matchers": ['tier="kernel"'], "group_by": ["alertname", "env", "step_id"]},
             {"receiver": TICKETS, "matchers": ['tier="governance"']},
         ],
         "continue": True},
        *ROOT_CONFIG["route"]["routes"],
    ]


def test_receivers_are_renamed_and_their_secret_references_replaced(merged: dict[str, Any]) -> None:
    assert merged["receivers"] == [
        *ROOT_CONFIG["receivers"],
        {"name": PAGER, "pagerduty_configs": [{
            "routing_key": "placeholder-routing-key", "send_resolved": True, "client": "obsgen selftest",
            "details": {"tier": "{{ .CommonLabels.tier }}"},
            "links": [{"href": "{{ .CommonAnnotations.runbook_url }}", "text": "Runbook"}]}]},
        {"name": TICKETS, "slack_configs": [{
            "api_url": "https://hooks.slack.invalid/placeholder", "channel": "#selftest-dev",
            "send_resolved": True, "title": "{{ .CommonLabels.alertname }}"}]},
        {"name": INFO, "slack_configs": [{
            "api_url": "https://hooks.slack.invalid/placeholder", "channel": "#selftest-dev-info"}]},
    ]


def test_inhibit_rules_get_the_namespace_matcher_on_both_sides(merged: dict[str, Any]) -> None:
    assert merged["inhibit_rules"] == [
        ROOT_CONFIG["inhibit_rules"][0],
        {"source_matchers": ['service="selftest"', 'tier="kernel"', 'severity="critical"', f'namespace="{NS}"'],
         "target_matchers": ['service="selftest"', 'tier=~"governance|optional"', f'namespace="{NS}"'],
         "equal": ["env"]},
    ]


def test_the_inhibit_rule_mutes_only_the_namespaces_alerts(merged: dict[str, Any]) -> None:
    kernel = {**SELFTEST, "tier": "kernel", "namespace": NS}
    governance = {**SELFTEST, "tier": "governance", "severity": "warning"}
    assert inhibited(merged, {**governance, "namespace": NS}, [kernel])
    prod = "selftest-prod"
    assert not inhibited(merged, {**governance, "namespace": prod}, [{**kernel, "namespace": prod}])
    assert not inhibited(merged, governance, [{k: v for k, v in kernel.items() if k != "namespace"}])


def test_a_namespace_matcher_the_rule_already_has_is_not_added_twice() -> None:
    amc = copy.deepcopy(AMC)
    amc["spec"]["inhibitRules"][0]["sourceMatch"].append(_m("namespace", NS))
    rule = k8s_operator.merge(ROOT_CONFIG, amc, SECRETS)["inhibit_rules"][-1]
    assert rule["source_matchers"].count(f'namespace="{NS}"') == 1
    assert rule["target_matchers"].count(f'namespace="{NS}"') == 1


def test_the_root_config_and_the_resource_are_left_unchanged() -> None:
    root, amc = copy.deepcopy(ROOT_CONFIG), copy.deepcopy(AMC)
    k8s_operator.merge(root, amc, SECRETS)
    assert (root, amc) == (ROOT_CONFIG, AMC)


@pytest.mark.parametrize("matcher, text", [
    ({"name": "tier", "value": "kernel"}, 'tier="kernel"'),
    ({"name": "tier", "value": "kernel|governance", "regex": True}, 'tier=~"kernel|governance"'),
    ({"name": "tier", "value": "kernel", "regex": True, "matchType": "!="}, 'tier!="kernel"'),  # matchType first
    ({"name": "step_id", "value": "all", "matchType": "!~"}, 'step_id!~"all"'),
    ({"name": "summary", "value": 'say "hi"\\now\n', "matchType": "="}, 'summary="say \\"hi\\"\\\\now\\n"'),
    ({"name": "drill", "matchType": "!="}, 'drill!=""'),
])
def test_matchers_are_written_as_the_operator_writes_them(matcher: dict[str, Any], text: str) -> None:
    assert k8s_operator.matcher(matcher) == text


def test_a_missing_secret_key_is_a_clear_error_without_any_value() -> None:
    with pytest.raises(ObsgenError) as caught:
        k8s_operator.merge(ROOT_CONFIG, AMC, {(SECRET, "slack-webhook-url"): "https://hooks.slack.invalid/x"})
    assert str(caught.value) == (f"AlertmanagerConfig {NS}/selftest: spec.receivers[0].pagerdutyConfigs[0]"
                                 f".routingKey: Secret '{SECRET}' has no key 'pagerduty-routing-key'")
    with pytest.raises(ObsgenError, match="has no key 'pagerduty-routing-key'"):
        k8s_operator.merge(ROOT_CONFIG, AMC, {**SECRETS, (SECRET, "pagerduty-routing-key"): None})


def test_placeholders_cover_every_secret_reference_and_the_result_is_a_valid_config(tmp_path: Path) -> None:
    assert k8s_operator.secret_refs(AMC) == [(SECRET, "pagerduty-routing-key"), (SECRET, "slack-webhook-url")]
    merged = k8s_operator.merge(ROOT_CONFIG, AMC, k8s_operator.placeholders(AMC))
    assert merged["receivers"][4]["slack_configs"][0]["api_url"] == f"https://secret.invalid/{SECRET}/slack-webhook-url"
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(merged))
    result = run_tool(require_tool("amtool"), "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_other_receiver_types_convert_to_fields_alertmanager_accepts(tmp_path: Path) -> None:
    amc = copy.deepcopy(AMC)
    amc["spec"]["receivers"][2] = {"name": "slack-info", "webhookConfigs": [
        {"urlSecret": {"name": SECRET, "key": "hook"}, "maxAlerts": 5, "sendResolved": False}],
        "discordConfigs": [{"apiURL": {"name": SECRET, "key": "discord"}, "title": "{{ .Status }}"}]}
    merged = k8s_operator.merge(ROOT_CONFIG, amc, {**SECRETS, **k8s_operator.placeholders(amc)})
    assert merged["receivers"][-1] == {
        "name": INFO,
        "webhook_configs": [{"url": f"https://secret.invalid/{SECRET}/hook", "max_alerts": 5, "send_resolved": False}],
        "discord_configs": [{"webhook_url": f"https://secret.invalid/{SECRET}/discord", "title": "{{ .Status }}"}]}
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(merged))
    result = run_tool(require_tool("amtool"), "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_receiver_name_is_namespace_name_receiver() -> None:
    assert k8s_operator.receiver_name(AMC, "slack-info") == INFO


@pytest.mark.parametrize("edit, message", [
    (lambda a: a["spec"].update(muteTimeIntervals=[{"name": "nights"}]), "spec.muteTimeIntervals is not supported"),
    (lambda a: a["spec"]["route"]["routes"][0].update(muteTimeIntervals=["nights"]),
     "spec.route.routes[0]: muteTimeIntervals is not supported"),
    (lambda a: a["spec"]["receivers"][1]["slackConfigs"][0].update(httpConfig={"proxyURL": "http://p"}),
     "spec.receivers[1].slackConfigs[0]: httpConfig is not supported"),
    (lambda a: a.update(kind="ConfigMap"), "not an AlertmanagerConfig"),
])
def test_what_the_conversion_does_not_cover_is_refused(edit, message: str) -> None:
    amc = copy.deepcopy(AMC)
    edit(amc)
    with pytest.raises(ObsgenError, match=message.replace("[", r"\[").replace("]", r"\]")):
        k8s_operator.merge(ROOT_CONFIG, amc, SECRETS)


# --- `obsgen verify`: the generated routing cases also run on the config the Operator builds ---------------

@pytest.fixture
def built(run_cli, tmp_path: Path) -> Path:
    """The reference spec's dev environment (it has a Kubernetes output), without its rule tests (fast)."""
    require_tool("amtool")
    require_tool("promtool")
    out = tmp_path / "generated"
    assert run_cli("build", "--spec", str(REFERENCE_SPEC), "--out", str(out), "--env", "dev").code == 0
    assert (out / "dev/kubernetes/alertmanagerconfig.yaml").is_file()
    shutil.rmtree(out / "dev/tests/rules")
    return out


def test_verify_runs_the_cases_on_the_operators_config_with_the_namespace_and_its_receiver_names(
        run_cli, built: Path) -> None:
    result = run_cli("verify", "--out", str(built), "--env", "dev", "--verbose")
    assert result.code == 0, result.out
    lines = result.out.splitlines()
    cases = yaml.safe_load((built / "dev/tests/routing.yaml").read_text())["tests"]
    common = [c for c in cases if "config" not in c]
    assert common
    for case in common:
        suite = "routing" if "receivers" in case else "inhibition"
        name = case["name"].replace("selftest/dev/", f"{NS}/selftest/")  # the Operator's receiver names
        assert f"ok    dev {suite}: [operator] {name}" in lines, name
    assert len([line for line in lines if "[operator]" in line]) == len(common) + 2
    assert ("ok    dev routing: [operator] SelftestKernelStepFailed of another namespace (namespace=other-team) "
            "reaches that team's receiver other-team") in lines
    assert ("ok    dev routing: [operator] SelftestKernelStepFailed without the namespace label reaches none of "
            "obsgen's receivers but the root's") in lines


def _governance_route(spec: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in spec["route"]["routes"]
                if {"name": "tier", "value": "governance", "matchType": "="} in r["matchers"])


def test_an_alertmanagerconfig_edited_by_hand_fails_verify_on_the_operators_config_only(
        run_cli, built: Path) -> None:
    path = built / "dev/kubernetes/alertmanagerconfig.yaml"
    amc = yaml.safe_load(path.read_text())
    assert _governance_route(amc["spec"])["receiver"] == "slack-tickets"
    _governance_route(amc["spec"])["receiver"] = "slack-info"
    path.write_text(yaml.safe_dump(amc, sort_keys=False))
    result = run_cli("verify", "--out", str(built), "--env", "dev")
    assert result.code == 1
    assert (f"FAIL  dev routing: [operator] governance SelftestGovernanceFailuresAboveTolerance routes to "
            f"{TICKETS}\n"
            f"      expected {TICKETS}, amtool routes it to {INFO}\n") in result.out
    failed = [line for line in result.out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 3 and all("[operator] governance " in line for line in failed), failed  # 3 governance


def test_an_inhibit_rule_of_the_alertmanagerconfig_weakened_by_hand_fails_verify(run_cli, built: Path) -> None:
    path = built / "dev/kubernetes/alertmanagerconfig.yaml"
    amc = yaml.safe_load(path.read_text())
    [rule] = amc["spec"]["inhibitRules"]
    [tier] = [m for m in rule["targetMatch"] if m["name"] == "tier"]
    tier["value"] = "optional"
    path.write_text(yaml.safe_dump(amc, sort_keys=False))
    result = run_cli("verify", "--out", str(built), "--env", "dev")
    assert result.code == 1
    assert ("FAIL  dev inhibition: [operator] governance SelftestGovernanceFailuresAboveTolerance is silenced "
            "while SelftestKernelStepFailed fires in dev\n"
            "      expected inhibited, the inhibit rules say not inhibited\n") in result.out


def test_an_alertmanagerconfig_the_conversion_cannot_take_is_a_clear_error(run_cli, built: Path) -> None:
    path = built / "dev/kubernetes/alertmanagerconfig.yaml"
    amc = yaml.safe_load(path.read_text())
    amc["spec"]["receivers"][1]["slackConfigs"][0]["httpConfig"] = {"followRedirects": True}
    path.write_text(yaml.safe_dump(amc, sort_keys=False))
    result = run_cli("verify", "--out", str(built), "--env", "dev")
    assert (result.code, result.err) == (2, f"obsgen: error: {path}: AlertmanagerConfig {NS}/selftest: "
                                            f"spec.receivers[1].slackConfigs[0]: httpConfig is not supported by "
                                            f"obsgen's conversion\n")
