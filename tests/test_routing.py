"""obsgen.compile.routing: matchers, route walking and inhibition with Alertmanager's semantics.

Checked three ways: hand-written expectations, the real `amtool config routes test` (Debian's
Alertmanager 0.25) on the generated configs and on a config that exercises every matcher form, and a
real Alertmanager that is sent a set of alerts and asked which of them it inhibits.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import GENERATED, REFERENCE_SPEC, ROOT, require_tool, run_tool

from obsgen.compile.routing import (Matcher, inhibited, inhibiting_rules, matching_routes, parse_matcher, parse_matchers,
                            receivers_for)

ENVS = ("dev", "staging", "prod")


def _config(env: str, tree: Path = GENERATED) -> dict[str, Any]:
    return yaml.safe_load((tree / env / "alertmanager/alertmanager.yaml").read_text())


def _shared(env: str, tree: Path = GENERATED) -> dict[str, Any]:
    """The routing tests' shared config: obsgen's subtree inside other teams' config."""
    return yaml.safe_load((tree / env / "tests/shared-alertmanager.yaml").read_text())


def _generated_alerts(env: str, tree: Path = GENERATED) -> list[dict[str, str]]:
    """The label sets Alertmanager receives for every alerting rule of an environment."""
    alerts = []
    for path in sorted((tree / env / "prometheus").glob("*.rules.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            alerts += [{**rule["labels"], "alertname": rule["alert"]} for rule in group["rules"] if "alert" in rule]
    return alerts


def _find(alerts: list[dict[str, str]], **labels: str) -> dict[str, str]:
    [alert] = [a for a in alerts if all(a.get(k) == v for k, v in labels.items())]
    return alert


# --- matchers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ('tier="kernel"', Matcher("tier", "=", "kernel")),
    ('  severity =~ "warning|critical"  ', Matcher("severity", "=~", "warning|critical")),
    ("tier!=kernel", Matcher("tier", "!=", "kernel")),
    ('zone!~"eu-.*"', Matcher("zone", "!~", "eu-.*")),
    ('owner=""', Matcher("owner", "=", "")),
    ("owner=", Matcher("owner", "=", "")),
    ('msg="say \\"hi\\", then go"', Matcher("msg", "=", 'say "hi", then go')),
    ('path="C:\\\\dir"', Matcher("path", "=", "C:\\dir")),
    ('odd="a\\qb"', Matcher("odd", "=", "a\\qb")),  # a spurious escape stays literal
    ('two="line\\nnext"', Matcher("two", "=", "line\nnext")),
    ('_under:score="x"', Matcher("_under:score", "=", "x")),
])
def test_parse_matcher_reads_every_form_alertmanager_accepts(text: str, expected: Matcher) -> None:
    assert parse_matcher(text) == expected


