"""obsgen diff/apply against the Grafana test double (written from the Grafana HTTP API contract)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from doubles.grafana import GrafanaDouble

TOKEN = "glsa_test_token_value_0123456789"
UID = "selftest-dev-selftest-overview"


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    with GrafanaDouble(token=TOKEN) as double:
        yield double


def obsgen(run_cli, grafana: GrafanaDouble, command: str, *args: str):
    return run_cli(command, "--env", "dev", "--only", "grafana", "--grafana-url", grafana.url, *args)


def writes(grafana: GrafanaDouble) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in grafana.requests if m not in ("GET", "HEAD")]


def test_apply_from_empty_creates_the_folder_and_dashboards_then_diff_says_no_changes(run_cli, grafana) -> None:
    result = obsgen(run_cli, grafana, "apply", "--yes")
    assert result.code == 0, result.err
    assert result.out.splitlines()[:2] == ["+ grafana folder obsgen-selftest-dev", f"+ grafana dashboard {UID}"]
    assert result.out.splitlines()[-1] == "dev: applied 2 changes."
    assert grafana.dashboard(UID)["version"] == 1
    assert grafana.dashboard_folder(UID) == "obsgen-selftest-dev"
    result = obsgen(run_cli, grafana, "diff", "--exit-code")
    assert (result.code, result.out) == (0, "dev: No changes: the live state matches the spec (2 objects).\n")


def test_a_second_apply_makes_no_write_and_keeps_the_dashboard_version(run_cli, grafana) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    grafana.reset_requests()
    result = obsgen(run_cli, grafana, "apply", "--yes")
    assert result.code == 0
    assert result.out == "dev: No changes: the live state matches the spec (2 objects).\n"
    assert writes(grafana) == []
    assert grafana.dashboard(UID)["version"] == 1


def test_a_panel_changed_in_the_ui_shows_as_exactly_that_change_and_apply_restores_it(run_cli, grafana) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0

    def retitle(dashboard: dict) -> None:
        dashboard["panels"][0]["title"] = "Status (edited in the UI)"

    grafana.edit_dashboard_in_ui(UID, retitle)
    result = obsgen(run_cli, grafana, "diff", "--exit-code")
    assert result.code == 1
    changed = [line.strip() for line in result.out.splitlines() if line.strip()[:1] in "+-~"]
    assert changed == [f"~ grafana dashboard {UID}", "-    title: Status (edited in the UI)", "+    title: Status"]
    grafana.reset_requests()
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    assert writes(grafana) == [("POST", "/api/dashboards/db")]
    assert grafana.dashboard(UID)["panels"][0]["title"] == "Status"
    assert obsgen(run_cli, grafana, "diff", "--exit-code").code == 0


def test_an_edit_between_read_and_write_is_a_conflict_unless_forced(run_cli, grafana, monkeypatch) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    grafana.edit_dashboard_in_ui(UID, lambda d: d["panels"][0].update(title="mine"))
    from obsgen.deploy.backends.grafana import GrafanaBackend

    real_read = GrafanaBackend.read

    def read_then_someone_edits(self, desired):
        live = real_read(self, desired)
        grafana.edit_dashboard_in_ui(UID, lambda d: d["panels"][0].update(title="theirs"))
        return live

    monkeypatch.setattr(GrafanaBackend, "read", read_then_someone_edits)
    result = obsgen(run_cli, grafana, "apply", "--yes")
    assert result.code == 2
    assert f"dashboard {UID} was changed in Grafana since obsgen read it" in result.err
    assert "--force" in result.err and "Traceback" not in result.err
    assert grafana.dashboard(UID)["panels"][0]["title"] == "theirs"
    assert obsgen(run_cli, grafana, "apply", "--yes", "--force").code == 0
    assert grafana.dashboard(UID)["panels"][0]["title"] == "Status"


def test_a_wrong_token_is_a_one_line_error_naming_the_environment_variable(run_cli, grafana, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", "glsa_wrong")
    result = obsgen(run_cli, grafana, "diff")
    assert result.code == 2
    assert result.err == ("obsgen: error: Grafana (dev) rejected the credentials (HTTP 401): "
                          "check OBSGEN_DEV_GRAFANA_TOKEN\n")


def test_a_missing_token_variable_is_named(run_cli, grafana, monkeypatch) -> None:
    monkeypatch.delenv("OBSGEN_DEV_GRAFANA_TOKEN")
    result = obsgen(run_cli, grafana, "diff")
    assert result.err == "obsgen: error: grafana (dev): environment variable OBSGEN_DEV_GRAFANA_TOKEN is not set\n"


def test_grafana_down_is_a_clear_error(run_cli, grafana) -> None:
    url = grafana.url
    grafana.stop()
    result = run_cli("diff", "--env", "dev", "--only", "grafana", "--grafana-url", url)
    assert result.code == 2
    assert result.err == f"obsgen: error: cannot reach Grafana (dev) at {url} (connection refused or DNS failure)\n"


def test_a_dashboard_obsgen_does_not_own_is_never_overwritten(run_cli, grafana) -> None:
    grafana.seed_dashboard({"uid": UID, "title": "Hand made", "schemaVersion": 39, "tags": ["team"]})
    result = obsgen(run_cli, grafana, "apply", "--yes")
    assert result.code == 2
    assert "is not managed by obsgen" in result.err
    assert grafana.dashboard(UID)["title"] == "Hand made"


def test_owned_dashboards_that_left_the_spec_are_deleted_only_with_prune(run_cli, grafana) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    grafana.seed_dashboard({"uid": "old-obsgen-dash", "title": "Old", "schemaVersion": 39, "tags": ["obsgen"]},
                           folder_uid="obsgen-selftest-dev")
    grafana.seed_dashboard({"uid": "someone-elses", "title": "Theirs", "schemaVersion": 39, "tags": ["team"]})
    result = obsgen(run_cli, grafana, "apply", "--yes")
    assert "- grafana dashboard old-obsgen-dash" in result.out
    assert "1 owned object left the spec; not deleted without --prune" in result.out
    assert grafana.dashboard("old-obsgen-dash") is not None
    assert obsgen(run_cli, grafana, "apply", "--yes", "--prune").code == 0
    assert grafana.dashboard("old-obsgen-dash") is None
    assert grafana.dashboard("someone-elses") is not None


def test_a_failure_mid_apply_restores_what_this_apply_changed(run_cli, grafana) -> None:
    grafana.fail_next("POST", "/api/dashboards/db", 503)
    result = obsgen(run_cli, grafana, "apply", "--yes")
    assert result.code == 2
    assert "HTTP 503" in result.err and "restored grafana to the state before this apply" in result.err
    assert grafana.dashboard(UID) is None
    assert ("DELETE", "/api/folders/obsgen-selftest-dev") in writes(grafana)
    history = run_cli("history", "--env", "dev")
    assert "rolled-back" in history.out and "HTTP 503" in history.out


def test_diff_formats_json_and_markdown(run_cli, grafana) -> None:
    data = json.loads(obsgen(run_cli, grafana, "diff", "--format", "json").out)
    assert [(c["action"], c["kind"], c["key"]) for c in data["changes"]] == [
        ("create", "folder", "obsgen-selftest-dev"), ("create", "dashboard", UID)]
    markdown = obsgen(run_cli, grafana, "diff", "--format", "markdown").out
    assert markdown.startswith("### obsgen plan for `dev`\n\nPlan: 2 to create")


def test_no_secret_reaches_output_or_the_ledger(run_cli, grafana, tmp_path: Path) -> None:
    outputs = [obsgen(run_cli, grafana, "apply", "--yes"), obsgen(run_cli, grafana, "apply", "--dry-run"),
               run_cli("history")]
    for result in outputs:
        assert TOKEN not in result.out + result.err
    ledger = (tmp_path / "state/ledger.sqlite").read_bytes()
    assert TOKEN.encode() not in ledger
    assert all(TOKEN not in json.dumps(body or {}) for _, _, body in grafana.requests)


def test_a_second_apply_to_the_same_environment_is_refused_while_one_runs(run_cli, grafana, tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import ROOT

    holder = subprocess.Popen(  # another obsgen process in the middle of an apply to dev
        [sys.executable, "-c", "import sys; from obsgen.deploy import state\n"
                               "with state.env_lock('dev'):\n    print('holding', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**__import__("os").environ, "OBSGEN_STATE_DIR": str(tmp_path / "state")})
    try:
        assert holder.stdout.readline() == "holding\n"
        result = obsgen(run_cli, grafana, "apply", "--yes")
        assert result.code == 2
        assert result.err == f"obsgen: error: another obsgen apply to dev is running (lock {tmp_path}/state/dev.lock)\n"
        assert grafana.requests == []  # refused before reading or writing anything
    finally:
        holder.communicate("")
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0  # the lock is released with its holder
