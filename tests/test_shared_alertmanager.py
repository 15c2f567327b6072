"""obsgen in an Alertmanager config file it shares with other teams (file mode), against real Alertmanager.

The config the module's Alertmanager starts with is another team's: routes before and after where
obsgen's goes, receivers, an inhibit rule, a template file, a time interval, `global` settings and
comments. obsgen owns, for the selftest service in dev (README, "Sharing an Alertmanager"):

- the route directly under the root whose matchers select service="selftest" and env="dev";
- the receivers named `selftest/dev/...`;
- the inhibit rules whose source and target matchers both select service="selftest" and env="dev".

Everything else must come out of an apply exactly as it went in. These rules are written out again
below (`without_obsgen`), independently of obsgen's code, and every check of "the rest is kept" uses them.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import require_tool, run_tool
from stack import Stack
from test_apply_live import one_error_line, titles, variant

OWNED_MATCHERS = {'service="selftest"', 'env="dev"'}
PREFIX = "selftest/dev/"
CHANNELS = ("pagerduty-oncall", "slack-tickets", "slack-info")  # the spec's channels, each a receiver in dev
SUBTREE_TITLES = sorted([f"+ alertmanager route {PREFIX[:-1]}", f"+ alertmanager inhibit-rules {PREFIX[:-1]}"]
                        + [f"+ alertmanager receiver {PREFIX}{channel}" for channel in CHANNELS])
TEMPLATE = '{{ define "payments.title" }}[{{ .Status | toUpper }}] payments{{ end }}\n'

# The shared config, in the indented style of Alertmanager's own documentation, in named blocks so
# that each can be looked for, byte for byte, in the file obsgen writes.
HEADER = "# The platform's shared Alertmanager. Hand-maintained: every team adds its route below.\n"
GLOBAL = """\
global:
  resolve_timeout: 7m   # the organisation's default
  smtp_smarthost: 'mail.example.internal:25'
  smtp_from: alertmanager@example.internal
"""
TEMPLATES = """\
templates:
  - 'templates/*.tmpl'   # relative to this file
"""
TIME_INTERVALS = """\
time_intervals:
  - name: weekends
    time_intervals:
      - weekdays: ['saturday', 'sunday']
"""
ROOT_ROUTE = """\
route:
  receiver: default-sink   # whatever no team claims
  group_by: [alertname]
  group_wait: 1s
  routes:
"""
PAYMENTS_ROUTE = """\
    # the payments team: first in the file
    - matchers: ['team="payments"']
      receiver: payments-webhook
      group_interval: 90s
      mute_time_intervals: [weekends]
"""
SEARCH_ROUTE = """\
    # the search team, which lets its alerts go on to later routes
    - matchers: ['team="search"', 'severity=~"critical|warning"']
      receiver: search-null
      continue: true
"""
RECEIVERS = """\
receivers:
  - name: default-sink
  - name: payments-webhook
    webhook_configs:
      - url: 'http://127.0.0.1:9/payments'   # the payments team's webhook
        send_resolved: false
  - name: search-null   # no integrations
"""
INHIBIT_RULES = """\
inhibit_rules:
  - source_matchers: ['team="payments"', 'severity="critical"']
    target_matchers: ['team="payments"', 'severity="warning"']
    equal: [alertname]