@pytest.mark.parametrize("text,error", [
    ("tier", "bad matcher format"),
    ('1tier="x"', "bad matcher format"),
    ('tier=="x"', "unescaped double quote"),
    ('tier="x"y"', "unescaped double quote"),
    ('tier="x', "unescaped double quote"),
    ('tier=x"', "unescaped double quote"),
    ('tier=~"("', "invalid regex"),
])
def test_parse_matcher_rejects_what_alertmanager_rejects(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_matcher(text)


def test_parse_matchers_splits_on_commas_outside_quotes_and_drops_braces() -> None:
    assert parse_matchers('{a="1", b=~"x,y", c!="q\\",r"}') == [
        Matcher("a", "=", "1"), Matcher("b", "=~", "x,y"), Matcher("c", "!=", 'q",r')]
    assert parse_matchers("a=1,b!=2") == [Matcher("a", "=", "1"), Matcher("b", "!=", "2")]
    assert parse_matchers("") == []


def test_a_matcher_prints_in_the_quoted_form_and_parses_back() -> None:
    for matcher in (Matcher("tier", "=~", "governance|optional"), Matcher("msg", "!=", 'a "b" \\ c\nd')):
        assert parse_matcher(str(matcher)) == matcher
    assert str(Matcher("tier", "=", "kernel")) == 'tier="kernel"'


@pytest.mark.parametrize("matcher,labels,expected", [
    (Matcher("s", "=", "critical"), {"s": "critical"}, True),
    (Matcher("s", "=", "critical"), {"s": "Critical"}, False),
    (Matcher("s", "!=", "critical"), {}, True),  # absent is ""
    (Matcher("s", "=", ""), {}, True),
    (Matcher("s", "=", ""), {"s": "x"}, False),
    (Matcher("s", "=~", "crit"), {"s": "critical"}, False),  # anchored at both ends
    (Matcher("s", "=~", "crit.*"), {"s": "critical"}, True),
    (Matcher("s", "=~", "warning|critical"), {"s": "critical"}, True),  # the alternation is grouped
    (Matcher("s", "=~", "warning|critical"), {"s": "xcritical"}, False),
    (Matcher("s", "=~", "warning|critical"), {"s": "critical\n"}, False),
    (Matcher("s", "=~", ".*"), {}, True),
    (Matcher("s", "=~", ".+"), {}, False),
    (Matcher("zone", "!~", "eu-.*"), {}, True),
    (Matcher("zone", "!~", "eu-.*"), {"zone": "eu-west-1"}, False),
    (Matcher("zone", "!~", "eu"), {"zone": "eu-west-1"}, True),
])
def test_matcher_semantics(matcher: Matcher, labels: dict[str, str], expected: bool) -> None:
    assert matcher.matches(labels) is expected


# --- routing: the generated configs -----------------------------------------------------------------

# obsgen's route takes the alerts of its service and environment: the cases below carry both labels unless
# they say `None` (then only the labels given). Receivers are `<service>/<env>/<channel>`.
@pytest.mark.parametrize("env,labels,receivers", [
    ("dev", {"tier": "kernel", "severity": "critical"}, ["selftest/dev/pagerduty-oncall"]),
    ("dev", {"tier": "governance", "severity": "warning"}, ["selftest/dev/slack-tickets"]),
    ("dev", {"tier": "optional", "severity": "info"}, ["selftest/dev/slack-info"]),
    # no SLO of the reference spec pages (run-based SLOs page only where the spec asks): no SLO page route
    ("dev", {"slo_alert": "page", "tier": "all"}, ["selftest/dev/slack-info"]),
    ("dev", {"slo_alert": "ticket", "tier": "all"}, ["selftest/dev/slack-tickets"]),
    ("dev", {"alertname": "Unknown"}, ["selftest/dev/slack-info"]),
    ("dev", {"page": "oncall", "tier": "governance"}, ["selftest/dev/slack-tickets"]),  # dev has no page route
    ("staging", {"tier": "governance"}, ["selftest/staging/slack-tickets"]),
    ("prod", {"tier": "kernel", "severity": "critical"}, ["selftest/prod/pagerduty-oncall"]),
    ("prod", {"tier": "governance", "page": "oncall"}, ["selftest/prod/pagerduty-oncall",
                                                        "selftest/prod/slack-tickets"]),
    ("prod", {"tier": "optional", "page": "oncall"}, ["selftest/prod/pagerduty-oncall", "selftest/prod/slack-info"]),
    ("prod", {"page": "oncall"}, ["selftest/prod/pagerduty-oncall"]),  # a child matched: the route's own is not added
    ("prod", {"page": "other", "tier": "governance"}, ["selftest/prod/slack-tickets"]),
    ("prod", {"tier": "Kernel"}, ["selftest/prod/slack-info"]),
])
def test_receivers_for_the_generated_configs(env: str, labels: dict[str, str], receivers: list[str]) -> None:
    assert receivers_for(_config(env), {"service": "selftest", "env": env, **labels}) == receivers


@pytest.mark.parametrize("env,labels", [
    ("dev", {"tier": "kernel", "severity": "critical", "env": "dev"}),  # no service label
    ("dev", {"tier": "kernel", "severity": "critical", "service": "selftest"}),  # no env label
    ("dev", {"tier": "kernel", "severity": "critical", "service": "selftest", "env": "prod"}),
    ("prod", {"tier": "kernel", "service": "billing", "env": "prod"}),
])
def test_an_alert_of_another_service_or_environment_goes_to_the_standalone_root_receiver(
        env: str, labels: dict[str, str]) -> None:
    """The standalone config's root is obsgen's minimal root: its receiver is the least severe tier's."""
    assert receivers_for(_config(env), labels) == [f"selftest/{env}/slack-info"]


@pytest.mark.parametrize("env", ENVS)
def test_every_generated_alert_reaches_the_receivers_of_its_class(env: str) -> None:
    config, shared = _config(env), _shared(env)
    pages = env == "prod"
    pager, tickets, info = (f"selftest/{env}/{channel}" for channel in ("pagerduty-oncall", "slack-tickets",
                                                                         "slack-info"))
    expected = {"kernel": [pager],
                "governance": [pager, tickets] if pages else [tickets],
                "optional": [pager, info] if pages else [info]}
    alerts = _generated_alerts(env)
    assert len(alerts) == 16  # 10 step alerts, 4 about runs, 2 SLO tickets (the reference SLOs do not page)
    assert not [a for a in alerts if a.get("slo_alert") == "page"]
    for alert in alerts:
        if "slo_alert" in alert:
            want = [pager] if alert["slo_alert"] == "page" else [tickets]
        elif alert["alertname"] == "SelftestNotReportingNoData":  # never reported: a notice, never a page
            want = [info]
        elif alert["alertname"] == "SelftestNotReporting":  # a ticket: SelftestNoPassingRun pages a silent job
            want = [tickets]
        else:
            want = expected[alert["tier"]]
        assert receivers_for(config, alert) == want, alert
        assert receivers_for(shared, alert) == want, alert


def test_intended_receivers_are_the_channels_the_spec_intends_named_for_the_service_and_environment() -> None:
    from obsgen.compile.routing_tests import intended_channels, intended_receivers
    from obsgen.spec import load_spec

    model = load_spec(str(REFERENCE_SPEC.relative_to(ROOT)))
    prod, dev = model.environment("prod"), model.environment("dev")
    governance = {"alertname": "SelftestGovernanceFailuresAboveTolerance", "tier": "governance", "page": "oncall"}
    assert intended_channels(model, prod, governance) == ["pagerduty-oncall", "slack-tickets"]
    assert intended_receivers(model, prod, governance) == ["selftest/prod/pagerduty-oncall",
                                                           "selftest/prod/slack-tickets"]
    assert intended_receivers(model, dev, {**governance, "page": ""}) == ["selftest/dev/slack-tickets"]
    assert intended_receivers(model, dev, {"slo_alert": "page"}) == ["selftest/dev/pagerduty-oncall"]


# --- routing: obsgen's subtree inside another team's config ----------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_in_the_shared_config_other_teams_keep_their_routes_and_root(env: str) -> None:
    """The shared test config: the platform's root receiver, billing's and search's routes, and obsgen's."""
    shared = _shared(env)
    kernel = _find(_generated_alerts(env), alertname="SelftestKernelStepFailed", step_id="core-checks")
    assert receivers_for(shared, {**kernel, "service": "billing"}) == ["billing-oncall"]
    assert receivers_for(shared, {**kernel, "service": "search"}) == ["search-chat"]
    assert receivers_for(shared, {**kernel, "env": f"not-{env}"}) == ["platform-default"]
    assert receivers_for(shared, {"alertname": "Unknown"}) == ["platform-default"]
    assert receivers_for(shared, kernel) == [f"selftest/{env}/pagerduty-oncall"]
    names = [r["name"] for r in shared["receivers"]]
    assert {"platform-default", "billing-oncall", "search-chat"} <= set(names)
    assert shared["time_intervals"][0]["name"] == "weekend-maintenance"
    assert any('service="billing"' in rule["source_matchers"] for rule in shared["inhibit_rules"])


# --- routing: a config that exercises every form -----------------------------------------------------

FORMS: dict[str, Any] = {
    "route": {"receiver": "default", "routes": [
        {"matchers": ['team="db"', 'severity=~"warning|critical"'], "receiver": "db", "continue": True,
         "routes": [{"matchers": ['severity="critical"'], "receiver": "db-pager"}]},
        {"match": {"team": "db"}, "match_re": {"service": "api|web"}, "receiver": "db-web"},
        {"matchers": ['{team!="db", env=~"prod.*"}'], "routes": [
            {"matchers": ['zone!~"eu-.*"'], "receiver": "prod-non-eu"},
            {"matchers": ['zone=~"eu-.*"'], "receiver": "prod-eu", "continue": True},
            {"matchers": ['zone="eu-west-1"']},
        ]},
        {"matchers": ['msg="say \\"hi\\", then go"'], "receiver": "quoted"},
        {"matchers": ["severity=~crit"], "receiver": "crit-exactly"},
        {"matchers": ['owner=""'], "receiver": "no-owner"},
    ]},
    "receivers": [{"name": n} for n in ("default", "db", "db-pager", "db-web", "prod-non-eu", "prod-eu",
                                        "quoted", "crit-exactly", "no-owner")],
}

FORM_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({}, ["no-owner"]),
    ({"owner": "x"}, ["default"]),
    ({"team": "db", "severity": "critical"}, ["db-pager", "no-owner"]),
    ({"team": "db", "severity": "warning", "service": "web", "owner": "x"}, ["db", "db-web"]),
    ({"team": "db", "severity": "info", "service": "api", "owner": "x"}, ["db-web"]),
    ({"team": "db", "service": "api-gw", "owner": "x"}, ["default"]),
    ({"env": "prod-1", "zone": "eu-west-1", "owner": "x"}, ["prod-eu", "default"]),  # inherited receiver
    ({"env": "prod-1", "zone": "eu-north-1", "owner": "x"}, ["prod-eu"]),
    ({"env": "prod", "zone": "us-east-1", "owner": "x"}, ["prod-non-eu"]),
    ({"env": "production", "owner": "x"}, ["prod-non-eu"]),  # an absent zone is "", not eu-.*
    ({"env": "preprod", "owner": "x"}, ["default"]),
    ({"env": "prod", "team": "db", "owner": "x"}, ["default"]),
    ({"msg": 'say "hi", then go', "owner": "x"}, ["quoted"]),
    ({"severity": "crit", "owner": "x"}, ["crit-exactly"]),
    ({"severity": "critical", "owner": "x"}, ["default"]),
    ({"team": "DB", "severity": "critical"}, ["no-owner"]),
]


