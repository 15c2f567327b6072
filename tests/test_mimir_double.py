"""Pins the Mimir test double (tests/doubles/mimir.py) to tests/doubles/contracts/prometheus-alertmanager-api.md
("Common (Mimir / Cortex)", "Ruler rule-config API", "Alertmanager config API"). Docstrings say which row or
rule they pin; "[mimir]" marks behaviour the contract leaves open and the double takes from Mimir's source."""
from __future__ import annotations

import shutil
import threading
from urllib.parse import quote

import pytest
import requests
import yaml

from doubles.mimir import MimirDouble

TOKEN = "mimir-token"
TENANT = "team-a"
BASE = "/prometheus/config/v1/rules"
YAML_CT = {"Content-Type": "application/yaml"}
HAS_AMTOOL = shutil.which("amtool") is not None

GROUP = {"name": "availability", "interval": "1m", "rules": [
    {"record": "job:up:sum", "expr": "sum by (job) (up)"},
    {"alert": "InstanceDown", "expr": "up == 0", "for": "5m", "labels": {"severity": "page"},
     "annotations": {"summary": "{{ $labels.instance }} is down"}},
]}
AM_CONFIG = """templates: ['default_template']
route: {receiver: example-email, routes: [{receiver: pager, matchers: ['severity="page"']}]}
receivers:
  - name: example-email
    email_configs: [{to: 'x@example.org', from: 'am@example.org', smarthost: 'localhost:25'}]
  - name: pager
"""
TEMPLATES = {"default_template": '{{ define "__alertmanager" }}AlertManager{{ end }}\n'}


@pytest.fixture
def mimir():
    with MimirDouble() as double:
        yield double


def call(m: MimirDouble, method: str, path: str, tenant: str | None = TENANT, headers=None,
         **kwargs) -> requests.Response:
    base = {"Authorization": f"Bearer {TOKEN}"} | ({"X-Scope-OrgID": tenant} if tenant else {})
    return requests.request(method, m.url + path, headers=base | (headers or {}), timeout=30, **kwargs)


def post_group(m: MimirDouble, namespace: str, group: dict | str, base: str = BASE, **kwargs) -> requests.Response:
    body = group if isinstance(group, str) else yaml.safe_dump(group, sort_keys=False)
    return call(m, "POST", f"{base}/{quote(namespace, safe='')}", headers=YAML_CT, data=body.encode(), **kwargs)


def post_am(m: MimirDouble, config: str = AM_CONFIG, templates: dict | None = None, **kwargs) -> requests.Response:
    doc = {"template_files": TEMPLATES if templates is None else templates, "alertmanager_config": config}
    return call(m, "POST", "/api/v1/alerts", data=yaml.safe_dump(doc).encode(), **kwargs)


def with_rules(*rules: dict, name: str = "g") -> dict:
    return {"name": name, "rules": list(rules)}


# ---- Common: auth and tenant ------------------------------------------------------------------
def test_a_missing_or_wrong_bearer_token_is_401_plain_text(mimir):
    """Common: bearer auth; [double] 401 text "Unauthorized" (Mimir sits behind the authenticating gateway)."""
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dGVhbS1hOmtleQ=="}):
        r = requests.get(mimir.url + BASE, headers={"X-Scope-OrgID": TENANT, **headers}, timeout=30)
        assert (r.status_code, r.text, r.headers["Content-Type"]) == (401, "Unauthorized\n",
                                                                      "text/plain; charset=utf-8")


def test_without_a_token_configured_no_authorization_header_is_needed():
    """Common: auth is optional; token=None turns it off."""
    with MimirDouble(token=None) as m:
        r = requests.get(m.url + BASE, headers={"X-Scope-OrgID": TENANT}, timeout=30)
    assert (r.status_code, r.text) == (404, "no rule groups found\n")