"""
FOREIGN_BLOCKS = (GLOBAL, TEMPLATES, TIME_INTERVALS, PAYMENTS_ROUTE, SEARCH_ROUTE, RECEIVERS, INHIBIT_RULES)
SHARED = "\n".join((HEADER + GLOBAL, TEMPLATES, TIME_INTERVALS, ROOT_ROUTE + PAYMENTS_ROUTE + SEARCH_ROUTE,
                    RECEIVERS, INHIBIT_RULES))

# Labels as the generated alert rules set them (service, env, tier, severity, step_id).
KERNEL = {"alertname": "SelftestKernelStepFailed", "service": "selftest", "env": "dev", "tier": "kernel",
          "severity": "critical", "step_id": "core-checks"}
GOVERNANCE = {"alertname": "SelftestGovernanceFailuresAboveTolerance", "service": "selftest", "env": "dev",
              "tier": "governance", "severity": "warning", "step_id": "bdd"}
OPTIONAL = {"alertname": "SelftestOptionalStepFailed", "service": "selftest", "env": "dev", "tier": "optional",
            "severity": "info", "step_id": "extras"}
PAYMENTS = {"alertname": "PaymentsDown", "team": "payments", "severity": "critical"}
SEARCH = {"alertname": "SearchSlow", "team": "search", "severity": "warning"}
NOBODY = {"alertname": "Orphan", "team": "nobody"}


@pytest.fixture(scope="module")
def stack():
    s = Stack(components=("alertmanager",), alertmanager_config=SHARED)
    (s.tmp / "templates").mkdir()
    (s.tmp / "templates" / "payments.tmpl").write_text(TEMPLATE)
    with s:  # started by `with`
        yield s


@pytest.fixture
def am(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Stack:
    """The module's Alertmanager running the shared config again, with obsgen pointed at it."""
    (stack.tmp / "templates" / "payments.tmpl").write_text(TEMPLATE)
    stack.write_alertmanager_config(SHARED)
    assert stack.reload_alertmanager() == 200
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_URL", stack.alertmanager_url)
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_CONFIG_FILE", str(stack.alertmanager_config_file))
    return stack


# --- helpers ---------------------------------------------------------------------------------------

def apply(run_cli, *args: str):
    return run_cli("apply", "--env", "dev", "--yes", "--only", "alertmanager", *args)


def diff(run_cli, *args: str):
    return run_cli("diff", "--env", "dev", "--only", "alertmanager", *args)


def config(stack: Stack) -> dict[str, Any]:
    return yaml.safe_load(stack.alertmanager_config_file.read_text())


def selects_obsgen(matchers: Any) -> bool:
    return isinstance(matchers, list) and OWNED_MATCHERS <= set(matchers)


def without_obsgen(parsed: dict[str, Any]) -> dict[str, Any]:
    """A parsed config minus what obsgen owns for selftest in dev (the ownership rules, written out here)."""
    rest = copy.deepcopy(parsed)
    rest["route"]["routes"] = [r for r in rest["route"].get("routes", []) if not selects_obsgen(r.get("matchers"))]
    rest["receivers"] = [r for r in rest.get("receivers", []) if not r["name"].startswith(PREFIX)]
    rest["inhibit_rules"] = [r for r in rest.get("inhibit_rules", [])
                             if not (selects_obsgen(r.get("source_matchers"))
                                     and selects_obsgen(r.get("target_matchers")))]
    return rest


def receivers_for(config_file: Path, labels: dict[str, str]) -> str:
    """The receivers Alertmanager's own routing sends an alert with `labels` to, by `amtool config routes test`."""
    proc = run_tool(require_tool("amtool"), "config", "routes", "test", f"--config.file={config_file}",
                    *(f"{name}={value}" for name, value in labels.items()))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def reloads(stack: Stack) -> int:
    """How many times Alertmanager has (tried to) load its config file: once at start, once per reload."""
    return stack.logs("alertmanager").count('msg="Loading configuration file" ')


def untouched(stack: Stack) -> tuple[bytes, int, int]:
    """What a run that writes nothing and reloads nothing leaves exactly as it was."""
    path = stack.alertmanager_config_file
    return path.read_bytes(), path.stat().st_mtime_ns, reloads(stack)


def own_line_comments(text: str) -> list[tuple[str, str]]:
    """(comment line, the line after it) for every comment on a line of its own."""
    lines = text.splitlines()
    return [(line, lines[i + 1] if i + 1 < len(lines) else "") for i, line in enumerate(lines)
            if line.lstrip().startswith("#")]


