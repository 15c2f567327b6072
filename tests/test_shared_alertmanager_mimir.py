"""A Mimir tenant's Alertmanager config shared with other teams (issue 11), against the Mimir double.

obsgen owns, for the reference spec's prod (service `selftest`, env label `env`), exactly: the route
directly under the root whose matchers include service="selftest" and env="prod", the receivers named
`selftest/prod/*`, and the inhibit rules whose source AND target matchers both include those two
matchers. Everything else in the tenant's `alertmanager_config` -- `global`, other routes and their
order, other receivers (their inline secrets included), inhibit rules, `templates`, `time_intervals`,
`mute_time_intervals` -- and the tenant's `template_files` must come back from an apply exactly as
they were. The helpers below apply those ownership rules on their own, without obsgen's code.

Foreign parts are parsed as Alertmanager parses them: every scalar is its text (yaml.BaseLoader), so
`start_time: 17:00` stays "17:00" -- YAML 1.1 would read it as the number 1020, which Alertmanager refuses.
"""
from __future__ import annotations

import copy
import io
import re
from pathlib import Path

import pytest
import requests
import yaml
from conftest import REFERENCE_SPEC, require_tool, run_tool
from doubles.mimir import MimirDouble

from obsgen.deploy.backends import mimir_alertmanager
from obsgen.generate import compile_spec

TOKEN = "mimir_shared_test_token_0123456789"
TENANT = "platform"
ROUTING_KEY = "pd-routing-key-SECRET-0123456789abcdef"
WEBHOOK = "https://hooks.slack.example/services/T000/B000/SECRET0123456789"
PROD_SECRETS = "/etc/alertmanager/secrets/prod/"
MINE = {("service", "=", "selftest"), ("env", "=", "prod")}
PREFIX = "selftest/prod/"
OBSGEN_RECEIVERS = ["selftest/prod/pagerduty-oncall", "selftest/prod/slack-tickets", "selftest/prod/slack-info"]

# Other teams' inline secrets: they live in the tenant's config and must never leave it.
PAYMENTS_SLACK = "https://hooks.slack.example/services/TPAY/BPAY/xoxb-payments-7f3a9c2e5b1d40aa"
SEARCH_TOKEN = "search-hook-token-4e8b0c6a2f91d7"
ORG_SLACK = "https://hooks.slack.example/services/TORG/BORG/org-global-9d2c7e1a53b8f6"
OPS_ROUTING_KEY = "ops-routing-key-SECRET-a1b2c3d4e5f6"
AUDIT_CREDENTIAL = "audit-bearer-SECRET-77aa88bb99cc"
FOREIGN_SECRETS = (PAYMENTS_SLACK, SEARCH_TOKEN, ORG_SLACK, OPS_ROUTING_KEY, AUDIT_CREDENTIAL)

SHARED = """\
# The platform team's Alertmanager: every team adds its own route.
global:
  resolve_timeout: 5m
  slack_api_url: ORG_SLACK
templates: ['org-*.tmpl']
route:
  receiver: org-default
  group_by: [alertname, team]
  group_wait: 45s
  routes:
    - matchers: ['team="payments"']
      receiver: payments-slack
      group_interval: 90m
      mute_time_intervals: [after-hours]
    - match: {team: search}
      receiver: search-webhook
      active_time_intervals: [business-hours]
    - matchers: ['team="ops"']
      receiver: ops-pager
      routes:
        - matchers: ['audit="true"']
          receiver: ops-audit
receivers:
  - name: org-default
  - name: payments-slack
    slack_configs:
      - api_url: PAYMENTS_SLACK
        channel: '#payments'
        title: '{{ template "org.title" . }}'
        text: '{{ template "org.text" . }}'
  - name: search-webhook
    webhook_configs:
      - url: https://hooks.example/search?token=SEARCH_TOKEN
  - name: ops-pager
    pagerduty_configs:
      - routing_key: OPS_ROUTING_KEY
  - name: ops-audit
    webhook_configs:
      - url: https://audit.example/hook
        http_config:
          authorization:
            credentials: AUDIT_CREDENTIAL
inhibit_rules:
  - source_matchers: ['team="payments"', 'severity="critical"']
    target_matchers: ['team="payments"', 'severity="warning"']
    equal: [alertname]
time_intervals:
  - name: after-hours
    time_intervals:
      - times:
          - start_time: 17:00
            end_time: 24:00
        weekdays: ['monday:friday']
  - name: business-hours
    time_intervals:
      - times:
          - start_time: 09:00
            end_time: 17:00
        weekdays: ['monday:friday']
        location: Europe/Berlin
mute_time_intervals:
  - name: maintenance
    time_intervals:
      - days_of_month: ['1']
"""
for _name, _value in (("ORG_SLACK", ORG_SLACK), ("PAYMENTS_SLACK", PAYMENTS_SLACK), ("SEARCH_TOKEN", SEARCH_TOKEN),
                      ("OPS_ROUTING_KEY", OPS_ROUTING_KEY), ("AUDIT_CREDENTIAL", AUDIT_CREDENTIAL)):
    SHARED = SHARED.replace(_name, _value)