def test_a_missing_tenant_header_is_401_no_org_id_on_both_apis(mimir):
    """Common: X-Scope-OrgID is needed when multi-tenant; [mimir] dskit answers 401 "no org id"."""
    for method, path in (("GET", BASE), ("POST", BASE + "/ns"), ("DELETE", BASE + "/ns/g"), ("GET", "/api/v1/alerts")):
        r = call(mimir, method, path, tenant=None, headers=YAML_CT)
        assert (r.status_code, r.text) == (401, "no org id\n")
    assert mimir.groups(TENANT) == {} and mimir.requests[0][2] is None


def test_with_multitenancy_off_every_request_is_tenant_anonymous():
    """Common: multi-tenancy off -> tenant `anonymous`; [mimir] the header is then ignored."""
    with MimirDouble(multitenant=False) as m:
        assert post_group(m, "ns", GROUP, tenant=None).status_code == 202
        assert call(m, "GET", BASE, tenant="someone-else").status_code == 200
        assert list(m.groups("anonymous")) == ["ns"]
        assert {tenant for _, _, tenant in m.requests} == {"anonymous"}


def test_tenants_are_isolated(mimir):
    """Common: each tenant has its own rules and Alertmanager config."""
    post_group(mimir, "ns", GROUP)
    post_am(mimir)
    assert call(mimir, "GET", BASE, tenant="team-b").status_code == 404
    assert call(mimir, "GET", "/api/v1/alerts", tenant="team-b").status_code == 404


def test_an_unknown_path_is_404_and_a_wrong_method_is_405(mimir):
    """[mimir] gorilla/mux: no route -> 404 "404 page not found"; route without that method -> 405."""
    assert call(mimir, "GET", "/nope").text == "404 page not found\n"
    assert call(mimir, "GET", BASE + "/").status_code == 404
    assert call(mimir, "GET", BASE + "/a/b/c").status_code == 404
    assert call(mimir, "POST", BASE, headers=YAML_CT, data=b"").status_code == 405
    assert call(mimir, "PUT", BASE + "/ns/g").status_code == 405
    assert call(mimir, "PUT", "/api/v1/alerts").status_code == 405


# ---- Ruler rule-config API: the table --------------------------------------------------------
def test_get_base_with_no_rules_is_404_no_rule_groups_found(mimir):
    """GET {base}; [mimir] an empty rule set is 404 "no rule groups found"."""
    r = call(mimir, "GET", BASE)
    assert (r.status_code, r.text) == (404, "no rule groups found\n")


def test_post_a_group_is_202_and_get_base_answers_the_namespace_map(mimir):
    """POST {base}/{namespace} -> 202; GET {base} -> YAML {namespace: [RuleGroup]}."""
    r = post_group(mimir, "infra", GROUP)
    assert r.status_code == 202
    assert r.json() == {"status": "success", "data": None, "errorType": "", "error": ""}
    got = call(mimir, "GET", BASE)
    assert (got.status_code, got.headers["Content-Type"]) == (200, "application/yaml")
    assert yaml.safe_load(got.text) == {"infra": [GROUP]}


def test_get_namespace_answers_only_that_namespace_and_404_when_missing(mimir):
    """GET {base}/{namespace}: its groups ([mimir] as the {namespace: [...]} map); 404 when it has none."""
    post_group(mimir, "infra", GROUP)
    post_group(mimir, "app", with_rules({"alert": "A", "expr": "up == 0"}))
    r = call(mimir, "GET", BASE + "/infra")
    assert (r.status_code, yaml.safe_load(r.text)) == (200, {"infra": [GROUP]})
    missing = call(mimir, "GET", BASE + "/nope")
    assert (missing.status_code, missing.text) == (404, "no rule groups found\n")


def test_get_group_answers_one_rule_group_and_404_when_missing(mimir):
    """GET {base}/{namespace}/{groupName}: 200 one RuleGroup / 404 ([mimir] "group does not exist")."""
    post_group(mimir, "infra", GROUP)
    r = call(mimir, "GET", BASE + "/infra/availability")
    assert (r.status_code, yaml.safe_load(r.text)) == (200, GROUP)
    for path in ("/infra/nope", "/nope/availability"):
        missing = call(mimir, "GET", BASE + path)
        assert (missing.status_code, missing.text) == (404, "group does not exist\n")


