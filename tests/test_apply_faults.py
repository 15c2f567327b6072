"""Any failure after the first write rolls every backend back, says so in one line and exits 2.

Real Prometheus and Alertmanager on loopback and the Grafana double. Each case starts from an empty
Grafana, an empty rules directory and the stack's own Alertmanager config, makes one thing go wrong,
and checks: exit 2, one `obsgen: error:` line and no traceback, every backend exactly as before, and
a ledger entry that says what happened. The ledger's other results (a dry run, a refusal, a declined
confirmation, a credentials failure) are covered here too.
"""
from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from doubles.grafana import GrafanaDouble
from stack import Stack

TOKEN = "glsa_fault_test_token_0123456789"
DASHBOARD = "selftest-dev-selftest-overview"
FOLDER = "obsgen-selftest-dev"


@pytest.fixture(scope="module")
def stack():
    with Stack(components=("alertmanager", "prometheus"), discover=False) as s:
        s.initial_alertmanager_config = s.alertmanager_config_file.read_text()
        yield s


@pytest.fixture
def grafana(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for rules in stack.rules_dir.glob("*"):
        rules.unlink()
    stack.reload_prometheus()
    stack.write_alertmanager_config(stack.initial_alertmanager_config)
    assert stack.reload_alertmanager() == 200
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)
    with GrafanaDouble(token=TOKEN) as double:
        for name, value in (("GRAFANA_URL", double.url), ("PROMETHEUS_URL", stack.prometheus_url),
                            ("PROMETHEUS_RULES_DIR", str(stack.rules_dir)),
                            ("ALERTMANAGER_URL", stack.alertmanager_url),
                            ("ALERTMANAGER_CONFIG_FILE", str(stack.alertmanager_config_file))):
            monkeypatch.setenv(f"OBSGEN_{name}", value)
        yield double


def snapshot(stack: Stack, grafana: GrafanaDouble) -> dict:
    """Everything obsgen could have changed, as the backends hold it."""
    return {
        "grafana": (grafana.dashboard(DASHBOARD), folder_exists(grafana)),
        "rule files": {p.name: p.read_bytes() for p in stack.rules_dir.glob("*")},
        "rule groups": sorted(g["name"] for g in stack.rule_groups()),
        "alertmanager file": stack.alertmanager_config_file.read_text(),
        "alertmanager loaded": stack.alertmanager_loaded_config(),
    }


def folder_exists(grafana: GrafanaDouble) -> bool:
    import requests

    answer = requests.get(f"{grafana.url}/api/folders/{FOLDER}", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=5)
    return answer.status_code == 200


def ledger(tmp_path: Path) -> list[tuple[str, str, list[str], list[str], str]]:
    """(mode, result, planned titles, applied titles, error) of every entry, oldest first."""
    with sqlite3.connect(tmp_path / "state/ledger.sqlite") as db:
        rows = db.execute("SELECT mode, result, planned, changes, error FROM applies ORDER BY id").fetchall()
    return [(m, r, json.loads(p), json.loads(c), e) for m, r, p, c, e in rows]


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("obsgen: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_an_exception_raised_in_the_last_backend_restores_the_two_before_it(run_cli, stack, grafana, tmp_path,
                                                                           monkeypatch) -> None:
    from obsgen.deploy.backends.alertmanager import AlertmanagerBackend

    before = snapshot(stack, grafana)

    def broken(self, changes, *, force=False):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(AlertmanagerBackend, "apply", broken)
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    line = one_error_line(result.err)
    assert "unexpected RuntimeError: disk on fire" in line
    assert "restored" in line and "grafana" in line and "prometheus" in line
    assert snapshot(stack, grafana) == before
    assert not folder_exists(grafana)
    (mode, outcome, planned, applied, error), = ledger(tmp_path)
    assert (mode, outcome) == ("apply", "rolled-back")
    assert f"+ grafana dashboard {DASHBOARD}" in applied  # what was applied, then restored
    assert not any(t.startswith(("+ alertmanager", "~ alertmanager")) for t in applied)
    assert "+ alertmanager route selftest/dev" in planned  # the plan had obsgen's subtree; it was never applied
    assert error == line.removeprefix("obsgen: error: ")


def test_a_grafana_answer_that_is_not_json_rolls_back_and_is_named(run_cli, stack, grafana, tmp_path) -> None:
    before = snapshot(stack, grafana)
    grafana.fail_next("POST", "/api/dashboards/db", 200, body="<html>502 from a proxy</html>")
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    line = one_error_line(result.err)
    assert "POST /api/dashboards/db" in line and "not JSON" in line
    assert snapshot(stack, grafana) == before
    assert not folder_exists(grafana)  # the folder this apply created is gone again
    assert [(m, r) for m, r, *_ in ledger(tmp_path)] == [("apply", "rolled-back")]