def assert_rest_kept(text: str, before: str = SHARED) -> None:
    """Every part of `before` that is not obsgen's is in `text`, parsed and as written, comments in place."""
    assert without_obsgen(yaml.safe_load(text)) == without_obsgen(yaml.safe_load(before))
    for block in FOREIGN_BLOCKS:
        assert block in text, f"not kept as written:\n{block}"
    for comment, following in own_line_comments(before):
        assert (comment, following) in own_line_comments(text), f"{comment!r} is no longer above {following!r}"
    for line in before.splitlines():
        if " # " in line:  # comments at the end of a line
            assert line in text.splitlines(), line


def spec_with(tmp_path: Path, **alertmanager: Any):
    """specs/selftest.yaml with dev's alertmanager backend given `alertmanager` settings (a `timing` key: the
    spec's timing settings instead)."""
    timing = alertmanager.pop("timing", {})

    def edit(spec: dict[str, Any]) -> None:
        spec["timing"].update(timing)
        dev = next(e for e in spec["environments"] if e["name"] == "dev")
        dev["backends"]["alertmanager"].update(alertmanager)

    return variant(tmp_path, edit)


# --- sharing ---------------------------------------------------------------------------------------

def test_apply_adds_obsgens_subtree_and_keeps_every_other_part_of_the_shared_config(run_cli, am: Stack) -> None:
    planned = diff(run_cli, "--exit-code")
    assert planned.code == 1
    assert titles(planned.out) == SUBTREE_TITLES  # obsgen's parts only: nobody else's are read into the plan
    assert "payments" not in planned.out and "search" not in planned.out and "default-sink" not in planned.out

    result = apply(run_cli)
    assert result.code == 0, result.err
    assert titles(result.out) == SUBTREE_TITLES
    text = am.alertmanager_config_file.read_text()
    assert_rest_kept(text)
    routes = yaml.safe_load(text)["route"]["routes"]
    assert selects_obsgen(routes[0]["matchers"])  # first, the spec's default; the others keep their order
    assert [r["receiver"] for r in routes[1:]] == ["payments-webhook", "search-null"]
    assert not routes[0].get("continue", False)
    receivers = {r["name"] for r in yaml.safe_load(text)["receivers"]}
    assert {f"{PREFIX}{channel}" for channel in CHANNELS} <= receivers

    # Alertmanager runs it: obsgen's route is loaded, the other teams' are still there
    running = am.alertmanager_loaded_config()
    assert [r["receiver"] for r in running["route"]["routes"]] == [
        f"{PREFIX}slack-info", "payments-webhook", "search-null"]
    assert running["templates"] and running["time_intervals"][0]["name"] == "weekends"

    # routing, by Alertmanager's own code: the other teams' alerts reach their receivers, obsgen's reach obsgen's
    live = am.alertmanager_config_file
    assert receivers_for(live, PAYMENTS) == "payments-webhook"
    assert receivers_for(live, SEARCH) == "search-null"
    assert receivers_for(live, NOBODY) == "default-sink"
    assert receivers_for(live, KERNEL) == f"{PREFIX}pagerduty-oncall"
    assert receivers_for(live, GOVERNANCE) == f"{PREFIX}slack-tickets"
    assert receivers_for(live, OPTIONAL) == f"{PREFIX}slack-info"
    assert receivers_for(live, {**KERNEL, "env": "staging"}) == "default-sink"  # dev's route is dev's only

    # a second apply writes nothing and reloads nothing
    before = untouched(am)
    again = apply(run_cli)
    assert again.code == 0 and "No changes" in again.out, again.out + again.err
    assert again.err == ""
    assert untouched(am) == before
    assert diff(run_cli, "--exit-code").code == 0


