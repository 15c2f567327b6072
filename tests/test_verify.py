"""`obsgen verify`: the generated rule and routing tests pass, and catch a hand edit naming the case."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import GENERATED, REFERENCE_SPEC, require_tool

ENVS = ("dev", "staging", "prod")


@pytest.fixture
def out(tmp_path: Path) -> Path:
    require_tool("promtool")
    require_tool("amtool")
    copy = tmp_path / "generated"
    shutil.copytree(GENERATED, copy)
    return copy


@pytest.fixture
def tree(out: Path) -> Path:
    """The reference tree without its rule tests: verify runs the routing and inhibition cases only (fast)."""
    for rules in out.glob("*/tests/rules"):
        shutil.rmtree(rules)
    return out


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_verify_passes_for_every_environment_of_the_reference_spec(run_cli, out: Path) -> None:
    result = run_cli("verify", "--out", str(out))
    assert result.code == 0, result.out
    lines = result.out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == list(ENVS)  # the spec's order
    passed = sum(int(word) for line in lines[:3] for word, nxt in zip(line.split(), line.split()[1:])
                 if nxt.startswith("passed"))
    assert lines[-1] == f"{passed} passed, 0 failed"
    assert "FAIL" not in result.out


def test_every_generated_alert_has_a_routing_case_and_every_lesser_tier_an_inhibition_case() -> None:
    for env in ENVS:
        cases = yaml.safe_load((GENERATED / env / "tests/routing.yaml").read_text())["tests"]
        routed = {c["labels"]["alertname"] for c in cases if "receivers" in c}
        alerts = {r["alert"] for f in (GENERATED / env / "prometheus").glob("*.yaml")
                  for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"] if "alert" in r}
        assert alerts <= routed
        silenced = {c["labels"]["tier"] for c in cases if c.get("inhibited") is True}
        assert silenced == {"governance", "optional"}  # no SLO of the reference spec pages: no ticket under a page


def test_prod_pages_governance_and_slack_gets_it_too_dev_does_not_page(run_cli) -> None:
    def receivers(env: str, alertname: str) -> list[str]:
        cases = yaml.safe_load((GENERATED / env / "tests/routing.yaml").read_text())["tests"]
        return next(c["receivers"] for c in cases if "receivers" in c and c["labels"]["alertname"] == alertname)

    assert receivers("dev", "SelftestKernelStepFailed") == ["selftest/dev/pagerduty-oncall"]
    assert receivers("dev", "SelftestGovernanceFailuresAboveTolerance") == ["selftest/dev/slack-tickets"]
    assert receivers("prod", "SelftestGovernanceFailuresAboveTolerance") == ["selftest/prod/pagerduty-oncall",
                                                                             "selftest/prod/slack-tickets"]


def test_a_route_edited_by_hand_fails_verify_naming_the_case(run_cli, tree: Path) -> None:
    edit(tree / "dev/alertmanager/alertmanager.yaml", '- tier="governance"\n      receiver: selftest/dev/slack-tickets',
         '- tier="governance"\n      receiver: selftest/dev/slack-info')
    result = run_cli("verify", "--out", str(tree), "--env", "dev")
    assert result.code == 1
    assert ("FAIL  dev routing: [standalone] governance SelftestGovernanceFailuresAboveTolerance routes to "
            "selftest/dev/slack-tickets\n"
            "      expected selftest/dev/slack-tickets, amtool routes it to selftest/dev/slack-info\n") in result.out
    assert "[shared]" not in "".join(line for line in result.out.splitlines() if line.startswith("FAIL"))
    assert result.out.splitlines()[-1].endswith(" passed, 3 failed")  # step, slow-runs and not-reporting alerts


def test_a_weakened_inhibit_rule_fails_verify(run_cli, tree: Path) -> None:
    edit(tree / "prod/alertmanager/alertmanager.yaml", 'tier=~"governance|optional"', 'tier=~"optional"')
    result = run_cli("verify", "--out", str(tree), "--env", "prod")
    assert result.code == 1
    assert ("FAIL  prod inhibition: [standalone] governance SelftestGovernanceFailuresAboveTolerance is silenced "
            "while SelftestKernelStepFailed fires in prod\n"
            "      expected inhibited, the inhibit rules say not inhibited\n") in result.out


# --- the shared config: obsgen's subtree inside other teams' config -------------------------------------

def _cases(env: str) -> list[dict]:
    return yaml.safe_load((GENERATED / env / "tests/routing.yaml").read_text())["tests"]


def test_routing_tests_name_both_configs_and_the_subtree_verify_places_into_the_shared_one() -> None:
    document = yaml.safe_load((GENERATED / "dev/tests/routing.yaml").read_text())
    assert document["configs"] == {"standalone": "../alertmanager/alertmanager.yaml",
                                   "shared": "shared-alertmanager.yaml"}
    assert document["subtree"] == {"file": "../alertmanager/subtree.yaml", "into": "shared",
                                   "owner": {"service": "selftest", "env": "dev", "env_label": "env"}}
    assert (GENERATED / "dev/tests/shared-alertmanager.yaml").is_file()


@pytest.mark.parametrize("env", ENVS)
def test_the_shared_cases_cover_the_root_other_teams_and_another_environment(env: str) -> None:
    cases = _cases(env)
    roots = {c["config"]: c["receivers"] for c in cases if c.get("config") and "no route matches" in c["name"]}
    # standalone: obsgen's minimal root, whose receiver is the least severe tier's channel (optional: slack-info)
    assert roots == {"standalone": [f"selftest/{env}/slack-info"], "shared": ["platform-default"]}
    foreign = {c["labels"]["service"]: c["receivers"] for c in cases
               if c.get("config") == "shared" and c["labels"].get("service") not in (None, "selftest")}
    assert foreign == {"billing": ["billing-oncall"], "search": ["search-chat"]}
    [elsewhere] = [c for c in cases if c.get("config") == "shared" and c["labels"].get("env") == f"not-{env}"]
    assert elsewhere["labels"]["service"] == "selftest" and elsewhere["receivers"] == ["platform-default"]
    unmuted = [c for c in cases if "inhibited" in c and c["labels"]["service"] != "selftest"]
    assert unmuted and all(c["inhibited"] is False and "config" not in c for c in unmuted)
    assert all(f["service"] == "selftest" and f["env"] == env for c in unmuted for f in c["firing"])


def test_verify_runs_every_case_on_both_configs_and_names_the_config(run_cli, tree: Path) -> None:
    result = run_cli("verify", "--out", str(tree), "--env", "dev", "--verbose")
    assert result.code == 0, result.out
    lines = result.out.splitlines()
    for case in _cases("dev"):
        suite = "routing" if "receivers" in case else "inhibition"
        for config in [case["config"]] if "config" in case else ["standalone", "shared"]:
            assert f"ok    dev {suite}: [{config}] {case['name']}" in lines, (config, case["name"])
    assert "ok    dev routing: [shared] obsgen's part of the config is ../alertmanager/subtree.yaml" in lines


def test_another_teams_route_edited_by_hand_in_the_shared_config_fails_verify(run_cli, tree: Path) -> None:
    edit(tree / "dev/tests/shared-alertmanager.yaml", "receiver: billing-oncall", "receiver: search-chat")
    result = run_cli("verify", "--out", str(tree), "--env", "dev")
    assert result.code == 1
    assert ("FAIL  dev routing: [shared] another team's alert (service=billing, otherwise like "
            "SelftestKernelStepFailed) reaches its own receiver billing-oncall\n"
            "      expected billing-oncall, amtool routes it to search-chat\n") in result.out
    assert result.out.splitlines()[-1].endswith(" passed, 1 failed")


def test_a_shared_root_that_catches_obsgens_other_environment_fails_verify(run_cli, tree: Path) -> None:
    """A hand-added route of the shared config that takes every alert of the service (after obsgen's)."""
    shared = tree / "dev/tests/shared-alertmanager.yaml"
    config = yaml.safe_load(shared.read_text())
    config["route"]["routes"].append({"matchers": ['service="selftest"'], "receiver": "search-chat"})
    shared.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_cli("verify", "--out", str(tree), "--env", "dev")
    assert result.code == 1
    assert ("FAIL  dev routing: [shared] SelftestKernelStepFailed of another environment (env=not-dev) reaches "
            "none of obsgen's receivers but the shared root's\n"
            "      expected platform-default, amtool routes it to search-chat\n") in result.out


def test_the_subtree_edited_by_hand_fails_the_shared_cases(run_cli, tree: Path) -> None:
    edit(tree / "dev/alertmanager/subtree.yaml", '- tier="governance"\n    receiver: selftest/dev/slack-tickets',
         '- tier="governance"\n    receiver: selftest/dev/slack-info')
    result = run_cli("verify", "--out", str(tree), "--env", "dev")
    assert result.code == 1
    failed = [line for line in result.out.splitlines() if line.startswith("FAIL")]
    assert ("FAIL  dev routing: [shared] governance SelftestGovernanceFailuresAboveTolerance routes to "
            "selftest/dev/slack-tickets\n"
            "      expected selftest/dev/slack-tickets, amtool routes it to selftest/dev/slack-info\n") in result.out
    assert ("FAIL  dev routing: [shared] obsgen's part of the config is ../alertmanager/subtree.yaml\n"
            "      shared-alertmanager.yaml has other route of obsgen's than ../alertmanager/subtree.yaml; the "
            "cases ran with the subtree's\n") in result.out
    assert not [line for line in failed if "[standalone]" in line]  # the standalone config was not edited
    assert len(failed) == 4  # the three governance alerts, and the copy in the shared config


def test_obsgens_part_of_the_shared_config_edited_by_hand_is_reported(run_cli, tree: Path) -> None:
    edit(tree / "dev/tests/shared-alertmanager.yaml", '- tier="governance"\n      receiver: selftest/dev/slack-tickets',
         '- tier="governance"\n      receiver: selftest/dev/slack-info')
    result = run_cli("verify", "--out", str(tree), "--env", "dev")
    assert result.code == 1
    failed = [line for line in result.out.splitlines() if line.startswith("FAIL")]
    assert failed == ["FAIL  dev routing: [shared] obsgen's part of the config is ../alertmanager/subtree.yaml"]


def test_a_subtree_placed_last_with_continue_verifies_too(run_cli, tmp_path: Path) -> None:
    require_tool("amtool")
    require_tool("promtool")
    spec = yaml.safe_load(REFERENCE_SPEC.read_text())
    dev = next(e for e in spec["environments"] if e["name"] == "dev")
    dev["backends"]["alertmanager"]["route"] = {"position": "last", "continue": True}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = tmp_path / "generated"
    assert run_cli("build", "--spec", str(path), "--out", str(out), "--env", "dev").code == 0
    shutil.rmtree(out / "dev/tests/rules")  # the rules do not depend on where the route hangs
    routes = yaml.safe_load((out / "dev/tests/shared-alertmanager.yaml").read_text())["route"]["routes"]
    assert [r["matchers"][0] for r in routes] == ['service="billing"', 'service="search"', 'service="selftest"']
    assert routes[-1]["continue"] is True
    result = run_cli("verify", "--out", str(out), "--env", "dev")
    assert result.code == 0, result.out
    assert result.out.splitlines()[-1].endswith(" passed, 0 failed")


def test_missing_tools_give_a_clear_error_and_exit_2(run_cli, out: Path, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run_cli("verify", "--out", str(out))
    assert result.code == 2
    assert result.err == ("obsgen: error: verify needs promtool and amtool on PATH to run the generated tests; "
                          "install them (Debian/Ubuntu: apt-get install prometheus prometheus-alertmanager)\n")


def test_verify_without_a_build_says_so(run_cli, tmp_path: Path) -> None:
    result = run_cli("verify", "--out", str(tmp_path / "nothing"))
    assert (result.code, result.err) == (2, f"obsgen: error: no generated environments in {tmp_path}/nothing/: "
                                            f"run `obsgen build` first\n")


def test_a_threshold_edited_by_hand_in_a_rule_file_fails_verify_naming_the_tests(run_cli, out: Path) -> None:
    edit(out / "dev/prometheus/selftest-steps.rules.yaml", "selftest:last_run_failing_steps:count{env=\"dev\",tier=\"governance\"} > 3",
         "selftest:last_run_failing_steps:count{env=\"dev\",tier=\"governance\"} > 4")
    result = run_cli("verify", "--out", str(out), "--env", "dev")
    assert result.code == 1
    failed = [line for line in result.out.splitlines() if line.startswith("FAIL")]
    assert failed and all(line.startswith("FAIL  dev rules: selftest-steps.test.yaml: dev: GOVERNANCE above tolerance")
                          for line in failed), result.out
    assert result.out.splitlines()[-1].endswith(f" passed, {len(failed)} failed")


def test_parallel_rule_tests_report_exactly_what_one_at_a_time_reports(run_cli, out: Path) -> None:
    """promtool runs one test file per CPU by default; outcomes stay in environment and file order, so the
    output is that of `--jobs 1`, a failing file included."""
    edit(out / "dev/prometheus/selftest-steps.rules.yaml", "> 3", "> 4")
    one = run_cli("verify", "--out", str(out), "--env", "dev", "-v", "--jobs", "1")
    many = run_cli("verify", "--out", str(out), "--env", "dev", "-v", "--jobs", "4")
    assert one.code == many.code == 1
    assert many.out == one.out
    assert "FAIL  dev rules: selftest-steps.test.yaml: " in one.out