def test_post_replaces_a_group_with_the_same_name_and_keeps_rule_order(mimir):
    """POST: creates or replaces the group with that name; the other groups stay."""
    post_group(mimir, "infra", GROUP)
    post_group(mimir, "infra", with_rules({"alert": "Other", "expr": "vector(1)"}, name="other"))
    new = dict(GROUP, rules=[GROUP["rules"][1], GROUP["rules"][0], {"record": "a:b", "expr": "sum(x)"}])
    assert post_group(mimir, "infra", new).status_code == 202
    groups = mimir.groups(TENANT)["infra"]
    assert [g["name"] for g in groups] == ["availability", "other"]
    assert [r.get("alert") or r.get("record") for r in groups[0]["rules"]] == ["InstanceDown", "job:up:sum", "a:b"]


def test_delete_group_is_202_and_a_missing_group_is_404_or_202_by_store(mimir):
    """DELETE {base}/{namespace}/{groupName} -> 202; [mimir] missing -> 404 (S3 store: 202, a knob)."""
    post_group(mimir, "infra", GROUP)
    post_group(mimir, "infra", with_rules({"alert": "A", "expr": "up == 0"}, name="other"))
    r = call(mimir, "DELETE", BASE + "/infra/availability")
    assert (r.status_code, r.json()["status"]) == (202, "success")
    assert [g["name"] for g in mimir.groups(TENANT)["infra"]] == ["other"]
    missing = call(mimir, "DELETE", BASE + "/infra/availability")
    assert (missing.status_code, missing.text) == (404, "group does not exist\n")
    with MimirDouble(missing_group_delete_status=202) as s3:
        assert call(s3, "DELETE", BASE + "/infra/availability").status_code == 202


def test_deleting_the_last_group_removes_the_namespace(mimir):
    """[mimir] a namespace exists only while it holds groups."""
    post_group(mimir, "infra", GROUP)
    call(mimir, "DELETE", BASE + "/infra/availability")
    assert call(mimir, "GET", BASE).status_code == 404 and mimir.groups(TENANT) == {}


def test_delete_namespace_is_202_removes_all_its_groups_and_404_when_missing(mimir):
    """DELETE {base}/{namespace} -> 202, deletes all groups; [mimir] missing -> 404 "group namespace does not exist"."""
    post_group(mimir, "infra", GROUP)
    post_group(mimir, "infra", with_rules({"alert": "A", "expr": "up == 0"}, name="other"))
    post_group(mimir, "app", GROUP)
    assert call(mimir, "DELETE", BASE + "/infra").status_code == 202
    assert list(mimir.groups(TENANT)) == ["app"]
    missing = call(mimir, "DELETE", BASE + "/infra")
    assert (missing.status_code, missing.text) == (404, "group namespace does not exist\n")


# ---- percent-encoding, legacy path, prefix -----------------------------------------------------
def test_percent_encoded_segments_are_decoded_and_slashes_kept_in_names(mimir):
    """Common: {namespace} and {groupName} are percent-encoded (`/` -> %2F) and decoded by the server."""
    namespace, group = "team/a b", "slo/fast burn"
    assert post_group(mimir, namespace, with_rules({"alert": "A", "expr": "up == 0"}, name=group)).status_code == 202
    assert list(mimir.groups(TENANT)) == [namespace]
    path = f"{BASE}/{quote(namespace, safe='')}/{quote(group, safe='')}"
    assert yaml.safe_load(call(mimir, "GET", path).text)["name"] == group
    assert yaml.safe_load(call(mimir, "GET", BASE).text) == {namespace: [mimir.groups(TENANT)[namespace][0]]}
    assert call(mimir, "DELETE", path).status_code == 202 and mimir.groups(TENANT) == {}