def test_a_config_whose_lists_are_not_indented_keeps_that_layout(run_cli, am: Stack) -> None:
    flat_routes = ("  routes:\n"
                   "  # the payments team\n"
                   "  - matchers: ['team=\"payments\"']\n"
                   "    receiver: payments-webhook\n")
    flat_receivers = ("receivers:\n"
                      "- name: default-sink\n"
                      "- name: payments-webhook   # no integrations yet\n")
    flat = "# lists as PyYAML writes them\nroute:\n  receiver: default-sink\n" + flat_routes + flat_receivers
    am.write_alertmanager_config(flat)
    assert am.reload_alertmanager() == 200
    assert apply(run_cli).code == 0
    text = am.alertmanager_config_file.read_text()
    assert text.startswith("# lists as PyYAML writes them\nroute:\n  receiver: default-sink\n  routes:\n  - ")
    assert flat_routes[len("  routes:\n"):] in text and flat_receivers in text
    assert without_obsgen(yaml.safe_load(text)) == {**yaml.safe_load(flat), "inhibit_rules": []}
    assert apply(run_cli).out.endswith("objects).\n")  # no changes


def test_a_hand_edit_inside_obsgens_subtree_is_shown_and_restored_one_elsewhere_is_left_alone(
        run_cli, am: Stack) -> None:
    assert apply(run_cli).code == 0
    applied = am.alertmanager_config_file.read_text()

    # someone adds a child route to obsgen's route, a field to one of obsgen's receivers, and the payments
    # team changes its own route; then reloads Alertmanager
    child_routes = max(re.finditer(r"^( *)routes:\n( *)- ", applied, re.MULTILINE), key=lambda m: len(m.group(1)))
    dash, at = child_routes.group(2), child_routes.start(2)  # obsgen's child routes, the deepest `routes:`
    hand_route = f"{dash}- matchers: ['step_id=\"hand-added\"']\n{dash}  receiver: default-sink\n"
    edited = applied[:at] + hand_route + applied[at:]
    receiver = re.search(rf"^( *)- name: {PREFIX}slack-info\n", edited, re.MULTILINE)
    field = f"{receiver.group(1)}  webhook_configs: [{{url: 'http://127.0.0.1:9/hand-added'}}]\n"
    edited = edited[:receiver.end()] + field + edited[receiver.end():]
    payments_edit = PAYMENTS_ROUTE + "      group_wait: 17s   # the payments team's own change\n"
    edited = edited.replace(PAYMENTS_ROUTE, payments_edit)
    assert edited.count("hand-added") == 2 and payments_edit in edited
    am.write_alertmanager_config(edited)
    assert am.reload_alertmanager() == 200

    shown = diff(run_cli, "--exit-code")
    assert shown.code == 1, shown.err
    assert titles(shown.out) == [f"~ alertmanager receiver {PREFIX}slack-info", f"~ alertmanager route {PREFIX[:-1]}"]
    removed = [line for line in shown.out.splitlines() if line.lstrip().startswith("-")]
    assert any('step_id="hand-added"' in line for line in removed), shown.out
    # a webhook URL carries its token: shown as a change, never by value (issue 18)
    assert any("url: <secret>" in line for line in removed), shown.out
    assert "http://127.0.0.1:9/hand-added" not in shown.out
    assert "payments" not in shown.out and "17s" not in shown.out

    restored = apply(run_cli)
    assert restored.code == 0, restored.err
    text = am.alertmanager_config_file.read_text()
    assert "hand-added" not in text
    assert without_obsgen(yaml.safe_load(text)) == without_obsgen(yaml.safe_load(edited))
    assert payments_edit in text  # the payments team's part, byte for byte
    assert_rest_kept(text, edited)
    assert yaml.safe_load(text)["route"]["routes"][0] == yaml.safe_load(applied)["route"]["routes"][0]
    assert "hand-added" not in am.alertmanager_status()["config"]["original"]
    assert diff(run_cli, "--exit-code").code == 0


def test_a_file_alertmanager_has_not_loaded_is_shown_and_applied_with_a_reload(run_cli, am: Stack) -> None:
    assert apply(run_cli).code == 0
    applied = am.alertmanager_config_file.read_bytes()
    am.write_alertmanager_config(SHARED)
    assert am.reload_alertmanager() == 200  # Alertmanager runs a config without obsgen's parts...
    am.alertmanager_config_file.write_bytes(applied)  # ...while the file has them (a reload that failed)

    shown = diff(run_cli, "--exit-code")
    assert shown.code == 1
    assert titles(shown.out) == [f"~ alertmanager route {PREFIX[:-1]}"]
    assert "not running what" in shown.err and str(am.alertmanager_config_file) in shown.err
    count = reloads(am)
    assert apply(run_cli).code == 0
    assert reloads(am) == count + 1
    assert selects_obsgen(am.alertmanager_loaded_config()["route"]["routes"][0]["matchers"])
    assert am.alertmanager_config_file.read_bytes() == applied
    assert diff(run_cli, "--exit-code").code == 0