# Kept byte for byte: tabs, trailing spaces, non-ASCII text, no final newline.
TEMPLATES = {
    "org-slack.tmpl": ('{{ define "org.title" }}[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}{{ end }}\n'
                       '{{ define "org.text" }}\t{{ range .Alerts }}• {{ .Annotations.summary }}  \n'
                       '{{ end }}{{ end }}'),
    "org-email.tmpl": '{{ define "org.email.subject" }}Störung: {{ .CommonLabels.alertname }}{{ end }}\n',
}


# ---- ownership rules, written from the issue (not from obsgen) ---------------------------------
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*')


def matcher_set(matchers, match=None) -> set[tuple[str, str, str]]:
    """Matchers (`name="value"` strings) and an old-style `match:` mapping as (name, op, value)."""
    found = set()
    for text in matchers or ():
        m = MATCHER.fullmatch(text)
        assert m, f"test helper cannot read matcher {text!r}"
        found.add((m[1], m[2], m[3] if m[3] is not None else m[4]))
    return found | {(k, "=", v) for k, v in (match or {}).items()}


def is_obsgens_route(route: dict) -> bool:
    return MINE <= matcher_set(route.get("matchers"), route.get("match"))


def is_obsgens_inhibit_rule(rule: dict) -> bool:
    return (MINE <= matcher_set(rule.get("source_matchers"), rule.get("source_match"))
            and MINE <= matcher_set(rule.get("target_matchers"), rule.get("target_match")))


def without_obsgen(config: dict) -> dict:
    """The config minus obsgen's route, receivers and inhibit rules (a list left empty is dropped)."""
    config = copy.deepcopy(config)
    root = config.get("route") or {}
    root["routes"] = [r for r in root.get("routes") or () if not is_obsgens_route(r)]
    config["receivers"] = [r for r in config.get("receivers") or () if not r["name"].startswith(PREFIX)]
    config["inhibit_rules"] = [r for r in config.get("inhibit_rules") or () if not is_obsgens_inhibit_rule(r)]
    for parent, key in ((root, "routes"), (config, "receivers"), (config, "inhibit_rules")):
        if not parent[key]:
            del parent[key]
    return config


def obsgens_parts(config: dict) -> tuple[list[int], dict[str, dict], list[dict]]:
    """(indexes of obsgen's routes under the root, obsgen's receivers by name, obsgen's inhibit rules)."""
    routes = (config.get("route") or {}).get("routes") or []
    return ([i for i, r in enumerate(routes) if is_obsgens_route(r)],
            {r["name"]: r for r in config.get("receivers") or () if r["name"].startswith(PREFIX)},
            [r for r in config.get("inhibit_rules") or () if is_obsgens_inhibit_rule(r)])


DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def seconds(text: str) -> int:
    weeks, days, hours, minutes, secs = (int(v or 0) for v in DURATION.fullmatch(text).groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + secs


def meaning(value, key: str = ""):
    """What Alertmanager makes of a config: matchers in any order, durations by value."""
    if isinstance(value, dict):
        return {k: meaning(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [meaning(v) for v in value]
        return sorted(items) if key in ("matchers", "source_matchers", "target_matchers") else items
    if key in ("group_wait", "group_interval", "repeat_interval", "resolve_timeout"):
        return seconds(value)
    return value


def same_config(a: dict, b: dict) -> bool:
    return meaning(a) == meaning(b)


def as_text(config: str) -> dict:
    """An Alertmanager config as Alertmanager reads it: every scalar is its text."""
    return yaml.load(config, Loader=yaml.BaseLoader)


def stored(mimir: MimirDouble) -> dict:
    return mimir.alertmanager_config(TENANT)


def with_secrets(value):
    """A generated part with its `*_file` secrets as the values Mimir needs inline."""
    values = {"routing_key_file": ("routing_key", ROUTING_KEY), "api_url_file": ("api_url", WEBHOOK)}
    if isinstance(value, dict):
        return dict(values[k] if k in values else (k, with_secrets(v)) for k, v in value.items())
    if isinstance(value, list):
        return [with_secrets(v) for v in value]
    return value


def edited(config: str, edit) -> str:
    """The config text after `edit(document)`, as a person editing it would leave the rest (round trip)."""
    from ruamel.yaml import YAML

    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    document = rt.load(config)
    edit(document)
    out = io.StringIO()
    rt.dump(document, out)
    return out.getvalue()


def titles(out: str) -> list[str]:
    """The object lines of a text plan (`~ alertmanager route selftest/prod`, ...)."""
    return [line for line in out.splitlines() if re.match(r"[~+\-!] \S", line)]


# ---- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "pagerduty-routing-key").write_text(ROUTING_KEY + "\n")
    (directory / "slack-webhook-url").write_text(WEBHOOK + "\n")
    return directory


@pytest.fixture
def make_spec(tmp_path: Path, secrets: Path):
    """The reference spec, prod's secrets under `secrets`, with prod's Alertmanager backend and the
    timing changed as given."""
    def make(alertmanager: dict | None = None, timing: dict | None = None) -> Path:
        data = yaml.safe_load(REFERENCE_SPEC.read_text().replace(PROD_SECRETS, f"{secrets}/"))
        prod = next(e for e in data["environments"] if e["name"] == "prod")
        prod["backends"]["alertmanager"].update(alertmanager or {})
        data["timing"].update(timing or {})
        path = tmp_path / "selftest.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return path
    return make


@pytest.fixture
def spec(make_spec) -> Path:
    return make_spec()


@pytest.fixture
def mimir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secrets: Path):
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", TOKEN)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    with MimirDouble(token=TOKEN) as double:
        yield double


def obsgen(run_cli, mimir: MimirDouble, spec: Path, command: str, *args: str):
    return run_cli(command, "--env", "prod", "--spec", str(spec), "--only", "alertmanager",
                   "--alertmanager-url", mimir.url, *args)


def compiled(spec: Path, name: str) -> dict:
    """prod's generated Alertmanager file `name` (subtree.yaml or alertmanager.yaml), parsed."""
    build = compile_spec(str(spec), ["prod"])
    return yaml.safe_load(next(a.content for a in build.artifacts if a.path == f"prod/alertmanager/{name}"))


def alert_posts(mimir: MimirDouble) -> list[tuple[str, str, str | None]]:
    return [r for r in mimir.requests if r[:2] == ("POST", "/api/v1/alerts")]


def assert_obsgens_parts_are_the_generated_subtree(config: dict, spec: Path) -> None:
    subtree = compiled(spec, "subtree.yaml")
    [at], receivers, rules = obsgens_parts(config)
    assert same_config(config["route"]["routes"][at], subtree["route"])
    assert same_config(receivers, {r["name"]: with_secrets(r) for r in subtree["receivers"]})
    assert same_config({"rules": rules}, {"rules": subtree["inhibit_rules"]})


# ---- everything outside obsgen's subtree is kept -------------------------------------------------
THEIR_ROUTES = ["payments-slack", "search-webhook", "ops-pager"]


@pytest.mark.parametrize("placement, foreign_before, foreign_after", [
    ({}, [], THEIR_ROUTES),                                                        # default: first
    ({"route": {"position": "last"}}, THEIR_ROUTES, []),
    ({"route": {"position": "first", "continue": True}}, [], THEIR_ROUTES),
])
def test_apply_keeps_every_part_of_the_shared_config_and_the_template_files(
        run_cli, mimir, make_spec, placement, foreign_before, foreign_after) -> None:
    spec = make_spec(placement)
    mimir.seed_alertmanager(TENANT, SHARED, TEMPLATES)
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert result.code == 0, result.err
    assert len(alert_posts(mimir)) == 1
    after = stored(mimir)
    assert after["template_files"] == TEMPLATES  # same keys, same bytes
    assert mimir.unlisted_templates(TENANT) == []  # `templates:` still names them (mimir#7075)
    config = as_text(after["alertmanager_config"])
    assert without_obsgen(config) == as_text(SHARED)
    routes = [r["receiver"] for r in config["route"]["routes"]]
    assert routes == foreign_before + ["selftest/prod/slack-info"] + foreign_after
    assert_obsgens_parts_are_the_generated_subtree(yaml.safe_load(after["alertmanager_config"]), spec)
    [at], _, _ = obsgens_parts(config)
    continues = placement.get("route", {}).get("continue", False)
    assert (config["route"]["routes"][at].get("continue") == "true") == continues


def test_obsgens_route_found_between_other_routes_is_replaced_where_the_spec_says(run_cli, mimir, spec) -> None:
    """An older obsgen subtree (route hand-moved between two foreign routes, an older receiver set)
    is brought to the spec; the foreign routes keep their order around it."""
    old_route = {"matchers": ['service="selftest"', 'env="prod"'], "receiver": "selftest/prod/old-pager"}

    def older(doc):
        doc["route"]["routes"].insert(1, old_route)
        doc["receivers"].append({"name": "selftest/prod/old-pager"})
    mimir.seed_alertmanager(TENANT, edited(SHARED, older), TEMPLATES)
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert result.code == 0, result.err
    assert "1 owned object left the spec; not deleted without --prune" in result.out
    config = as_text(stored(mimir)["alertmanager_config"])
    assert sorted(obsgens_parts(config)[1]) == sorted(OBSGEN_RECEIVERS + ["selftest/prod/old-pager"])
    assert [r["receiver"] for r in config["route"]["routes"]] == ["selftest/prod/slack-info"] + THEIR_ROUTES
    assert without_obsgen(config) == as_text(SHARED)
    pruned = obsgen(run_cli, mimir, spec, "apply", "--yes", "--prune")
    assert pruned.code == 0, pruned.err
    assert titles(pruned.out) == ["- alertmanager receiver selftest/prod/old-pager"]
    config = as_text(stored(mimir)["alertmanager_config"])
    assert sorted(obsgens_parts(config)[1]) == sorted(OBSGEN_RECEIVERS)
    assert without_obsgen(config) == as_text(SHARED)
    assert stored(mimir)["template_files"] == TEMPLATES


# ---- secrets ----------------------------------------------------------------------------------
def test_other_teams_secrets_never_leave_the_tenant_config(run_cli, mimir, spec, tmp_path: Path) -> None:
    mimir.seed_alertmanager(TENANT, SHARED, TEMPLATES)
    outputs = []
    for fmt in ("text", "json", "markdown"):
        result = obsgen(run_cli, mimir, spec, "diff", "--format", fmt)
        outputs += [result.out, result.err]
    applied = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert applied.code == 0, applied.err
    outputs += [applied.out, applied.err]

    def hand_edits(doc):  # one inside obsgen's subtree (shown), one in another team's receiver (not shown)
        next(r for r in doc["receivers"] if r["name"] == "selftest/prod/slack-tickets")["slack_configs"][0][
            "channel"] = "#somewhere-else"
        next(r for r in doc["receivers"] if r["name"] == "payments-slack")["slack_configs"][0][
            "channel"] = "#payments-alerts"
    mimir.seed_alertmanager(TENANT, edited(stored(mimir)["alertmanager_config"], hand_edits), TEMPLATES)
    for fmt in ("text", "json", "markdown"):
        result = obsgen(run_cli, mimir, spec, "diff", "--format", fmt)
        outputs += [result.out, result.err]
        if fmt == "text":
            assert titles(result.out) == ["~ alertmanager receiver selftest/prod/slack-tickets"]
    again = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert again.code == 0, again.err
    outputs += [again.out, again.err]
    history = run_cli("history", "--env", "prod")
    outputs += [history.out, history.err]
    state = [p.read_bytes().decode("utf-8", errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert state, "the ledger is in the state directory"
    for secret in FOREIGN_SECRETS + (ROUTING_KEY, WEBHOOK, TOKEN):
        assert not any(secret in text for text in outputs + state), secret
    config = stored(mimir)["alertmanager_config"]
    assert all(config.count(secret) == 1 for secret in FOREIGN_SECRETS)  # posted back, unchanged
    assert "#payments-alerts" in config


def test_obsgens_secrets_are_inline_in_the_tenant_config_and_masked_in_the_diff(run_cli, mimir, spec,
                                                                               secrets: Path) -> None:
    mimir.seed_alertmanager(TENANT, SHARED, TEMPLATES)
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    _, receivers, _ = obsgens_parts(as_text(stored(mimir)["alertmanager_config"]))
    assert receivers["selftest/prod/pagerduty-oncall"]["pagerduty_configs"][0]["routing_key"] == ROUTING_KEY
    for name in ("selftest/prod/slack-tickets", "selftest/prod/slack-info"):
        assert receivers[name]["slack_configs"][0]["api_url"] == WEBHOOK
    assert "_file:" not in stored(mimir)["alertmanager_config"]  # Mimir refuses *_file secrets

    def hand_added_field(doc):
        next(r for r in doc["receivers"] if r["name"] == "selftest/prod/slack-tickets")["slack_configs"][0][
            "icon_emoji"] = ":fire:"
    mimir.seed_alertmanager(TENANT, edited(stored(mimir)["alertmanager_config"], hand_added_field), TEMPLATES)
    diff = obsgen(run_cli, mimir, spec, "diff", "--exit-code")
    assert diff.code == 1
    assert titles(diff.out) == ["~ alertmanager receiver selftest/prod/slack-tickets"]
    assert "icon_emoji" in diff.out
    assert f"api_url_file: {secrets}/slack-webhook-url" in diff.out  # the live value shown as the file it equals
    assert WEBHOOK not in diff.out + diff.err and ROUTING_KEY not in diff.out + diff.err


def test_a_secret_hand_added_inside_obsgens_subtree_is_shown_as_a_change_but_never_its_value(
        run_cli, mimir, spec) -> None:
    """Someone adds a webhook with a token in its URL, and an HTTP credential, to obsgen's receiver:
    the diff shows that the receiver changed, and apply takes them out, without ever printing them."""
    hook, credential = "https://hooks.example/x?token=hand-added-SECRET-5b7e", "hand-added-credential-SECRET-9c1f"
    mimir.seed_alertmanager(TENANT, SHARED, TEMPLATES)
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0

    def hand_added(doc):
        receiver = next(r for r in doc["receivers"] if r["name"] == "selftest/prod/slack-info")
        receiver["webhook_configs"] = [{"url": hook, "http_config": {"authorization": {"credentials": credential}}}]
    mimir.seed_alertmanager(TENANT, edited(stored(mimir)["alertmanager_config"], hand_added), TEMPLATES)
    outputs = []
    for fmt in ("text", "json", "markdown"):
        diff = obsgen(run_cli, mimir, spec, "diff", "--exit-code", "--format", fmt)
        assert diff.code == 1
        outputs += [diff.out, diff.err]
    assert titles(outputs[0]) == ["~ alertmanager receiver selftest/prod/slack-info"]
    assert "webhook_configs" in outputs[0]
    applied = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert applied.code == 0, applied.err
    outputs += [applied.out, applied.err]
    assert hook not in stored(mimir)["alertmanager_config"]
    for secret in (hook, credential, "hand-added-SECRET"):
        assert not any(secret in text for text in outputs), secret


# ---- second apply, hand edits ---------------------------------------------------------------------
def test_a_second_apply_posts_nothing(run_cli, mimir, spec) -> None:
    mimir.seed_alertmanager(TENANT, SHARED, TEMPLATES)
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    first = stored(mimir)
    mimir.reset_requests()
    again = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert (again.code, again.out) == (0, "prod: No changes: the live state matches the spec (5 objects).\n")
    assert mimir.writes == 0
    assert stored(mimir) == first


def test_a_hand_edit_inside_obsgens_subtree_is_shown_and_restored_one_in_another_teams_route_is_not(
        run_cli, mimir, spec) -> None:
    mimir.seed_alertmanager(TENANT, SHARED, TEMPLATES)
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    applied = as_text(stored(mimir)["alertmanager_config"])

    def theirs(doc):
        payments = next(r for r in doc["route"]["routes"] if r.get("receiver") == "payments-slack")
        payments["group_wait"] = "2m"
        payments["routes"] = [{"matchers": ['severity="critical"'], "receiver": "org-default"}]

    def mine(doc):
        route = next(r for r in doc["route"]["routes"] if r.get("receiver") == "selftest/prod/slack-info")
        route["routes"].append({"matchers": ['step_id="db-migrate"'], "receiver": "org-default"})

    # another team's edit alone: nothing to show, nothing to write
    mimir.seed_alertmanager(TENANT, edited(stored(mimir)["alertmanager_config"], theirs), TEMPLATES)
    their_edit = stored(mimir)
    diff = obsgen(run_cli, mimir, spec, "diff", "--exit-code")
    assert (diff.code, titles(diff.out)) == (0, [])
    mimir.reset_requests()
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    assert mimir.writes == 0 and stored(mimir) == their_edit

    # plus a hand-added child route inside obsgen's route: shown, and apply takes it out again
    mimir.seed_alertmanager(TENANT, edited(their_edit["alertmanager_config"], mine), TEMPLATES)
    diff = obsgen(run_cli, mimir, spec, "diff", "--exit-code")
    assert diff.code == 1
    assert titles(diff.out) == ["~ alertmanager route selftest/prod"]
    assert 'step_id="db-migrate"' in diff.out and "payments" not in diff.out and "2m" not in diff.out
    mimir.reset_requests()
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert result.code == 0, result.err
    assert len(alert_posts(mimir)) == 1
    config = as_text(stored(mimir)["alertmanager_config"])
    assert obsgens_parts(config)[1:] == obsgens_parts(applied)[1:]
    assert config["route"]["routes"][0] == applied["route"]["routes"][0]
    assert without_obsgen(config) == without_obsgen(as_text(their_edit["alertmanager_config"]))
    assert stored(mimir)["template_files"] == TEMPLATES
    assert obsgen(run_cli, mimir, spec, "diff", "--exit-code").code == 0


# ---- durations ----------------------------------------------------------------------------------
def test_durations_written_another_way_cause_no_change(run_cli, mimir, make_spec) -> None:
    spec = make_spec(timing={"group_wait": "60s", "group_interval": "90m", "repeat_interval": "7d"})
    mimir.seed_alertmanager(TENANT, SHARED, TEMPLATES)
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    mimir.reset_requests()
    again = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert (again.code, titles(again.out), mimir.writes) == (0, [], 0)
    # the same durations as Alertmanager re-writes them (60s -> 1m, 90m -> 1h30m, 7d -> 1w)
    config = stored(mimir)["alertmanager_config"]
    as_alertmanager_writes = {"60s": "1m", "90m": "1h30m", "7d": "1w"}
    rewritten = re.sub(r"(group_wait|group_interval|repeat_interval): (60s|90m|7d)\n",
                       lambda m: f"{m[1]}: {as_alertmanager_writes[m[2]]}\n", config)
    assert rewritten.count("1h30m") >= 1 and rewritten.count("1w") >= 1 and rewritten != config
    mimir.seed_alertmanager(TENANT, rewritten, TEMPLATES)
    diff = obsgen(run_cli, mimir, spec, "diff", "--exit-code")
    assert (diff.code, titles(diff.out)) == (0, [])
    mimir.reset_requests()
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    assert mimir.writes == 0


# ---- owns: whole, empty tenant ------------------------------------------------------------------
def test_owns_whole_replaces_the_config_and_keeps_the_template_files(run_cli, mimir, make_spec,
                                                                    tmp_path: Path) -> None:
    spec = make_spec({"owns": "whole"})
    mimir.seed_alertmanager(TENANT, SHARED, TEMPLATES)
    outputs = []
    for fmt in ("text", "json", "markdown"):  # the diff shows what goes, never another team's secret
        diff = obsgen(run_cli, mimir, spec, "diff", "--format", fmt)
        outputs += [diff.out, diff.err]
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert result.code == 0, result.err
    outputs += [result.out, result.err]
    outputs += [p.read_bytes().decode("utf-8", errors="replace") for p in (tmp_path / "state").rglob("*")
                if p.is_file()]
    for secret in FOREIGN_SECRETS:
        assert not any(secret in text for text in outputs), secret
    assert titles(result.out) == ["~ alertmanager alertmanager-config alertmanager.yaml"]
    after = stored(mimir)
    assert after["template_files"] == TEMPLATES
    assert same_config(yaml.safe_load(after["alertmanager_config"]),
                       with_secrets(compiled(spec, "alertmanager.yaml")))
    assert not any(secret in result.out + result.err for secret in FOREIGN_SECRETS)
    mimir.reset_requests()
    again = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert (again.code, titles(again.out), mimir.writes) == (0, [], 0)


def test_an_empty_tenant_gets_a_minimal_valid_config_around_obsgens_subtree(run_cli, mimir, spec,
                                                                            tmp_path: Path) -> None:
    assert mimir.alertmanager_config(TENANT) is None  # GET answers 404
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert result.code == 0, result.err
    after = stored(mimir)
    assert after["template_files"] == {}
    config = yaml.safe_load(after["alertmanager_config"])
    assert_obsgens_parts_are_the_generated_subtree(config, spec)
    assert [r["receiver"] for r in config["route"]["routes"]] == ["selftest/prod/slack-info"]
    assert config["route"]["receiver"] in OBSGEN_RECEIVERS  # the root catches what no route matches
    assert not is_obsgens_route(config["route"])
    assert sorted(r["name"] for r in config["receivers"]) == sorted(OBSGEN_RECEIVERS)
    assert set(config) <= {"global", "route", "receivers", "inhibit_rules"}
    checked = tmp_path / "stored-alertmanager.yml"
    checked.write_text(after["alertmanager_config"])
    run = run_tool(require_tool("amtool"), "check-config", str(checked))
    assert run.returncode == 0, run.stdout + run.stderr
    mimir.reset_requests()
    again = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert (again.code, titles(again.out), mimir.writes) == (0, [], 0)


# ---- a concurrent change -------------------------------------------------------------------------
@pytest.mark.parametrize("start, concurrent", [
    ("shared", "edited"),      # another team changed the config after obsgen read it
    ("shared", "deleted"),     # someone deleted the tenant's config
    ("empty", "created"),      # the tenant had none when obsgen read it; now it has one
])
def test_a_config_changed_between_read_and_apply_is_refused_and_nothing_is_posted(
        run_cli, mimir, spec, monkeypatch: pytest.MonkeyPatch, start, concurrent) -> None:
    if start == "shared":
        mimir.seed_alertmanager(TENANT, SHARED, TEMPLATES)
    if concurrent == "edited":
        theirs = {"alertmanager_config": edited(SHARED, lambda doc: doc["receivers"].append({"name": "late-comer"})),
                  "template_files": TEMPLATES}
    elif concurrent == "created":
        theirs = {"alertmanager_config": "route: {receiver: late-comer}\nreceivers: [{name: late-comer}]\n",
                  "template_files": {}}
    else:
        theirs = None
    read = mimir_alertmanager.MimirAlertmanagerBackend.read

    def read_then_someone_writes(self, desired):
        objs = read(self, desired)
        if theirs is None:
            requests.delete(mimir.url + "/api/v1/alerts", timeout=30,
                            headers={"Authorization": f"Bearer {TOKEN}", "X-Scope-OrgID": TENANT}).raise_for_status()
        else:
            mimir.seed_alertmanager(TENANT, theirs["alertmanager_config"], theirs["template_files"])
        mimir.reset_requests()  # from here on, obsgen's requests only
        return objs
    monkeypatch.setattr(mimir_alertmanager.MimirAlertmanagerBackend, "read", read_then_someone_writes)
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert result.code == 2
    assert result.err.startswith("obsgen: error: ") and result.err.count("\n") == 1
    assert "changed since obsgen read it" in result.err and "nothing was written" in result.err
    assert [m for m, _, _ in mimir.requests if m != "GET"] == []
    assert stored(mimir) == theirs
