"""apply against real Prometheus and Alertmanager (Debian packages, loopback) and the Grafana double."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT
from doubles.grafana import GrafanaDouble
from stack import Stack

TOKEN = "glsa_live_test_token_0123456789"


@pytest.fixture(scope="module")
def stack():
    with Stack(components=("alertmanager", "prometheus")) as s:  # the context manager starts it
        s.initial_alertmanager_config = s.alertmanager_config_file.read_text()
        yield s


@pytest.fixture
def env(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for rules in stack.rules_dir.glob("*.yaml"):
        rules.unlink()
    stack.reload_prometheus()
    stack.write_alertmanager_config(stack.initial_alertmanager_config)
    assert stack.reload_alertmanager() == 200
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    with GrafanaDouble(token=TOKEN) as grafana:
        monkeypatch.setenv("OBSGEN_GRAFANA_URL", grafana.url)
        monkeypatch.setenv("OBSGEN_PROMETHEUS_URL", stack.prometheus_url)
        monkeypatch.setenv("OBSGEN_PROMETHEUS_RULES_DIR", str(stack.rules_dir))
        monkeypatch.setenv("OBSGEN_ALERTMANAGER_URL", stack.alertmanager_url)
        monkeypatch.setenv("OBSGEN_ALERTMANAGER_CONFIG_FILE", str(stack.alertmanager_config_file))
        yield grafana


def test_apply_from_empty_then_read_back_then_a_second_apply_is_a_no_op(run_cli, stack: Stack, env) -> None:
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 0, result.err
    assert "+ prometheus rule-group selftest.rules.yaml/selftest-alerts" in result.out
    assert "~ alertmanager alertmanager-config alertmanager.yaml" in result.out
    groups = {g["name"] for g in stack.rule_groups()}
    assert {"selftest-alerts", "selftest-recordings", "slo-pass-rate-alerts", "slo-run-duration-sli"} <= groups
    assert stack.alertmanager_loaded_config()["route"]["receiver"] == "slack-info"
    diff = run_cli("diff", "--env", "dev", "--exit-code")
    assert (diff.code, diff.out.splitlines()[-1]) == (0, "dev: No changes: the live state matches the spec "
                                                         f"({diff.out.split('(')[-1].split()[0]} objects).")
    env.reset_requests()
    again = run_cli("apply", "--env", "dev", "--yes")
    assert again.code == 0 and "No changes" in again.out
    assert [r for r in env.requests if r[0] != "GET"] == []


def test_changing_the_spec_changes_only_that_group(run_cli, stack: Stack, env, tmp_path: Path) -> None:
    assert run_cli("apply", "--env", "dev", "--yes").code == 0
    spec = tmp_path / "selftest.yaml"
    spec.write_text((ROOT / "specs/selftest.yaml").read_text().replace("threshold_seconds: 60", "threshold_seconds: 90"))
    result = run_cli("diff", "--env", "dev", "--spec", str(spec))
    titles = [line for line in result.out.splitlines() if line[:2] in ("+ ", "~ ", "- ")]
    assert titles == ["~ prometheus rule-group selftest.rules.yaml/selftest-alerts"]
    changed = [line.strip() for line in result.out.splitlines() if line.startswith(("    -", "    +"))]
    assert changed == ["-    description: p95 run duration over 1h is above 60 s.",
                       "+    description: p95 run duration over 1h is above 90 s.",
                       "-      60", "+      90"], result.out
    assert run_cli("apply", "--env", "dev", "--yes", "--spec", str(spec)).code == 0
    assert run_cli("diff", "--env", "dev", "--exit-code", "--spec", str(spec)).code == 0


def test_a_config_alertmanager_refuses_rolls_every_backend_back(run_cli, stack: Stack, env, monkeypatch) -> None:
    from obsgen.deploy.backends.alertmanager import AlertmanagerBackend

    before_rules = {p.name: p.read_bytes() for p in stack.rules_dir.glob("*.yaml")}
    before_am = stack.alertmanager_config_file.read_bytes()
    real_desired = AlertmanagerBackend.desired

    def refused(self, artifacts):  # a config the server rejects: the root receiver does not exist
        objs = real_desired(self, artifacts)
        bad = objs[0].payload.replace(b"  receiver: slack-info\n  repeat_interval", b"  receiver: nobody\n  repeat_interval")
        assert bad != objs[0].payload
        return [type(objs[0])(o.backend, o.kind, o.key, o.body, payload=bad) for o in objs]

    monkeypatch.setattr(AlertmanagerBackend, "desired", refused)
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    assert "Alertmanager (dev) refused the new config" in result.err
    assert "restored" in result.err and "grafana" in result.err and "prometheus" in result.err
    assert {p.name: p.read_bytes() for p in stack.rules_dir.glob("*.yaml")} == before_rules
    assert [g["name"] for g in stack.rule_groups()] == []
    assert stack.alertmanager_config_file.read_bytes() == before_am
    assert stack.alertmanager_loaded_config()["route"]["receiver"] != "nobody"
    assert env.dashboard("selftest-dev-selftest-overview") is None
    history = run_cli("history", "--env", "dev")
    assert "rolled-back" in history.out and "refused the new config" in history.out