def test_segments_are_decoded_exactly_once(mimir):
    """Common: url.PathUnescape once: %252F reaches the server as the literal text %2F."""
    post_group(mimir, "a%2Fb", GROUP)   # quote() turns it into a%252Fb
    assert list(mimir.groups(TENANT)) == ["a%2Fb"]
    assert call(mimir, "GET", BASE + "/a%252Fb/availability").status_code == 200
    assert call(mimir, "GET", BASE + "/a%2Fb/availability").status_code == 404


def test_the_legacy_path_serves_the_same_rules(mimir):
    """Base path: the legacy /api/v1/rules (mimirtool --use-legacy-routes) is the same store."""
    assert post_group(mimir, "infra", GROUP, base="/api/v1/rules").status_code == 202
    assert yaml.safe_load(call(mimir, "GET", BASE).text) == {"infra": [GROUP]}
    assert yaml.safe_load(call(mimir, "GET", "/api/v1/rules/infra/availability").text) == GROUP
    assert call(mimir, "DELETE", "/api/v1/rules/infra").status_code == 202


def test_the_prometheus_prefix_is_configurable():
    """Base path: <prometheus-http-prefix>/config/v1/rules."""
    with MimirDouble(prefix="/custom") as m:
        assert post_group(m, "infra", GROUP, base="/custom/config/v1/rules").status_code == 202
        assert call(m, "GET", BASE).status_code == 404
        assert call(m, "GET", "/custom/config/v1/rules").status_code == 200


# ---- POST body, validation and re-marshalling --------------------------------------------------
def test_a_non_yaml_content_type_is_refused(mimir):
    """POST: Content-Type application/yaml ([contract] anything else -> 415 here)."""
    r = call(mimir, "POST", BASE + "/infra", headers={"Content-Type": "application/json"},
             data=yaml.safe_dump(GROUP).encode())
    assert r.status_code == 415 and mimir.groups(TENANT) == {}
    ok = call(mimir, "POST", BASE + "/infra", headers={"Content-Type": "application/yaml; charset=utf-8"},
              data=yaml.safe_dump(GROUP).encode())
    assert ok.status_code == 202


@pytest.mark.parametrize("body, message", [
    ("name: [unclosed", "unable to decoded rule group"),
    ("name: g\nrules:\n  - alert: A\n    expr: up\n    for: 5x\n", "unable to decoded rule group"),
    ("name: g\ninterval: 60\nrules: [{alert: A, expr: up}]\n", "unable to decoded rule group"),
    ("rules: [{alert: A, expr: up}]\n", "invalid rules configuration: rule group name must not be empty"),
    ("name: g\nrules: []\n", "invalid rules configuration: rule group 'g' has no rules"),
    ("name: g\n", "invalid rules configuration: rule group 'g' has no rules"),
    ("name: g\nrules: [{alert: A, record: b, expr: up}]\n",
     'group "g", rule 0, "A": only one of \'record\' and \'alert\' must be set'),
    ("name: g\nrules: [{expr: up}]\n", 'group "g", rule 0, "": one of \'record\' or \'alert\' must be set'),
    ("name: g\nrules: [{alert: A}]\n", 'group "g", rule 0, "A": field \'expr\' must be set in rule'),
    ("name: g\nrules: [{alert: A, expr: 'up =='}]\n", 'group "g", rule 0, "A": could not parse expression:'),
    ("name: g\nrules: [{alert: A, expr: up}, {record: 'bad-name', expr: up, for: 1m}]\n",
     'group "g", rule 1, "bad-name": invalid field \'for\' in recording rule, '
     'group "g", rule 1, "bad-name": invalid recording rule name: bad-name'),
    ("name: g\nrules: [{alert: A, expr: up, labels: {'bad-label': x}}]\n", "invalid label name: bad-label"),
    ("groups:\n  - name: g\n    rules: [{alert: A, expr: up}]\n",
     "invalid rules configuration: rule group name must not be empty"),
])
def test_an_invalid_group_is_400_with_the_reason_and_changes_nothing(mimir, body, message):
    """POST validation: YAML parses, name and rules non-empty, one of alert/record, valid PromQL and
    durations ([mimir] messages from ValidateRuleGroup / rulefmt; decode errors are "unable to decoded rule group")."""
    post_group(mimir, "infra", GROUP)
    before = mimir.groups(TENANT)
    r = post_group(mimir, "infra", body)
    assert r.status_code == 400 and r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert message in r.text
    assert mimir.groups(TENANT) == before


