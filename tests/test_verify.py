"""`obsgen verify`: the generated rule and routing tests pass, and catch a hand edit naming the case."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import GENERATED, require_tool

ENVS = ("dev", "staging", "prod")


@pytest.fixture
def out(tmp_path: Path) -> Path:
    require_tool("promtool")
    require_tool("amtool")
    copy = tmp_path / "generated"
    shutil.copytree(GENERATED, copy)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_verify_passes_for_every_environment_of_the_reference_spec(run_cli, out: Path) -> None:
    result = run_cli("verify", "--out", str(out))
    assert result.code == 0, result.out
    lines = result.out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == sorted(ENVS)
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
        assert silenced == {"governance", "optional", "all"}  # "all": an SLO ticket under its page


def test_prod_pages_governance_and_slack_gets_it_too_dev_does_not_page(run_cli) -> None:
    def receivers(env: str, alertname: str) -> list[str]:
        cases = yaml.safe_load((GENERATED / env / "tests/routing.yaml").read_text())["tests"]
        return next(c["receivers"] for c in cases if "receivers" in c and c["labels"]["alertname"] == alertname)

    assert receivers("dev", "SelftestKernelStepFailed") == ["pagerduty-oncall"]
    assert receivers("dev", "SelftestGovernanceFailuresAboveTolerance") == ["slack-tickets"]
    assert receivers("prod", "SelftestGovernanceFailuresAboveTolerance") == ["pagerduty-oncall", "slack-tickets"]


def test_a_route_edited_by_hand_fails_verify_naming_the_case(run_cli, out: Path) -> None:
    edit(out / "dev/alertmanager/alertmanager.yaml", '- tier="governance"\n    receiver: slack-tickets',
         '- tier="governance"\n    receiver: slack-info')
    result = run_cli("verify", "--out", str(out), "--env", "dev")
    assert result.code == 1
    assert ("FAIL  dev routing: governance SelftestGovernanceFailuresAboveTolerance routes to slack-tickets\n"
            "      expected slack-tickets, amtool routes it to slack-info\n") in result.out
    assert result.out.splitlines()[-1].endswith(" passed, 3 failed")  # step, slow-runs and not-reporting alerts


def test_a_weakened_inhibit_rule_fails_verify(run_cli, out: Path) -> None:
    edit(out / "prod/alertmanager/alertmanager.yaml", 'tier=~"governance|optional"', 'tier=~"optional"')
    result = run_cli("verify", "--out", str(out), "--env", "prod")
    assert result.code == 1
    assert ("FAIL  prod inhibition: governance SelftestGovernanceFailuresAboveTolerance is silenced while "
            "SelftestKernelStepFailed fires in prod\n"
            "      expected inhibited, the inhibit rules say not inhibited\n") in result.out


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
    edit(out / "dev/prometheus/selftest.rules.yaml", "(selftest_step_failed{env=\"dev\",tier=\"governance\"}) > 0) > 3",
         "(selftest_step_failed{env=\"dev\",tier=\"governance\"}) > 0) > 4")
    result = run_cli("verify", "--out", str(out), "--env", "dev")
    assert result.code == 1
    failed = [line for line in result.out.splitlines() if line.startswith("FAIL")]
    assert failed and all(line.startswith("FAIL  dev rules: selftest.test.yaml: dev: GOVERNANCE above tolerance")
                          for line in failed), result.out
    assert result.out.splitlines()[-1].endswith(f" passed, {len(failed)} failed")
