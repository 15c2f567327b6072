"""diff/apply for `mode: mimir` (the reference spec's prod) against the Mimir double.

The double (tests/doubles/mimir.py) follows the ruler and Alertmanager config API contract and
refuses `*_file` secrets as Mimir does, so obsgen must send secrets inline; no secret may show in
any output or in the ledger.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import REFERENCE_SPEC
from doubles.mimir import MimirDouble

TOKEN = "mimir_test_token_0123456789"
TENANT = "platform"
ROUTING_KEY = "pd-routing-key-SECRET-0123456789abcdef"
WEBHOOK = "https://hooks.slack.example/services/T000/B000/SECRET0123456789"
PREFIX = "obsgen/selftest-prod/"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pagerduty-routing-key").write_text(ROUTING_KEY + "\n")
    (secrets / "slack-webhook-url").write_text(WEBHOOK + "\n")
    path = tmp_path / "selftest.yaml"
    path.write_text(REFERENCE_SPEC.read_text().replace("/etc/alertmanager/secrets/prod/", f"{secrets}/"))
    return path


@pytest.fixture
def mimir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", TOKEN)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(tmp_path / "secrets"))  # as the operator would, outside the spec
    with MimirDouble(token=TOKEN) as double:
        yield double


def obsgen(run_cli, mimir: MimirDouble, spec: Path, command: str, *args: str):
    return run_cli(command, "--env", "prod", "--spec", str(spec), "--only", "prometheus", "--only", "alertmanager",
                   "--prometheus-url", mimir.url, "--alertmanager-url", mimir.url, *args)


def test_apply_from_empty_creates_one_namespace_per_rule_file_then_nothing_differs(run_cli, mimir, spec) -> None:
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert result.code == 0, result.err
    # obsgen's part of the tenant's Alertmanager config: its route, one receiver per channel, its inhibit rules
    assert sorted(line for line in result.out.splitlines() if line.startswith("+ alertmanager ")) == [
        "+ alertmanager inhibit-rules selftest/prod", "+ alertmanager receiver selftest/prod/pagerduty-oncall",
        "+ alertmanager receiver selftest/prod/slack-info", "+ alertmanager receiver selftest/prod/slack-tickets",
        "+ alertmanager route selftest/prod"]
    assert sorted(mimir.groups(TENANT)) == [PREFIX + "selftest", PREFIX + "selftest-steps", PREFIX + "slo-pass-rate",
                                            PREFIX + "slo-run-duration"]
    assert [g["name"] for g in mimir.groups(TENANT)[PREFIX + "selftest"]] == ["selftest-alerts", "selftest-recordings"]
    assert all(tenant == TENANT for _, _, tenant in mimir.requests)
    config = mimir.alertmanager_config(TENANT)["alertmanager_config"]
    assert ROUTING_KEY in config and WEBHOOK in config and "_file" not in config  # Mimir needs them inline
    mimir.reset_requests()
    again = obsgen(run_cli, mimir, spec, "apply", "--yes")
    # 9 rule groups; the route, 3 receivers and the inhibit rules obsgen owns in the tenant's Alertmanager config
    assert (again.code, again.out) == (0, "prod: No changes: the live state matches the spec (14 objects).\n")
    assert mimir.writes == 0
    diff = obsgen(run_cli, mimir, spec, "diff", "--exit-code")
    assert diff.code == 0


def test_group_edited_in_mimir_shows_as_that_change_and_apply_restores_it(run_cli, mimir, spec) -> None:
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    group = next(g for g in mimir.groups(TENANT)[PREFIX + "selftest"] if g["name"] == "selftest-alerts")
    group["rules"][0]["labels"]["severity"] = "warning"
    mimir.seed_group(TENANT, PREFIX + "selftest", group)
    result = obsgen(run_cli, mimir, spec, "diff", "--exit-code")
    assert result.code == 1
    changed = [line.strip() for line in result.out.splitlines() if line.startswith(("~", "    -", "    +"))]
    assert changed == [f"~ prometheus rule-group {PREFIX}selftest/selftest-alerts",
                       "-    severity: warning", "+    severity: critical"]
    mimir.reset_requests()
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    assert [(m, p) for m, p, _ in mimir.requests if m != "GET"] == [
        ("POST", "/prometheus/config/v1/rules/obsgen%2Fselftest-prod%2Fselftest")]
    assert obsgen(run_cli, mimir, spec, "diff", "--exit-code").code == 0


def test_namespaces_obsgen_does_not_own_are_never_touched_and_prune_removes_owned_leftovers(
        run_cli, mimir, spec) -> None:
    theirs = {"name": "their-group", "rules": [{"record": "their:rule", "expr": "up"}]}
    mimir.seed_group(TENANT, "team-a/rules", theirs)
    mimir.seed_group(TENANT, PREFIX + "old-file", {"name": "old", "rules": [{"record": "old:rule", "expr": "up"}]})
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert "1 owned object left the spec; not deleted without --prune" in result.out
    assert PREFIX + "old-file" in mimir.groups(TENANT)
    pruned = obsgen(run_cli, mimir, spec, "apply", "--yes", "--prune")
    assert f"- prometheus rule-group {PREFIX}old-file/old" in pruned.out
    assert PREFIX + "old-file" not in mimir.groups(TENANT)
    assert mimir.groups(TENANT)["team-a/rules"][0]["name"] == "their-group"
    assert "team-a" not in pruned.out


def test_config_refused_by_mimir_restores_the_rules_and_the_ledger_records_it(run_cli, mimir, spec) -> None:
    mimir.fail_next("POST", "/api/v1/alerts", 400, "error validating Alertmanager config: something")
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert result.code == 2
    assert result.err == ("obsgen: error: Mimir Alertmanager (prod) refused the new config: error validating "
                          "Alertmanager config: something; the previous config is still in place; restored "
                          "prometheus to the state before this apply\n")
    assert mimir.groups(TENANT) == {}  # every group this apply created was deleted again
    assert mimir.alertmanager_config(TENANT) is None
    history = run_cli("history", "--env", "prod")
    assert "apply    rolled-back" in history.out and "refused the new config" in history.out


def test_a_live_secret_is_never_shown_even_when_it_differs(run_cli, mimir, spec, tmp_path: Path) -> None:
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    stored = mimir.alertmanager_config(TENANT)
    other_key = "someone-else-s-routing-key-SECRET-zz"
    mimir.seed_alertmanager(TENANT, stored["alertmanager_config"].replace(ROUTING_KEY, other_key))
    outputs = []
    for fmt in ("text", "json", "markdown"):
        result = obsgen(run_cli, mimir, spec, "diff", "--format", fmt)
        outputs += [result.out, result.err]
    assert "<inline secret that differs from" in outputs[0]
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    history = run_cli("history", "--env", "prod")
    outputs += [history.out, history.err]
    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite") as db:
        outputs += [repr(row) for row in db.execute("SELECT * FROM applies")]
    for secret in (ROUTING_KEY, WEBHOOK, other_key, TOKEN):
        assert not any(secret in text for text in outputs), secret


def test_a_wrong_token_is_one_line_naming_the_variable(run_cli, mimir, spec, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", "wrong")
    result = obsgen(run_cli, mimir, spec, "diff")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "HTTP 401" in result.err and "OBSGEN_PROD_MIMIR_TOKEN" in result.err


def test_a_missing_secret_file_is_a_clear_error(run_cli, mimir, spec, tmp_path: Path) -> None:
    (tmp_path / "secrets" / "pagerduty-routing-key").unlink()
    result = obsgen(run_cli, mimir, spec, "apply", "--yes")
    assert result.code == 2
    assert f"cannot read secret file {tmp_path}/secrets/pagerduty-routing-key" in result.err
    assert mimir.groups(TENANT) == {}


def test_a_group_write_failing_among_parallel_writes_restores_every_group(run_cli, mimir, spec) -> None:
    """Group writes run in parallel; one refused POST stops the apply and every group written (or
    possibly written) by it is put back: here, from empty, nothing is left."""
    assert obsgen(run_cli, mimir, spec, "apply", "--yes").code == 0
    before = mimir.groups(TENANT)
    mimir.seed_group(TENANT, PREFIX + "old-file", {"name": "old", "rules": [{"record": "old:rule", "expr": "up"}]})
    for namespace, groups in before.items():  # every owned group edited, so every one is rewritten
        for group in groups:
            mimir.seed_group(TENANT, namespace, {**group, "interval": "7m"})
    edited = mimir.groups(TENANT)
    mimir.fail_next("POST", "/prometheus/config/v1/rules/", 500, "internal error\n")
    result = obsgen(run_cli, mimir, spec, "apply", "--yes", "--prune")
    assert result.code == 2
    assert "HTTP 500" in result.err and "restored prometheus to the state before this apply" in result.err
    assert mimir.groups(TENANT) == edited