def test_get_answers_yaml_re_marshalled_from_the_stored_group_not_the_posted_bytes(mimir):
    """[mimir] the group is stored parsed: canonical durations, unknown keys and zero values dropped,
    expr verbatim, label values as text."""
    body = ("# a comment\nname: g\ninterval: 60s\nunknown_key: 1\nrules:\n"
            "  - alert: A\n    expr: sum(rate(x[5m]))by(a)\n    for: 300s\n    keep_firing_for: 0s\n"
            "    labels: {severity: page, tier: 1, enabled: yes}\n"
            "  - record: 'job:x:rate5m'\n    expr: rate(x[5m])\n")
    assert post_group(mimir, "infra", body).status_code == 202
    text = call(mimir, "GET", BASE + "/infra/g").text
    assert "comment" not in text and "unknown_key" not in text
    assert yaml.safe_load(text) == {"name": "g", "interval": "1m", "rules": [
        {"alert": "A", "expr": "sum(rate(x[5m]))by(a)", "for": "5m",
         "labels": {"enabled": "yes", "severity": "page", "tier": "1"}},
        {"record": "job:x:rate5m", "expr": "rate(x[5m])"}]}


def test_only_the_first_yaml_document_is_read(mimir):
    """[mimir] yaml.Unmarshal decodes one document; the rest of the body is ignored."""
    body = yaml.safe_dump(GROUP) + "---\nname: second\nrules: [{alert: B, expr: up}]\n"
    assert post_group(mimir, "infra", body).status_code == 202
    assert [g["name"] for g in mimir.groups(TENANT)["infra"]] == ["availability"]


def test_source_tenants_need_tenant_federation(mimir):
    """RuleGroup source_tenants (Mimir only); [mimir] refused unless tenant federation is enabled."""
    federated = dict(GROUP, source_tenants=["t1", "t2"])
    r = post_group(mimir, "infra", federated)
    assert r.status_code == 400 and "rules federation is disabled" in r.text
    with MimirDouble(tenant_federation=True) as m:
        assert post_group(m, "infra", federated).status_code == 202
        assert m.groups(TENANT)["infra"][0]["source_tenants"] == ["t1", "t2"]


# ---- Alertmanager config API --------------------------------------------------------------------
def test_get_alertmanager_config_is_404_when_none(mimir):
    """GET: 404 if none; [mimir] body "alertmanager storage object not found"."""
    r = call(mimir, "GET", "/api/v1/alerts")
    assert (r.status_code, r.text) == (404, "alertmanager storage object not found\n")


def test_post_get_delete_alertmanager_config(mimir):
    """POST -> 201; GET -> {template_files, alertmanager_config: <string>} 200; DELETE -> 200."""
    assert post_am(mimir).status_code == 201
    r = call(mimir, "GET", "/api/v1/alerts")
    assert (r.status_code, r.headers["Content-Type"]) == (200, "application/yaml")
    assert yaml.safe_load(r.text) == {"template_files": TEMPLATES, "alertmanager_config": AM_CONFIG}
    assert mimir.alertmanager_config(TENANT)["alertmanager_config"] == AM_CONFIG
    assert call(mimir, "DELETE", "/api/v1/alerts").status_code == 200
    assert call(mimir, "GET", "/api/v1/alerts").status_code == 404
    assert call(mimir, "DELETE", "/api/v1/alerts").status_code == 200   # [mimir] none -> still 200