@pytest.mark.parametrize("labels,receivers", FORM_CASES, ids=lambda v: repr(v))
def test_receivers_for_every_matcher_form(labels: dict[str, str], receivers: list[str]) -> None:
    assert receivers_for(FORMS, labels) == receivers


def test_matching_routes_names_each_route_by_its_path() -> None:
    labels = {"team": "db", "severity": "critical"}
    assert matching_routes(FORMS["route"], labels) == [((0, 0), "db-pager"), ((5,), "no-owner")]
    assert matching_routes({"receiver": "r", "matchers": ['a="1"']}, {}) == []


# --- routing: cross-checked with amtool ----------------------------------------------------------------

def _amtool_receivers(config: Path, labels: dict[str, str]) -> str:
    args = [f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items()]
    proc = run_tool(require_tool("amtool"), "config", "routes", "test", f"--config.file={config}", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


EXTRA_LABELS = [{}, {"page": "oncall"}, {"page": "oncall", "tier": "kernel"}, {"tier": "Kernel"},
                {"slo_alert": "page", "tier": "governance", "page": "oncall"}, {"slo_alert": "other"}]


@pytest.mark.parametrize("tree", [GENERATED, ROOT / "tests/goldens/minimal", ROOT / "tests/goldens/large"],
                         ids=["reference", "minimal", "large"])
def test_receivers_for_agrees_with_amtool_on_every_generated_alert(tree: Path) -> None:
    checked = 0
    for env_dir in sorted(p for p in tree.iterdir() if (p / "alertmanager/alertmanager.yaml").is_file()):
        for config_file in (env_dir / "alertmanager/alertmanager.yaml", env_dir / "tests/shared-alertmanager.yaml"):
            if not config_file.is_file():
                continue  # a golden tree built before the shared test config existed
            config = yaml.safe_load(config_file.read_text())
            alerts = _generated_alerts(env_dir.name, tree)
            others = [{**a, "service": "billing"} for a in alerts[:3]] + [{**a, "env": "elsewhere"} for a in alerts[:3]]
            unique = {tuple(sorted(a.items())): a for a in alerts + others + EXTRA_LABELS}
            for labels in unique.values():
                assert ",".join(receivers_for(config, labels)) == _amtool_receivers(config_file, labels), labels
                checked += 1
    assert checked >= len(EXTRA_LABELS) + 2


def test_receivers_for_agrees_with_amtool_on_every_matcher_form(tmp_path: Path) -> None:
    config_file = tmp_path / "alertmanager.yaml"
    config_file.write_text(yaml.safe_dump(FORMS))
    proc = run_tool(require_tool("amtool"), "check-config", str(config_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for labels, receivers in FORM_CASES:
        assert _amtool_receivers(config_file, labels) == ",".join(receivers), labels


# --- inhibition ------------------------------------------------------------------------------------------

def test_a_kernel_alert_inhibits_governance_and_optional_alerts_of_its_own_environment_only() -> None:
    config = _config("prod")
    prod, dev = _generated_alerts("prod"), [{**a, "env": "dev"} for a in _generated_alerts("prod")]
    kernel = _find(prod, alertname="SelftestKernelStepFailed")
    governance = _find(prod, alertname="SelftestGovernanceFailuresAboveTolerance", step_id="bdd")
    optional = _find(prod, alertname="SelftestOptionalStepFailed", step_id="extras")
    slow = _find(prod, alertname="SelftestSlowRuns")
    stale = _find(prod, alertname="SelftestNotReporting")
    for target in (slow, stale):  # about whole runs: a job that failed and died must still say so
        assert not inhibited(config, target, [kernel])
    for target in (governance, optional):
        assert inhibited(config, target, [kernel])
        assert not inhibited(config, target, [{**kernel, "drill": "true"}])  # a drill mutes nothing
        assert not inhibited(config, target, [_find(prod, alertname="SelftestNotReporting")])  # governance tier
        assert not inhibited(config, target, [_find(dev, alertname="SelftestKernelStepFailed")])
        assert not inhibited(config, target, [])
        assert not inhibited(config, target, [target, governance, optional])  # lesser alerts mute nothing
    assert inhibiting_rules(config, governance, [kernel]) == [0]
    assert not inhibited(config, kernel, prod)  # nothing mutes a kernel alert
    assert not inhibited(config, kernel, [kernel])  # nor itself


LARGE = ROOT / "tests" / "goldens" / "large"  # its custom-ratio SLO counts events, and so pages


def test_an_slo_page_inhibits_the_ticket_of_the_same_slo_and_environment_only() -> None:
    config = _config("staging", LARGE)
    alerts = _generated_alerts("staging", LARGE)
    page = _find(alerts, alertname="SLOBurnRatePage", slo="custom-ratio")
    ticket = _find(alerts, alertname="SLOBurnRateTicket", slo="custom-ratio")
    other_ticket = _find(alerts, alertname="SLOBurnRateTicket", slo="pass-rate-1")
    assert inhibited(config, ticket, [page])
    [index] = inhibiting_rules(config, ticket, [page])
    assert 'slo_alert="page"' in config["inhibit_rules"][index]["source_matchers"]
    assert not inhibited(config, other_ticket, [page])
    assert not inhibited(config, ticket, [{**page, "env": "prod"}])
    assert not inhibited(config, page, [ticket, other_ticket])


def test_no_slo_of_the_reference_spec_pages_so_governance_failures_only_ticket_in_dev_and_staging() -> None:
    for env in ("dev", "staging"):
        alerts = _generated_alerts(env)
        assert {a["alertname"] for a in alerts if "slo" in a} == {"SLOBurnRateTicket"}
        governance = [a for a in alerts if a.get("tier") == "governance" or "slo" in a]
        assert governance and all(receivers_for(_config(env), a) == [f"selftest/{env}/slack-tickets"]
                                  for a in governance), env


@pytest.mark.parametrize("env", ENVS)
def test_obsgens_inhibit_rules_never_mute_another_teams_alert(env: str) -> None:
    """Every obsgen alert of the environment fires; another service's alert with the very same other labels
    is muted by none of obsgen's rules, in the standalone config or the shared one."""
    alerts = _generated_alerts(env)
    for config in (_config(env), _shared(env)):
        for target in alerts:
            assert not inhibited(config, {**target, "service": "billing"}, alerts), target
        governance = _find(alerts, alertname="SelftestGovernanceFailuresAboveTolerance", step_id="bdd")
        assert inhibited(config, governance, alerts)  # while obsgen's own still is


def test_a_label_in_equal_that_is_absent_on_both_sides_counts_as_equal() -> None:
    config = {"inhibit_rules": [{"source_matchers": ['kind="outage"'], "target_matchers": ['kind="symptom"'],
                                 "equal": ["cluster"]}]}
    outage, symptom = {"kind": "outage"}, {"kind": "symptom"}
    assert inhibited(config, symptom, [outage])
    assert inhibited(config, {**symptom, "cluster": "a"}, [{**outage, "cluster": "a"}])
    assert not inhibited(config, {**symptom, "cluster": "a"}, [outage])
    assert not inhibited(config, symptom, [{**outage, "cluster": "a"}])
    assert not inhibited(config, {**symptom, "cluster": "a"}, [{**outage, "cluster": "b"}])


def test_an_alert_matching_both_sides_is_not_muted_by_another_that_also_does() -> None:
    config = {"inhibit_rules": [{"source_matchers": ['severity="critical"'],
                                 "target_matchers": ['severity=~"critical|warning"']}]}
    a, b = {"severity": "critical", "n": "a"}, {"severity": "critical", "n": "b"}
    warning = {"severity": "warning", "n": "c"}
    assert not inhibited(config, a, [a, b])
    assert inhibited(config, warning, [a])
    assert not inhibited(config, {"severity": "info"}, [a])


def test_the_legacy_inhibit_fields_are_honoured() -> None:
    config = {"inhibit_rules": [{"source_match": {"alertname": "NodeDown"},
                                 "target_match_re": {"alertname": "Disk.*|Cpu.*"}, "equal": ["node"]}]}
    assert inhibited(config, {"alertname": "DiskFull", "node": "n1"}, [{"alertname": "NodeDown", "node": "n1"}])
    assert not inhibited(config, {"alertname": "MyDiskFull", "node": "n1"}, [{"alertname": "NodeDown", "node": "n1"}])
    assert not inhibited({}, {"alertname": "DiskFull"}, [{"alertname": "NodeDown"}])


# --- inhibition: cross-checked with a real Alertmanager ---------------------------------------------------

LIVE_RULES = [
    {"source_matchers": ['kind="outage"'], "target_matchers": ['kind="symptom"'], "equal": ["cluster"]},
    {"source_matchers": ['sev="critical"'], "target_matchers": ['sev=~"critical|warning"']},
    {"source_match": {"check": "down"}, "target_match_re": {"check": "disk.*"}, "equal": ["node"]},
]
LIVE_ALERTS = [
    {"kind": "outage"}, {"kind": "symptom", "case": "1"}, {"kind": "symptom", "cluster": "a"},
    {"kind": "outage", "cluster": "b"}, {"kind": "symptom", "cluster": "b", "case": "2"},
    {"sev": "critical", "n": "a"}, {"sev": "critical", "n": "b"}, {"sev": "warning", "n": "c"}, {"sev": "info"},
    {"check": "down", "node": "n1"}, {"check": "disk-full", "node": "n1"}, {"check": "disk-full", "node": "n2"},
    {"check": "mydisk", "node": "n1"},
]


def _live_alerts() -> list[dict[str, str]]:
    prod = [a for a in _generated_alerts("prod")]
    dev = [a for a in _generated_alerts("dev") if a["tier"] != "kernel" and a.get("slo") != "run-duration"]
    return [{**a, "alertname": a.get("alertname", f"Synthetic{i}")} for i, a in enumerate(prod + dev + LIVE_ALERTS)]


def test_inhibited_agrees_with_a_real_alertmanager() -> None:
    from stack import Stack, wait_until

    require_tool("prometheus-alertmanager")
    config = {"route": {"receiver": "blackhole", "group_wait": "1h"}, "receivers": [{"name": "blackhole"}],
              "inhibit_rules": _config("prod")["inhibit_rules"] + LIVE_RULES}
    alerts = _live_alerts()
    expected = sorted(sorted(a.items()) for a in alerts if inhibited(config, a, alerts))
    assert len(expected) >= 10 and len(expected) < len(alerts) - 10  # both outcomes are well represented
    with Stack(alertmanager_config=yaml.safe_dump(config), components=["alertmanager"]) as stack:
        stack.post_alerts([{"labels": a} for a in alerts])

        def muted() -> list[list[tuple[str, str]]]:
            listed = stack.alerts()
            assert len(listed) == len(alerts)
            return sorted(sorted(a["labels"].items()) for a in listed if a["status"]["inhibitedBy"])

        wait_until(lambda: muted() == expected, 20, "Alertmanager to inhibit exactly the predicted alerts")
        assert muted() == expected
