"""obsgen diff/apply against the Grafana test double (written from the Grafana HTTP API contract)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from doubles.grafana import GrafanaDouble

TOKEN = "glsa_test_token_value_0123456789"
UID = "selftest-dev-selftest-overview"
FOLDER = "obsgen-selftest-dev"  # dev's folder: uid derived from service and environment
MARKER = "obsgen:selftest:dev"  # dev's marker tag: obsgen owns a dashboard only with this tag in that folder
TITLE = "Selftest overview (dev)"


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


def stored(grafana: GrafanaDouble) -> dict[str, str]:
    """Every dashboard and folder the double holds, as canonical JSON (with its version history length)."""
    def get(path: str) -> list:
        return requests.get(grafana.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()

    out = {f"dashboard {hit['uid']}": json.dumps([grafana.dashboard(hit["uid"]), grafana.dashboard_folder(hit["uid"]),
                                                  len(grafana.dashboard_versions(hit["uid"]))], sort_keys=True)
           for hit in get("/api/search?type=dash-db&limit=5000")}
    out.update({f"folder {f['uid']}": json.dumps(get(f"/api/folders/{f['uid']}"), sort_keys=True)
                for f in get("/api/folders")})
    return out


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


@pytest.mark.parametrize("where,tags", [
    ("root", ["team"]),                       # a hand-made dashboard at obsgen's uid
    ("root", ["obsgen", MARKER]),             # marked, but outside dev's folder
    (FOLDER, ["obsgen"]),                     # in dev's folder, but without dev's marker
    (FOLDER, ["obsgen", "obsgen:selftest:staging"]),  # staging's marker in dev's folder
], ids=["hand-made", "marked-elsewhere", "unmarked-in-folder", "other-marker-in-folder"])
@pytest.mark.parametrize("force", [False, True], ids=["plain", "forced"])
def test_a_dashboard_at_a_desired_uid_that_obsgen_does_not_own_is_refused_even_with_force(
        run_cli, grafana, where: str, tags: list[str], force: bool) -> None:
    if where != "root":
        grafana.seed_folder(FOLDER, "Selftest (dev)")
    grafana.seed_dashboard({"uid": UID, "title": "Hand made", "schemaVersion": 39, "tags": tags},
                           folder_uid=None if where == "root" else where)
    before = stored(grafana)
    result = obsgen(run_cli, grafana, "apply", "--yes", *(["--force"] if force else []))
    assert result.code == 2
    assert f"dashboard {UID} exists but is not obsgen's for selftest dev" in result.err
    assert "not even with --force" in result.err and "Traceback" not in result.err
    legacy_hint = f"if obsgen 0.2 wrote it (tag 'obsgen' only), add the tag '{MARKER}' to it in Grafana"
    assert (legacy_hint in result.err) == (where == FOLDER and tags == ["obsgen"])  # what 0.2 left behind
    assert writes(grafana) == []  # refused before anything was written
    assert stored(grafana) == before
    diff = obsgen(run_cli, grafana, "diff", "--exit-code")
    assert diff.code == 1
    assert (f"! grafana dashboard {UID} (held by an object obsgen does not own; apply refuses to change it)"
            in diff.out.splitlines())
    assert "Hand made" not in diff.out  # someone else's dashboard is named, never shown
    assert "1 blocked" in diff.out.splitlines()[-1]


def test_owned_dashboards_that_left_the_spec_are_deleted_only_with_prune(run_cli, grafana) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    grafana.seed_dashboard({"uid": "old-obsgen-dash", "title": "Old", "schemaVersion": 39,
                            "tags": ["obsgen", MARKER]}, folder_uid=FOLDER)
    grafana.seed_dashboard({"uid": "someone-elses", "title": "Theirs", "schemaVersion": 39, "tags": ["team"]})
    grafana.seed_dashboard({"uid": "unmarked", "title": "Copy", "schemaVersion": 39, "tags": ["obsgen"]},
                           folder_uid=FOLDER)
    result = obsgen(run_cli, grafana, "apply", "--yes")
    assert "- grafana dashboard old-obsgen-dash" in result.out
    assert "1 owned object left the spec; not deleted without --prune" in result.out
    assert "unmarked" not in result.out and "someone-elses" not in result.out
    assert grafana.dashboard("old-obsgen-dash") is not None
    assert obsgen(run_cli, grafana, "apply", "--yes", "--prune").code == 0
    assert grafana.dashboard("old-obsgen-dash") is None
    assert grafana.dashboard("someone-elses") is not None
    assert grafana.dashboard("unmarked") is not None


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


# --- ownership per service and environment in one Grafana organisation ------------------------------

def other_service_spec(tmp_path: Path) -> Path:
    """The reference spec as another service ("checkout"), with its own folder titles."""
    import yaml

    from conftest import REFERENCE_SPEC

    data = yaml.safe_load(REFERENCE_SPEC.read_text())
    data["service"]["name"] = "checkout"
    for env in data["environments"]:
        env["backends"]["grafana"]["folder"] = f"Checkout ({env['name']})"
    path = tmp_path / "checkout.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_other_environments_and_services_never_show_in_a_diff_and_survive_a_forced_prune(
        run_cli, grafana, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OBSGEN_STAGING_GRAFANA_TOKEN", TOKEN)
    url = ("--grafana-url", grafana.url)
    assert run_cli("apply", "--env", "staging", "--only", "grafana", *url, "--yes").code == 0
    assert run_cli("apply", "--env", "dev", "--only", "grafana", "--spec", str(other_service_spec(tmp_path)),
                   *url, "--yes").code == 0
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    # a hand-made copy in dev's folder, and a dashboard carrying dev's marker outside dev's folder
    grafana.seed_dashboard({"uid": "copy-of-overview", "title": "My copy", "tags": ["obsgen", "selftest"]},
                           folder_uid=FOLDER)
    grafana.seed_dashboard({"uid": "moved-away", "title": "Moved", "tags": ["obsgen", MARKER]})
    # what dev owns: its dashboard (edited in the UI) and a leftover that left the spec
    grafana.edit_dashboard_in_ui(UID, lambda d: d["panels"][0].update(title="edited"))
    grafana.seed_dashboard({"uid": "selftest-dev-leftover", "title": "Leftover", "tags": ["obsgen", MARKER]},
                           folder_uid=FOLDER)
    others = {k: v for k, v in stored(grafana).items()
              if k not in (f"dashboard {UID}", "dashboard selftest-dev-leftover", f"folder {FOLDER}")}
    assert {"dashboard selftest-staging-selftest-overview", "dashboard checkout-dev-selftest-overview",
            "folder obsgen-selftest-staging", "folder obsgen-checkout-dev"} <= set(others)

    diff = json.loads(obsgen(run_cli, grafana, "diff", "--format", "json").out)
    assert [(c["action"], c["kind"], c["key"]) for c in diff["changes"]] == [
        ("update", "dashboard", UID), ("delete", "dashboard", "selftest-dev-leftover")]
    result = obsgen(run_cli, grafana, "apply", "--yes", "--prune", "--force")
    assert result.code == 0, result.err
    after = stored(grafana)
    assert {k: v for k, v in after.items() if k in others} == others  # byte-identical
    assert set(after) == set(others) | {f"dashboard {UID}", f"folder {FOLDER}"}
    assert grafana.dashboard(UID)["panels"][0]["title"] == "Status"


# --- saves never take over another dashboard -----------------------------------------------------

def dashboard_saves(grafana: GrafanaDouble) -> list[dict]:
    return [body for m, p, body in grafana.requests if (m, p) == ("POST", "/api/dashboards/db")]


@pytest.mark.parametrize("force", [False, True], ids=["plain", "forced"])
def test_a_create_beside_a_dashboard_of_the_same_title_is_refused_and_rolled_back(run_cli, grafana,
                                                                                 force: bool) -> None:
    """Grafana <= 11.2: a create with overwrite would take the other dashboard over; obsgen's gets 412."""
    grafana.seed_folder(FOLDER, "Old folder title")  # renamed by this apply, so there is something to roll back
    grafana.seed_dashboard({"uid": "team-board", "title": TITLE, "tags": ["team"]}, folder_uid=FOLDER)
    before = stored(grafana)
    result = obsgen(run_cli, grafana, "apply", "--yes", *(["--force"] if force else []))
    assert result.code == 2
    assert f"cannot save dashboard {UID}: another dashboard titled '{TITLE}' is already in folder" in result.err
    assert "not even with --force" in result.err
    assert "restored grafana to the state before this apply" in result.err
    assert all("overwrite" not in body for body in dashboard_saves(grafana))
    assert grafana.dashboard(UID) is None
    after = stored(grafana)
    assert after.pop("dashboard team-board") == before.pop("dashboard team-board")  # untouched
    folder = json.loads(after[f"folder {FOLDER}"])
    assert folder["title"] == "Old folder title"  # the rename was undone