def test_the_alertmanager_api_is_at_the_root_not_under_the_prefix(mimir):
    """Path: /api/v1/alerts relative to -server.path-prefix, not the Prometheus/Alertmanager prefix."""
    assert post_am(mimir).status_code == 201
    assert call(mimir, "GET", "/prometheus/api/v1/alerts").status_code == 404
    assert call(mimir, "GET", "/alertmanager/api/v1/alerts").status_code == 404


@pytest.mark.parametrize("name", ["../default_template", "/etc/default_template", "dir/default_template"])
def test_a_template_name_with_a_path_is_400(mimir, name):
    """Template names must be bare file names -> 400 "the template name cannot contain any path"."""
    r = post_am(mimir, AM_CONFIG.replace("default_template", name), {name: TEMPLATES["default_template"]})
    assert r.status_code == 400
    assert r.text == (f'error validating Alertmanager config: invalid template name "{name}": '
                      "the template name cannot contain any path\n")
    assert mimir.alertmanager_config(TENANT) is None


@pytest.mark.parametrize("config, message", [
    ("", "configuration provided is empty"),
    ("route: [unclosed", "yaml:"),
    ("receivers: [{name: a}]\n", "no route provided in config"),
    ("route: {group_wait: 30s}\nreceivers: [{name: a}]\n", "root route must specify a default receiver"),
    ("route: {receiver: a, routes: [{receiver: b}]}\nreceivers: [{name: a}]\n", 'undefined receiver "b" used in route'),
    ("route: {receiver: a}\nreceivers: [{name: a}, {name: a}]\n", 'notification config name "a" is not unique'),
    ("route: {receiver: a}\nreceivers: [{name: a, pagerduty_configs: [{routing_key_file: /k}]}]\n",
     "setting PagerDuty routing_key_file is not allowed"),
    ("route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{api_url_file: /k, channel: '#x'}]}]\n",
     "setting Slack api_url_file or global slack_api_url_file is not allowed"),
    ("route: {receiver: a}\nreceivers: [{name: a, victorops_configs: [{api_key_file: /k, routing_key: r}]}]\n",
     "setting VictorOps api_key_file or global victorops_api_key_file is not allowed"),
    ("route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'http://x', http_config: "
     "{tls_config: {ca_file: /ca.pem}}}]}]\n", "setting TLS ca_file, cert_file, key_file, ca, cert or key"),
])
def test_an_invalid_alertmanager_config_is_400_and_changes_nothing(mimir, config, message):
    """POST: [mimir] validateUserConfig (config.Load + Mimir's refusals) -> 400 "error validating ..."."""
    mimir.seed_alertmanager(TENANT, "route: {receiver: x}\nreceivers: [{name: x}]\n")
    before = mimir.alertmanager_config(TENANT)
    r = post_am(mimir, config, {})
    assert r.status_code == 400 and r.text.startswith("error validating Alertmanager config: ")
    assert message in r.text
    assert mimir.alertmanager_config(TENANT) == before


def test_a_document_that_is_not_the_user_config_shape_is_400(mimir):
    """POST body: the {template_files, alertmanager_config} document."""
    r = call(mimir, "POST", "/api/v1/alerts", data=b"template_files: [a, b]\n")
    assert r.status_code == 400 and r.text.startswith("error marshalling YAML Alertmanager config")


@pytest.mark.skipif(not HAS_AMTOOL, reason="amtool is not on PATH")
def test_amtool_check_config_catches_what_the_quick_checks_do_not(mimir):
    """[mimir] config.Load and template parsing run before storing; the double runs amtool for them."""
    bad_duration = AM_CONFIG.replace("{receiver: example-email,", "{receiver: example-email, group_wait: 5x,")
    r = post_am(mimir, bad_duration)
    assert r.status_code == 400 and "5x" in r.text
    broken = post_am(mimir, templates={"default_template": '{{ define "x" }}unclosed'})
    assert broken.status_code == 400 and "default_template" in broken.text
    assert mimir.alertmanager_config(TENANT) is None