def test_a_save_answer_cut_short_counts_as_applied_and_is_rolled_back(run_cli, stack, grafana, tmp_path) -> None:
    before = snapshot(stack, grafana)
    grafana.cut_next("POST", "/api/dashboards/db")  # Grafana saves the dashboard, the answer is lost
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    line = one_error_line(result.err)
    assert "Grafana (dev)" in line and "restored grafana" in line
    assert grafana.dashboard(DASHBOARD) is None  # saved, then deleted by the rollback
    assert snapshot(stack, grafana) == before
    assert [(m, r) for m, r, *_ in ledger(tmp_path)] == [("apply", "rolled-back")]


def test_a_garbage_answer_while_reading_fails_before_any_change(run_cli, stack, grafana, tmp_path) -> None:
    grafana.fail_next("GET", "/api/search", 200, body=["not", "hits"])
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    one_error_line(result.err)
    assert [r for r in grafana.requests if r[0] != "GET"] == []
    (mode, outcome, planned, applied, error), = ledger(tmp_path)
    assert (mode, outcome, planned, applied) == ("apply", "failed", [], [])
    result = run_cli("diff", "--env", "dev", "--exit-code")
    assert result.code == 1  # diff still works once the answer is sane, and 1 means "changes"


def test_every_run_is_recorded_with_what_it_did(run_cli, stack, grafana, tmp_path, monkeypatch) -> None:
    assert run_cli("apply", "--env", "dev", "--dry-run").code == 0

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, no --yes
    refused = run_cli("apply", "--env", "dev")
    assert refused.code == 2
    assert one_error_line(refused.err) == ("obsgen: error: refusing to apply without confirmation: not a terminal; "
                                           "pass --yes")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    declined = run_cli("apply", "--env", "dev")
    assert declined.code == 3 and declined.out.endswith("Nothing applied.\n")  # declining is no success

    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", "glsa_wrong")
    bad_token = run_cli("apply", "--env", "dev", "--yes")
    assert bad_token.code == 2
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)

    done = run_cli("apply", "--env", "dev", "--yes")
    assert done.code == 0
    again = run_cli("apply", "--env", "dev", "--yes")
    assert again.code == 0

    entries = ledger(tmp_path)
    assert [(m, r) for m, r, *_ in entries] == [
        ("dry-run", "planned"), ("apply", "refused"), ("apply", "declined"), ("apply", "failed"),
        ("apply", "ok"), ("apply", "no-changes")]
    dry, refused_entry, declined_entry, failed, ok, noop = entries
    assert dry[2] and dry[3] == []  # a dry run plans and applies nothing
    assert declined_entry[3] == [] and declined_entry[2] == dry[2]
    assert "rejected the credentials (HTTP 401)" in failed[4] and TOKEN not in failed[4]
    assert sorted(ok[3]) == sorted(ok[2]) and ok[3]  # applied exactly what was planned (no deletes to skip)
    assert noop[2] == noop[3] == []
    history = run_cli("history", "--env", "dev")
    assert history.code == 0
    assert [line.split()[3] for line in history.out.splitlines() if not line.startswith(" ")] == [
        "no-changes", "ok", "failed", "declined", "refused", "planned"]


def test_a_held_lock_is_refused_and_recorded(run_cli, stack, grafana, tmp_path) -> None:
    from obsgen.deploy import state

    with state.env_lock("dev"):
        result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    assert one_error_line(result.err) == (f"obsgen: error: another obsgen apply to dev is running "
                                          f"(lock {tmp_path}/state/dev.lock)")
    assert [(m, r) for m, r, *_ in ledger(tmp_path)] == [("apply", "refused")]
    assert grafana.requests == []


@pytest.mark.parametrize("command", ["apply", "diff", "history"])
def test_an_environment_name_is_validated_before_it_becomes_a_path(run_cli, grafana, tmp_path, command) -> None:
    result = run_cli(command, "--env", "../escape")
    assert result.code == 2
    # refused as a name the spec does not define, before it is used in any path or request
    assert result.err == "obsgen: error: unknown environment '../escape' (the spec defines: dev, staging, prod)\n"
    assert not (tmp_path / "escape.lock").exists() and not list(tmp_path.glob("state/*.lock"))
    assert grafana.requests == []