def test_a_forced_update_retitled_like_another_dashboard_never_takes_it_over(run_cli, grafana) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    grafana.edit_dashboard_in_ui(UID, lambda d: d.update(title="Renamed in the UI"))
    grafana.seed_dashboard({"uid": "team-board", "title": TITLE, "tags": ["team"]}, folder_uid=FOLDER)
    before = stored(grafana)
    result = obsgen(run_cli, grafana, "apply", "--yes", "--force")
    assert result.code == 2
    assert "another dashboard titled" in result.err
    assert all("overwrite" not in body for body in dashboard_saves(grafana))
    assert stored(grafana) == before  # neither dashboard changed


def test_a_save_answered_with_another_uid_fails_and_rolls_back(run_cli, grafana) -> None:
    grafana.fail_next("POST", "/api/dashboards/db", 200, {"id": 7, "uid": "team-board", "url": "/d/team-board/x",
                                                           "status": "success", "version": 4, "slug": "x"})
    result = obsgen(run_cli, grafana, "apply", "--yes")
    assert result.code == 2
    assert f"Grafana saved dashboard {UID} as dashboard 'team-board'" in result.err
    assert "restored grafana" in result.err
    assert stored(grafana) == {}  # the folder this apply created is gone again


# --- every refusal says what it is ---------------------------------------------------------------