def test_a_template_not_listed_under_templates_is_accepted_but_reported(mimir):
    """mimir#7075: [mimir] accepted at POST, fails only at render -> unlisted_templates(); strict mode refuses."""
    extra = dict(TEMPLATES, **{"slack.tmpl": '{{ define "slack" }}s{{ end }}'})
    assert post_am(mimir, templates=extra).status_code == 201
    assert mimir.unlisted_templates(TENANT) == ["slack.tmpl"]
    assert post_am(mimir, AM_CONFIG.replace("['default_template']", "['*']"), extra).status_code == 201
    assert mimir.unlisted_templates(TENANT) == []
    with MimirDouble(strict_templates=True) as strict:
        r = post_am(strict, templates=extra)
        assert r.status_code == 400 and "slack.tmpl" in r.text


# ---- fault injection and observation -------------------------------------------------------------
def test_fail_next_answers_once_with_the_given_status_and_changes_nothing(mimir):
    """Test control: one-shot fault on method + path prefix; the request is still logged."""
    mimir.fail_next("POST", BASE, 503, "upstream down")
    r = post_group(mimir, "infra", GROUP)
    assert (r.status_code, r.text) == (503, "upstream down")
    assert mimir.groups(TENANT) == {}
    assert post_group(mimir, "infra", GROUP).status_code == 202
    mimir.fail_next("*", "/api/v1/alerts", 500)
    assert call(mimir, "GET", "/api/v1/alerts").status_code == 500
    assert call(mimir, "GET", "/api/v1/alerts").status_code == 404
    mimir.fail_next("GET", "/api/v1/rules", 429, times=2)
    assert [call(mimir, "GET", "/api/v1/rules").status_code for _ in range(3)] == [429, 429, 200]


def test_latency_delays_but_the_double_still_answers(mimir):
    """Test control: latency applies to every request; the answers are unchanged."""
    mimir.latency(0.02)
    assert post_group(mimir, "infra", GROUP).status_code == 202
    assert post_am(mimir).status_code == 201
    assert yaml.safe_load(call(mimir, "GET", BASE).text) == {"infra": [GROUP]}
    mimir.latency(0)


def test_requests_log_method_raw_path_and_tenant_and_writes_count_non_gets(mimir):
    """Test control: requests = (method, path as sent, tenant); writes = non-GET count; reset_requests."""
    post_group(mimir, "a/b", GROUP)
    call(mimir, "GET", BASE + "?x=1")
    call(mimir, "DELETE", BASE + "/a%2Fb", tenant="team-b")
    assert mimir.requests == [("POST", BASE + "/a%2Fb", TENANT), ("GET", BASE + "?x=1", TENANT),
                              ("DELETE", BASE + "/a%2Fb", "team-b")]
    assert mimir.writes == 2
    mimir.reset_requests()
    assert (mimir.requests, mimir.writes) == ([], 0)


def test_seed_helpers_are_served_and_state_helpers_read_back(mimir):
    """Test control: seed_group / groups, seed_alertmanager / alertmanager_config."""
    stored = mimir.seed_group(TENANT, "infra", dict(GROUP, interval="120s"))
    assert stored["interval"] == "2m"
    assert yaml.safe_load(call(mimir, "GET", BASE + "/infra/availability").text) == stored
    assert mimir.groups(TENANT) == {"infra": [stored]} and mimir.groups("other") == {}
    mimir.seed_alertmanager(TENANT, AM_CONFIG, TEMPLATES)
    assert yaml.safe_load(call(mimir, "GET", "/api/v1/alerts").text) == mimir.alertmanager_config(TENANT)
    assert mimir.alertmanager_config("other") is None


def test_concurrent_posts_all_land(mimir):
    """Client semantics: mimirtool sync posts with concurrency 8; the double serves them in parallel."""
    def post(i: int) -> None:
        group = with_rules({"alert": "A", "expr": "up == 0"}, name=f"g{i}")
        assert post_group(mimir, f"ns{i % 3}", group).status_code == 202

    threads = [threading.Thread(target=post, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(gs) for gs in mimir.groups(TENANT).values()) == 16 and mimir.writes == 16