@pytest.mark.parametrize("owns", ["subtree", "whole"])
def test_durations_spelled_another_way_cause_no_change_on_the_second_apply(run_cli, am: Stack, tmp_path: Path,
                                                                          owns: str) -> None:
    spec = str(spec_with(tmp_path, owns=owns, timing={"group_interval": "90m", "repeat_interval": "7d"}))
    first = apply(run_cli, "--spec", spec)
    assert first.code == 0, first.err
    running = am.alertmanager_status()["config"]["original"]
    assert "group_interval: 1h30m" in running and "repeat_interval: 1w" in running  # how Alertmanager spells them
    if owns == "subtree":
        route = config(am)["route"]["routes"][0]
        assert (route["group_interval"], route["repeat_interval"]) == ("90m", "7d")  # the spec's spelling, in the file

    before = untouched(am)
    again = apply(run_cli, "--spec", spec)
    assert again.code == 0 and "No changes" in again.out, again.out
    assert untouched(am) == before
    assert diff(run_cli, "--spec", spec, "--exit-code").code == 0


def test_the_spec_can_put_obsgens_route_last_and_let_alerts_continue(run_cli, am: Stack, tmp_path: Path) -> None:
    spec = str(spec_with(tmp_path, route={"position": "last", "continue": True}))
    assert apply(run_cli, "--spec", spec).code == 0
    text = am.alertmanager_config_file.read_text()
    assert_rest_kept(text)
    routes = yaml.safe_load(text)["route"]["routes"]
    assert [r["receiver"] for r in routes[:-1]] == ["payments-webhook", "search-null"]
    assert selects_obsgen(routes[-1]["matchers"]) and routes[-1]["continue"] is True
    live = am.alertmanager_config_file
    assert receivers_for(live, KERNEL) == f"{PREFIX}pagerduty-oncall"
    # the search team's route comes first now and lets alerts go on, so obsgen's route still gets them
    assert receivers_for(live, {**KERNEL, "team": "search"}) == f"search-null,{PREFIX}pagerduty-oncall"
    assert apply(run_cli, "--spec", spec).out.endswith("objects).\n")  # no changes
    assert diff(run_cli, "--spec", spec, "--exit-code").code == 0

    # back to the default (first, no continue): the route moves, nothing else changes
    moved = diff(run_cli, "--exit-code")
    assert (moved.code, titles(moved.out)) == (1, [f"~ alertmanager route {PREFIX[:-1]}"])
    assert apply(run_cli).code == 0
    routes = config(am)["route"]["routes"]
    assert selects_obsgen(routes[0]["matchers"]) and not routes[0].get("continue", False)
    assert [r["receiver"] for r in routes[1:]] == ["payments-webhook", "search-null"]


@pytest.mark.parametrize("start", ["missing", "empty"])
def test_a_missing_or_empty_config_file_gets_a_minimal_root_around_obsgens_subtree(run_cli, am: Stack,
                                                                                   start: str) -> None:
    if start == "missing":
        am.alertmanager_config_file.unlink()
    else:
        am.alertmanager_config_file.write_text("")
    result = apply(run_cli)
    assert result.code == 0, result.err
    assert titles(result.out) == SUBTREE_TITLES
    written = config(am)
    assert [selects_obsgen(r["matchers"]) for r in written["route"]["routes"]] == [True]
    names = [r["name"] for r in written["receivers"]]
    assert sorted(names) == sorted(f"{PREFIX}{channel}" for channel in CHANNELS)
    assert written["route"]["receiver"] in names  # a valid root: its receiver exists
    check = run_tool(require_tool("amtool"), "check-config", str(am.alertmanager_config_file))
    assert check.returncode == 0, check.stdout + check.stderr
    running = am.alertmanager_loaded_config()  # and Alertmanager runs it
    assert [r["receiver"] for r in running["route"]["routes"]] == [f"{PREFIX}slack-info"]
    assert receivers_for(am.alertmanager_config_file, KERNEL) == f"{PREFIX}pagerduty-oncall"
    assert diff(run_cli, "--exit-code").code == 0