REFUSALS = {  # Grafana's answer to a save -> what the error must say
    "version-mismatch": ((412, {"status": "version-mismatch",
                                "message": "The dashboard has been changed by someone else"}),
                         "was changed in Grafana since obsgen read it"),
    "grafana-13-conflict": ((409, {"message": "Dashboard already exists. Use overwrite flag to update."}),
                            "was changed in Grafana since obsgen read it"),
    "name-exists": ((412, {"status": "name-exists",
                           "message": "A dashboard with the same name in the folder already exists"}),
                    "another dashboard titled"),
    "plugin-dashboard": ((412, {"status": "plugin-dashboard", "message": "The dashboard belongs to plugin x-app."}),
                         "belongs to a Grafana plugin (The dashboard belongs to plugin x-app.)"),
}


def test_each_refusal_of_a_save_has_its_own_message(run_cli, grafana) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    messages = {}
    for name, ((status, body), says) in REFUSALS.items():
        grafana.edit_dashboard_in_ui(UID, lambda d: d["panels"][0].update(title=name))
        grafana.fail_next("POST", "/api/dashboards/db", status, body)
        result = obsgen(run_cli, grafana, "apply", "--yes")
        assert result.code == 2 and result.err.count("\n") == 1, name
        assert says in result.err, name
        messages[name] = result.err
        assert grafana.dashboard(UID)["panels"][0]["title"] == name  # nothing was changed
    assert "--force" in messages["version-mismatch"] and "--force" in messages["grafana-13-conflict"]
    assert len({messages[k] for k in ("version-mismatch", "name-exists", "plugin-dashboard")}) == 3


def test_a_plugin_dashboard_holding_an_owned_uid_is_refused_by_grafana_and_named(run_cli, grafana) -> None:
    grafana.seed_folder(FOLDER, "Selftest (dev)")
    grafana.seed_dashboard({"uid": UID, "title": TITLE, "tags": ["obsgen", MARKER]}, folder_uid=FOLDER,
                           plugin_id="selftest-app")
    result = obsgen(run_cli, grafana, "apply", "--yes", "--force")
    assert result.code == 2
    assert f"dashboard {UID} belongs to a Grafana plugin" in result.err
    assert grafana.dashboard(UID)["version"] == 1


# --- rollback restores only what this apply left ---------------------------------------------------

def test_a_failed_restore_is_reported_and_keeps_someone_elses_edit(run_cli, grafana, monkeypatch) -> None:
    """An update lands, the prune fails, and before the rollback someone edits the updated dashboard:
    the rollback must not overwrite that edit, and the run ends 'could not restore'."""
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    grafana.edit_dashboard_in_ui(UID, lambda d: d["panels"][0].update(title="before"))
    grafana.seed_dashboard({"uid": "selftest-dev-leftover", "title": "Leftover", "tags": ["obsgen", MARKER]},
                           folder_uid=FOLDER)
    grafana.fail_next("DELETE", "/api/dashboards/uid/selftest-dev-leftover", 400, {"message": "refused"})
    from obsgen.deploy.backends.grafana import GrafanaBackend

    real = GrafanaBackend.restore

    def someone_edits_first(self, applied):
        grafana.edit_dashboard_in_ui(UID, lambda d: d["panels"][0].update(title="theirs"))
        return real(self, applied)

    monkeypatch.setattr(GrafanaBackend, "restore", someone_edits_first)
    result = obsgen(run_cli, grafana, "apply", "--yes", "--prune")
    assert result.code == 2
    assert "COULD NOT RESTORE grafana" in result.err
    assert f"dashboard {UID} was changed in Grafana after this apply wrote it" in result.err
    assert grafana.dashboard(UID)["panels"][0]["title"] == "theirs"
    assert grafana.dashboard("selftest-dev-leftover") is not None
    assert "could-not-restore" in run_cli("history", "--env", "dev").out


def test_an_update_is_restored_with_the_version_it_wrote_and_without_overwrite(run_cli, grafana) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    grafana.edit_dashboard_in_ui(UID, lambda d: d["panels"][0].update(title="before"))
    grafana.seed_dashboard({"uid": "selftest-dev-leftover", "title": "Leftover", "tags": ["obsgen", MARKER]},
                           folder_uid=FOLDER)
    before = grafana.dashboard(UID)
    grafana.fail_next("DELETE", "/api/dashboards/uid/selftest-dev-leftover", 400, {"message": "refused"})
    grafana.reset_requests()
    result = obsgen(run_cli, grafana, "apply", "--yes", "--prune")
    assert result.code == 2 and "restored grafana" in result.err
    saves = dashboard_saves(grafana)
    assert [s["dashboard"]["version"] for s in saves] == [before["version"], before["version"] + 1]
    assert all("overwrite" not in s for s in saves)
    restored = grafana.dashboard(UID)
    assert restored["version"] == before["version"] + 2
    assert {k: v for k, v in restored.items() if k != "version"} == {k: v for k, v in before.items() if k != "version"}


# --- parallel writes ------------------------------------------------------------------------------