# --- refusals: exit 2, one line, nothing written ---------------------------------------------------

def test_two_routes_that_select_obsgens_service_and_env_stop_diff_and_apply(run_cli, am: Stack) -> None:
    # two routes exactly as obsgen writes its own (its two matchers, in any spelling, to an obsgen receiver);
    # a route that merely overlaps is someone else's (issue 18, tests/test_hostile_alertmanager_claims.py)
    twice = SHARED.replace(SEARCH_ROUTE, SEARCH_ROUTE + "    - matchers: ['env=\"dev\"', 'service=\"selftest\"']\n"
                                                        "      receiver: selftest/dev/slack-info\n"
                                                        "    - matchers: ['service=selftest', 'env=dev']\n"
                                                        "      receiver: selftest/dev/slack-tickets\n")
    twice = twice.replace("  - name: search-null   # no integrations\n", "  - name: search-null   # no integrations\n"
                          "  - name: selftest/dev/slack-info\n  - name: selftest/dev/slack-tickets\n")
    am.write_alertmanager_config(twice)
    assert am.reload_alertmanager() == 200  # Alertmanager itself is fine with it
    before = untouched(am)
    for result in (diff(run_cli), apply(run_cli)):
        assert result.code == 2
        line = one_error_line(result.err)
        assert str(am.alertmanager_config_file) in line
        assert "2 routes" in line and 'service="selftest"' in line and 'env="dev"' in line
    assert untouched(am) == before


@pytest.mark.parametrize("broken", ["undefined-receiver", "broken-template"])
def test_a_merged_config_amtool_rejects_is_not_written(run_cli, am: Stack, broken: str) -> None:
    if broken == "undefined-receiver":  # another team's route names a receiver that does not exist
        am.write_alertmanager_config(SHARED.replace("receiver: search-null\n", "receiver: search-gone\n", 1))
        reason = "search-gone"
    else:  # the organisation's template file no longer parses
        (am.tmp / "templates" / "payments.tmpl").write_text('{{ define "payments.title" }}[{{ .Status }\n')
        reason = "payments.tmpl"
    assert yaml.safe_load(am.alertmanager_config_file.read_text())  # still YAML: only validation finds it
    before = untouched(am)
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "amtool check-config rejects the merged config" in line and "nothing was written" in line
    assert reason in line
    assert untouched(am) == before
    assert "selftest" not in am.alertmanager_status()["config"]["original"]
    assert not list(am.alertmanager_config_file.parent.glob(".*obsgen*"))  # no check file left behind


def test_a_file_changed_after_obsgen_read_it_is_not_overwritten(run_cli, am: Stack, monkeypatch) -> None:
    from obsgen.deploy.backends.alertmanager import AlertmanagerBackend

    real_read = AlertmanagerBackend.read
    theirs = SHARED.replace(SEARCH_ROUTE, SEARCH_ROUTE + "    - matchers: ['team=\"billing\"']\n"
                                                         "      receiver: default-sink\n")

    def read_then_someone_writes(self, desired):
        objs = real_read(self, desired)
        am.alertmanager_config_file.write_text(theirs)  # another writer, between obsgen's read and its write
        return objs

    monkeypatch.setattr(AlertmanagerBackend, "read", read_then_someone_writes)
    count = reloads(am)
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "changed since" in line and str(am.alertmanager_config_file) in line
    assert am.alertmanager_config_file.read_text() == theirs
    assert reloads(am) == count