def many_dashboards_spec(tmp_path: Path, count: int) -> Path:
    import yaml

    from conftest import REFERENCE_SPEC

    data = yaml.safe_load(REFERENCE_SPEC.read_text())
    template = data["dashboards"][0]
    data["dashboards"] = [{**template, "id": f"board-{i:02d}", "title": f"Board {i:02d}"} for i in range(count)]
    path = tmp_path / "selftest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_dashboard_writes_run_in_parallel_after_the_folder_and_bounded(run_cli, grafana, tmp_path: Path) -> None:
    from obsgen.deploy.http import READ_WORKERS

    spec = many_dashboards_spec(tmp_path, 40)
    grafana.gate("POST", "/api/dashboards/db", 4, timeout=10)  # 4 saves must be in flight together
    grafana.reset_requests()
    result = obsgen(run_cli, grafana, "apply", "--yes", "--spec", str(spec))
    assert result.code == 0, result.err
    posts = [p for m, p in writes(grafana)]
    assert posts[0] == "/api/folders" and posts.count("/api/dashboards/db") == 40
    assert grafana.max_in_flight <= READ_WORKERS
    assert len([k for k in stored(grafana) if k.startswith("dashboard ")]) == 40


def test_a_failure_among_parallel_creates_rolls_every_one_back(run_cli, grafana, tmp_path: Path) -> None:
    spec = many_dashboards_spec(tmp_path, 40)
    grafana.fail_next("POST", "/api/dashboards/db", 503)
    result = obsgen(run_cli, grafana, "apply", "--yes", "--spec", str(spec))
    assert result.code == 2 and "HTTP 503" in result.err and "restored grafana" in result.err
    assert stored(grafana) == {}


def read_then(grafana: GrafanaDouble, monkeypatch, uid: str, mutate) -> None:
    """Someone changes dashboard `uid` in Grafana right after obsgen has read the live state."""
    from obsgen.deploy.backends.grafana import GrafanaBackend

    real_read = GrafanaBackend.read

    def read(self, desired):
        live = real_read(self, desired)
        grafana.edit_dashboard_in_ui(uid, mutate)
        return live

    monkeypatch.setattr(GrafanaBackend, "read", read)


def test_force_does_not_overwrite_a_dashboard_that_stopped_being_obsgens_since_it_was_read(
        run_cli, grafana, monkeypatch) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    grafana.edit_dashboard_in_ui(UID, lambda d: d["panels"][0].update(title="mine"))
    read_then(grafana, monkeypatch, UID, lambda d: d.update(tags=["adopted-by-team"]))
    result = obsgen(run_cli, grafana, "apply", "--yes", "--force")
    assert result.code == 2
    assert f"dashboard {UID} is no longer obsgen's" in result.err
    assert grafana.dashboard(UID)["tags"] == ["adopted-by-team"]


def test_pruning_a_dashboard_edited_since_it_was_read_is_a_conflict_unless_forced(run_cli, grafana,
                                                                                   monkeypatch) -> None:
    assert obsgen(run_cli, grafana, "apply", "--yes").code == 0
    grafana.seed_dashboard({"uid": "selftest-dev-leftover", "title": "Leftover", "tags": ["obsgen", MARKER]},
                           folder_uid=FOLDER)
    read_then(grafana, monkeypatch, "selftest-dev-leftover", lambda d: d.update(description="still used"))
    result = obsgen(run_cli, grafana, "apply", "--yes", "--prune")
    assert result.code == 2
    assert "dashboard selftest-dev-leftover was changed in Grafana since obsgen read it" in result.err
    assert "--prune --force" in result.err
    assert grafana.dashboard("selftest-dev-leftover")["description"] == "still used"
    assert obsgen(run_cli, grafana, "apply", "--yes", "--prune", "--force").code == 0
    assert grafana.dashboard("selftest-dev-leftover") is None


def test_a_first_apply_fetches_no_dashboard_and_only_searches(run_cli, grafana, tmp_path: Path) -> None:
    """Which desired uids exist is asked with search (dashboardUIDs, in batches); nothing exists yet, so no
    dashboard is fetched: a first apply of many dashboards is its writes."""
    spec = many_dashboards_spec(tmp_path, 120)
    assert obsgen(run_cli, grafana, "apply", "--yes", "--spec", str(spec)).code == 0
    reads = [p for m, p, _ in grafana.requests if m == "GET"]
    assert [p for p in reads if p.startswith("/api/dashboards/uid/")] == []
    assert len([p for p in reads if p.startswith("/api/search")]) == 1 + 3  # the folder's marked ones; 120 uids
