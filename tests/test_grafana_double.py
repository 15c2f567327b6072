"""Pins the Grafana test double (tests/doubles/grafana.py) to the contract in
tests/doubles/contracts/grafana-http-api.md; each docstring names the contract section."""
from __future__ import annotations

import json

import pytest
import requests

from doubles.grafana import GrafanaDouble

TOKEN = "secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROV = "/api/v1/provisioning"


@pytest.fixture
def g():
    with GrafanaDouble(token=TOKEN) as double:
        yield double


def call(g: GrafanaDouble, method: str, path: str, headers=None, **kwargs) -> requests.Response:
    return requests.request(method, g.url + path, headers={**AUTH, **(headers or {})}, timeout=10, **kwargs)


def save(g, dashboard: dict, **body) -> requests.Response:
    return call(g, "POST", "/api/dashboards/db", json={"dashboard": dashboard, **body})


def rule(title: str, **extra) -> dict:
    return {"title": title, "condition": "A", "for": "5m", "noDataState": "NoData", "execErrState": "Error",
            "data": [{"refId": "A", "datasourceUid": "__expr__", "model": {},
                      "relativeTimeRange": {"from": 600, "to": 0}}], **extra}


# ---- §2 health --------------------------------------------------------------------------------
def test_health_answers_200_without_credentials_pretty_printed(g):
    """§1/§2: /api/health needs no auth; 200 with commit, database "ok", version, 2-space indent."""
    r = requests.get(g.url + "/api/health", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"commit": r.json()["commit"], "database": "ok", "version": "11.2.0"}
    assert r.text == json.dumps(r.json(), indent=2)
    assert requests.head(g.url + "/api/health", timeout=10).status_code == 200


def test_health_answers_503_with_database_failing_when_the_database_is_down(g):
    """§2: DB down -> 503 with "database": "failing"."""
    g.set_database_ok(False)
    r = requests.get(g.url + "/api/health", timeout=10)
    assert (r.status_code, r.json()["database"]) == (503, "failing")


def test_healthz_answers_plain_text_ok(g):
    """§2: GET /healthz -> 200 text `Ok`."""
    r = requests.get(g.url + "/healthz", timeout=10)
    assert (r.status_code, r.text) == (200, "Ok")


# ---- §1 auth ----------------------------------------------------------------------------------
def test_a_request_without_credentials_gets_401_with_the_exact_authn_body(g):
    """§1: no credentials -> 401 with the Grafana >=9/10 authn body."""
    r = requests.get(g.url + "/api/search", timeout=10)
    assert r.status_code == 401
    assert r.json() == {"extra": None, "message": "Unauthorized", "messageId": "auth.unauthorized",
                        "statusCode": 401, "traceID": ""}


def test_a_wrong_bearer_token_gets_401_invalid_api_key(g):
    """§1: invalid token -> 401, messageId "api-key.invalid", message "Invalid API key"."""
    r = requests.get(g.url + "/api/search", headers={"Authorization": "Bearer glsa_wrong"}, timeout=10)
    assert r.status_code == 401
    assert r.json() == {"extra": None, "message": "Invalid API key", "messageId": "api-key.invalid",
                        "statusCode": 401, "traceID": ""}


def test_basic_auth_admin_admin_is_accepted_and_a_wrong_password_is_401(g):
    """§1: HTTP basic user:password (admin:admin) works; wrong credentials -> 401."""
    assert requests.get(g.url + "/api/search", auth=("admin", "admin"), timeout=10).status_code == 200
    assert requests.get(g.url + "/api/search", auth=("admin", "nope"), timeout=10).status_code == 401


def test_a_very_old_grafana_answers_401_with_only_a_message():
    """§1: very old Grafana -> {"message": "Unauthorized"}."""
    with GrafanaDouble(token=TOKEN, grafana_version="8.5.0") as old:
        r = requests.get(old.url + "/api/search", timeout=10)
    assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})


# ---- §3 dashboards: save ----------------------------------------------------------------------
def test_creating_a_dashboard_gives_version_1_and_saving_it_again_unchanged_gives_version_2(g):
    """§3 version/id assignment: new -> version 1; update -> version + 1 on every save, even identical."""
    first = save(g, {"uid": "abc", "title": "My Dash"})
    assert first.status_code == 200
    assert first.json() == {"id": first.json()["id"], "uid": "abc", "url": "/d/abc/my-dash",
                            "status": "success", "version": 1, "slug": "my-dash"}
    second = save(g, {"uid": "abc", "title": "My Dash", "version": 1})
    assert (second.status_code, second.json()["version"], second.json()["id"]) == (200, 2, first.json()["id"])


def test_the_stored_json_gets_the_server_id_uid_and_version_whatever_was_posted(g):
    """§3: new dashboards get version 1 and a new id whatever was posted; stored JSON gets id/uid/version."""
    r = save(g, {"id": None, "uid": "abc", "title": "T", "version": 7})
    assert r.json()["version"] == 1
    assert g.dashboard("abc") == {"id": r.json()["id"], "uid": "abc", "title": "T", "version": 1}


def test_a_dashboard_saved_without_uid_gets_a_generated_short_uid(g):
    """§3: uid absent -> server generates a short uid."""
    uid = save(g, {"title": "No uid"}).json()["uid"]
    assert uid and len(uid) <= 40 and g.dashboard(uid)["title"] == "No uid"


def test_saving_with_a_stale_version_without_overwrite_is_412_version_mismatch(g):
    """§3: dashboard.version != stored version, overwrite false -> 412 version-mismatch."""
    save(g, {"uid": "abc", "title": "T"})
    save(g, {"uid": "abc", "title": "T", "version": 1})
    r = save(g, {"uid": "abc", "title": "T", "version": 1})
    assert r.status_code == 412
    assert r.json() == {"status": "version-mismatch", "message": "The dashboard has been changed by someone else"}
    assert g.dashboard("abc")["version"] == 2


def test_omitting_version_on_an_update_without_overwrite_is_412(g):
    """§3 NB: omitting version (=0) on an update without overwrite => 412."""
    save(g, {"uid": "abc", "title": "T"})
    assert save(g, {"uid": "abc", "title": "T"}).status_code == 412


def test_overwrite_true_accepts_a_stale_version_and_bumps_the_stored_one(g):
    """§3: overwrite:true -> accepted, incoming version replaced by stored version (then + 1)."""
    save(g, {"uid": "abc", "title": "T"})
    save(g, {"uid": "abc", "title": "T", "version": 1})
    r = save(g, {"uid": "abc", "title": "T2", "version": 1}, overwrite=True)
    assert (r.status_code, r.json()["version"]) == (200, 3)
    assert g.dashboard("abc")["title"] == "T2"


def test_grafana_13_answers_409_for_a_stale_version_and_returns_folder_uid():
    """§3 [main/13]: stale version without overwrite -> 409; save response adds folderUid."""
    with GrafanaDouble(token=TOKEN, grafana_version="13.0.0") as g13:
        assert "folderUid" in save(g13, {"uid": "abc", "title": "T"}).json()
        r = save(g13, {"uid": "abc", "title": "T", "version": 5})
    assert (r.status_code, r.json()) == (409, {"message": "Dashboard already exists. Use overwrite flag to update."})


def test_saving_into_a_missing_folder_is_folder_not_found(g):
    """§3: folder does not exist -> 400 or 404 {"message": "Folder not found"} (400 by default here)."""
    r = save(g, {"uid": "abc", "title": "T"}, folderUid="nope")
    assert (r.status_code, r.json()) == (400, {"message": "Folder not found"})
    with GrafanaDouble(token=TOKEN, folder_not_found_status=404) as g404:
        assert save(g404, {"uid": "abc", "title": "T"}, folderUid="nope").status_code == 404
    assert g.dashboard("abc") is None


def test_an_empty_title_is_400_empty_name(g):
    """§3 validation: title empty -> 400 status empty-name."""
    r = save(g, {"uid": "abc", "title": ""})
    assert (r.status_code, r.json()) == (400, {"status": "empty-name", "message": "Dashboard title cannot be empty"})


def test_a_too_long_or_illegal_uid_and_a_too_long_message_are_400(g):
    """§3 validation: uid > 40 chars, illegal uid chars, message > 500 chars -> 400."""
    assert save(g, {"uid": "x" * 41, "title": "T"}).json() == {"message": "uid too long, max 40 characters"}
    assert save(g, {"uid": "a b/c", "title": "T"}).json() == {"message": "uid contains illegal characters"}
    assert save(g, {"uid": "ok", "title": "T"}, message="m" * 501).status_code == 400


def test_an_unknown_dashboard_id_is_404_not_found(g):
    """§3: dashboard.id > 0 but unknown -> 404 {"status": "not-found", ...}."""
    r = save(g, {"id": 999, "uid": "abc", "title": "T"})
    assert (r.status_code, r.json()) == (404, {"status": "not-found", "message": "Dashboard not found"})


def test_an_id_and_a_uid_of_different_dashboards_is_400(g):
    """§3: id and uid point at different dashboards -> 400 "A dashboard with the same uid already exists"."""
    first = save(g, {"uid": "one", "title": "One"}).json()
    save(g, {"uid": "two", "title": "Two"})
    r = save(g, {"id": first["id"], "uid": "two", "title": "One", "version": 1})
    assert (r.status_code, r.json()["message"]) == (400, "A dashboard with the same uid already exists")


def test_the_same_title_in_the_same_folder_is_412_name_exists_up_to_11_2(g):
    """§3 [<=11.2]: same title in same folder, different uid -> 412 name-exists."""
    save(g, {"uid": "one", "title": "Same"})
    r = save(g, {"uid": "two", "title": "Same"})
    assert (r.status_code, r.json()) == (412, {"status": "name-exists",
                                               "message": "A dashboard with the same name in the folder already exists"})


def test_the_same_title_in_the_same_folder_is_allowed_from_11_3():
    """§3 [>=11.3]: title uniqueness removed -> no error."""
    with GrafanaDouble(token=TOKEN, grafana_version="11.3.0") as g:
        save(g, {"uid": "one", "title": "Same"})
        assert save(g, {"uid": "two", "title": "Same"}).status_code == 200


def test_the_title_clash_compares_slugs_and_only_within_the_folder_up_to_11_2(g):
    """§3 [<=11.2] + src getExistingDashboardByTitleAndFolder: titles match by slug, in the target folder only."""
    g.seed_folder("f1", "One")
    g.seed_folder("f2", "Two")
    save(g, {"uid": "one", "title": "Same Title"}, folderUid="f1")
    assert save(g, {"uid": "two", "title": "same-title"}, folderUid="f1").json()["status"] == "name-exists"
    assert save(g, {"uid": "two", "title": "Same Title"}, folderUid="f2").status_code == 200


def test_with_overwrite_a_create_takes_over_the_dashboard_of_the_same_title_up_to_11_2(g):
    """§3 [<=11.2], src getExistingDashboardByTitleAndFolder: with overwrite the new save gets the existing
    dashboard's id, uid and version; the answer carries that uid, and no dashboard has the posted uid."""
    g.seed_folder("f1", "Fold")
    theirs = save(g, {"uid": "theirs", "title": "Same", "description": "theirs"}, folderUid="f1").json()
    r = save(g, {"uid": "mine", "title": "Same", "description": "mine"}, folderUid="f1", overwrite=True)
    assert r.status_code == 200
    assert (r.json()["uid"], r.json()["id"], r.json()["version"]) == ("theirs", theirs["id"], 2)
    assert g.dashboard("mine") is None
    assert g.dashboard("theirs")["description"] == "mine"


def test_with_overwrite_an_update_retitled_like_another_dashboard_lands_on_that_one_up_to_11_2(g):
    """§3 [<=11.2], src: the title check runs after the uid lookup; with overwrite the save is moved onto the
    other dashboard (its id and uid) and the dashboard named by the posted uid is left as it was."""
    g.seed_folder("f1", "Fold")
    save(g, {"uid": "theirs", "title": "Theirs", "description": "theirs"}, folderUid="f1")
    save(g, {"uid": "mine", "title": "Mine"}, folderUid="f1")
    r = save(g, {"uid": "mine", "title": "Theirs", "version": 1, "description": "mine"}, folderUid="f1",
             overwrite=True)
    assert (r.status_code, r.json()["uid"]) == (200, "theirs")
    assert (g.dashboard("mine")["title"], g.dashboard("mine")["version"]) == ("Mine", 1)
    assert g.dashboard("theirs")["description"] == "mine"
    without = save(g, {"uid": "mine", "title": "Theirs", "version": 1}, folderUid="f1")
    assert (without.status_code, without.json()["status"]) == (412, "name-exists")


def test_from_11_3_overwrite_with_an_existing_title_creates_a_second_dashboard():
    """§3 [>=11.3]: title uniqueness removed, so nothing is taken over."""
    with GrafanaDouble(token=TOKEN, grafana_version="11.3.0") as g:
        save(g, {"uid": "theirs", "title": "Same"})
        r = save(g, {"uid": "mine", "title": "Same"}, overwrite=True)
        assert (r.status_code, r.json()["uid"]) == (200, "mine")
        assert g.dashboard("theirs")["version"] == 1


def test_a_dashboard_titled_like_a_folder_is_400_name_match_up_to_11_2(g):
    """src ErrDashboardWithSameNameAsFolder [<=11.2]: a dashboard whose title slug is a folder's -> 400."""
    g.seed_folder("f1", "Ops (dev)")
    r = save(g, {"uid": "abc", "title": "ops dev"}, folderUid="f1")
    assert (r.status_code, r.json()) == (400, {"status": "name-match",
                                               "message": "Dashboard name cannot be the same as folder"})
    with GrafanaDouble(token=TOKEN, grafana_version="11.3.0") as g113:
        g113.seed_folder("f1", "Ops (dev)")
        assert save(g113, {"uid": "abc", "title": "ops dev"}, folderUid="f1").status_code == 200


def test_a_plugin_dashboard_answers_412_plugin_dashboard_naming_the_plugin(g):
    """§3: plugin-owned dashboard without overwrite -> 412 status plugin-dashboard; it is left unchanged."""
    g.seed_dashboard({"uid": "plug", "title": "P", "tags": ["app"]}, plugin_id="some-app")
    r = save(g, {"uid": "plug", "title": "Mine", "version": 1})
    assert (r.status_code, r.json()) == (412, {"status": "plugin-dashboard",
                                               "message": "The dashboard belongs to plugin some-app."})
    assert g.dashboard("plug")["title"] == "P"


def test_a_plugin_dashboard_needs_overwrite_and_a_provisioned_one_cannot_be_saved_or_deleted(g):
    """§3: plugin-owned without overwrite -> 412 plugin-dashboard; provisioned -> 400 on save and delete."""
    g.seed_dashboard({"uid": "plug", "title": "P"}, plugin_id="some-app")
    assert save(g, {"uid": "plug", "title": "P", "version": 1}).json()["status"] == "plugin-dashboard"
    assert save(g, {"uid": "plug", "title": "P", "version": 1}, overwrite=True).status_code == 200
    g.seed_dashboard({"uid": "prov", "title": "Q"}, provisioned=True)
    r = save(g, {"uid": "prov", "title": "Q", "version": 1})
    assert (r.status_code, r.json()) == (400, {"message": "Cannot save provisioned dashboard"})
    r = call(g, "DELETE", "/api/dashboards/uid/prov")
    assert (r.status_code, r.json()) == (400, {"message": "provisioned dashboard cannot be deleted"})


def test_an_update_without_folder_moves_the_dashboard_to_the_root(g):
    """§3: if neither folderUid nor folderId is given on update the dashboard moves to root."""
    g.seed_folder("f1", "Fold")
    save(g, {"uid": "abc", "title": "T"}, folderUid="f1")
    assert g.dashboard_folder("abc") == "f1"
    save(g, {"uid": "abc", "title": "T", "version": 1})
    assert g.dashboard_folder("abc") is None


def test_folder_uid_overrides_the_deprecated_folder_id(g):
    """§3: folderId numeric is deprecated; folderUid overrides it."""
    f1, f2 = g.seed_folder("f1", "One"), g.seed_folder("f2", "Two")
    save(g, {"uid": "a", "title": "A"}, folderId=f1["id"])
    save(g, {"uid": "b", "title": "B"}, folderId=f1["id"], folderUid="f2")
    assert (g.dashboard_folder("a"), g.dashboard_folder("b"), f2["uid"]) == ("f1", "f2", "f2")


def test_every_save_writes_a_version_row_with_parent_version_and_message(g):
    """§3: on update a dashboard_version row is written with parentVersion and message."""
    save(g, {"uid": "abc", "title": "T"}, message="first")
    save(g, {"uid": "abc", "title": "T", "version": 1}, message="second")
    rows = g.dashboard_versions("abc")
    assert [(r["version"], r["parentVersion"], r["message"]) for r in rows] == [(1, 0, "first"), (2, 1, "second")]


def test_an_edit_in_the_ui_bumps_the_version_so_a_stale_save_is_412(g):
    """§3: a save elsewhere bumps the stored version; the client's stale version then gets 412."""
    save(g, {"uid": "abc", "title": "T"})
    assert g.edit_dashboard_in_ui("abc", lambda d: d.update(title="Edited")) == 2
    assert save(g, {"uid": "abc", "title": "T", "version": 1}).status_code == 412
    assert g.dashboard("abc")["title"] == "Edited"


# ---- §3 dashboards: get / delete --------------------------------------------------------------
def test_get_by_uid_returns_the_dashboard_and_its_meta_with_folder_fields(g):
    """§3 GET /api/dashboards/uid/:uid -> {"dashboard", "meta"}; dashboard.version == stored version."""
    folder = g.seed_folder("fold1", "Fold")
    save(g, {"uid": "abc", "title": "T", "version": 99}, folderUid="fold1")
    body = call(g, "GET", "/api/dashboards/uid/abc").json()
    assert body["dashboard"]["version"] == body["meta"]["version"] == 1
    assert {k: body["meta"][k] for k in ("type", "slug", "url", "folderId", "folderUid", "folderTitle",
                                          "folderUrl", "provisioned", "isFolder", "canSave")} == {
        "type": "db", "slug": "t", "url": "/d/abc/t", "folderId": folder["id"], "folderUid": "fold1",
        "folderTitle": "Fold", "folderUrl": "/dashboards/f/fold1/fold", "provisioned": False,
        "isFolder": False, "canSave": True}
    assert body["meta"]["expires"] == "0001-01-01T00:00:00Z"


def test_a_root_dashboard_has_folder_id_0_and_folder_title_general(g):
    """§3: root dashboards: folderId 0, folderUid "", folderTitle "General"."""
    save(g, {"uid": "abc", "title": "T"})
    meta = call(g, "GET", "/api/dashboards/uid/abc").json()["meta"]
    assert (meta["folderId"], meta["folderUid"], meta["folderTitle"]) == (0, "", "General")


def test_get_of_an_unknown_uid_is_404_dashboard_not_found(g):
    """§3: 404 {"message": "Dashboard not found"}."""
    r = call(g, "GET", "/api/dashboards/uid/nope")
    assert (r.status_code, r.json()) == (404, {"message": "Dashboard not found"})


def test_delete_answers_title_message_uid_and_the_dashboard_is_gone(g):
    """§3 DELETE /api/dashboards/uid/:uid -> 200 {title, message, uid}; 404 if unknown."""
    save(g, {"uid": "abc", "title": "T"})
    r = call(g, "DELETE", "/api/dashboards/uid/abc")
    assert (r.status_code, r.json()) == (200, {"title": "T", "message": "Dashboard T deleted", "uid": "abc"})
    assert call(g, "GET", "/api/dashboards/uid/abc").status_code == 404
    assert call(g, "DELETE", "/api/dashboards/uid/abc").status_code == 404


# ---- §3 search --------------------------------------------------------------------------------
def test_search_with_two_tags_returns_only_dashboards_carrying_both(g):
    """§3 GET /api/search: tag is repeatable and AND-ed."""
    save(g, {"uid": "both", "title": "Both", "tags": ["obsgen", "slo"]})
    save(g, {"uid": "one", "title": "One", "tags": ["obsgen"]})
    r = call(g, "GET", "/api/search", params=[("tag", "obsgen"), ("tag", "slo")])
    assert [h["uid"] for h in r.json()] == ["both"]


def test_search_by_folder_uids_and_type_dash_db_returns_the_folders_dashboards_only(g):
    """§3 GET /api/search: folderUIDs (repeatable) and type=dash-db; hit shape with folder* keys."""
    folder = g.seed_folder("fold1", "Fold")
    g.seed_folder("fold2", "Other")
    dash = save(g, {"uid": "abc", "title": "T", "tags": ["obsgen"]}, folderUid="fold1").json()
    save(g, {"uid": "elsewhere", "title": "E"}, folderUid="fold2")
    save(g, {"uid": "root", "title": "R"})
    r = call(g, "GET", "/api/search", params={"folderUIDs": "fold1", "type": "dash-db"})
    assert r.json() == [{"id": dash["id"], "uid": "abc", "title": "T", "uri": "db/t", "url": "/d/abc/t", "slug": "",
                         "type": "dash-db", "tags": ["obsgen"], "isStarred": False, "folderId": folder["id"],
                         "folderUid": "fold1", "folderTitle": "Fold", "folderUrl": "/dashboards/f/fold1/fold",
                         "sortMeta": 0}]


def test_search_folder_uid_general_means_the_root_and_root_hits_have_no_folder_keys(g):
    """§3: folderUIDs `general` = root; root dashboards have no folder* keys."""
    g.seed_folder("fold1", "Fold")
    save(g, {"uid": "in", "title": "In"}, folderUid="fold1")
    save(g, {"uid": "root", "title": "Root"})
    hits = call(g, "GET", "/api/search", params={"folderUIDs": "general", "type": "dash-db"}).json()
    assert [h["uid"] for h in hits] == ["root"]
    assert not [k for k in hits[0] if k.startswith("folder")]


def test_search_type_dash_folder_returns_folder_hits(g):
    """§3: folder hits have type dash-folder and url /dashboards/f/<uid>/<slug>."""
    g.seed_folder("fold1", "My Fold")
    save(g, {"uid": "abc", "title": "T"})
    hits = call(g, "GET", "/api/search", params={"type": "dash-folder"}).json()
    assert [(h["uid"], h["type"], h["url"]) for h in hits] == [("fold1", "dash-folder", "/dashboards/f/fold1/my-fold")]


def test_search_query_is_a_case_insensitive_title_substring_sorted_by_title(g):
    """§3: query = title substring, case-insensitive; default sort title asc; dashboardUIDs filter."""
    for uid, title in (("c", "Checkout SLO"), ("a", "API slo"), ("x", "Other")):
        save(g, {"uid": uid, "title": title})
    assert [h["title"] for h in call(g, "GET", "/api/search", params={"query": "SLO"}).json()] == ["API slo",
                                                                                                  "Checkout SLO"]
    hits = call(g, "GET", "/api/search", params=[("dashboardUIDs", "x"), ("dashboardUIDs", "c")]).json()
    assert [h["uid"] for h in hits] == ["c", "x"]


def test_search_pages_with_limit_and_a_one_based_page(g):
    """§3: limit and page (1-based)."""
    for i in range(5):
        save(g, {"uid": f"d{i}", "title": f"D{i}"})
    page2 = call(g, "GET", "/api/search", params={"limit": 2, "page": 2}).json()
    assert [h["uid"] for h in page2] == ["d2", "d3"]


# ---- §4 folders -------------------------------------------------------------------------------
def test_creating_a_folder_answers_the_get_shape_with_version_1(g):
    """§4: POST /api/folders -> 200 same shape as GET, version 1; GET /api/folders lists it."""
    r = call(g, "POST", "/api/folders", json={"uid": "fold1", "title": "Fold"})
    assert r.status_code == 200
    assert r.json() == call(g, "GET", "/api/folders/fold1").json()
    assert (r.json()["version"], r.json()["url"]) == (1, "/dashboards/f/fold1/fold")
    assert call(g, "GET", "/api/folders").json() == [{"id": r.json()["id"], "uid": "fold1", "title": "Fold"}]


def test_creating_an_existing_folder_is_409_and_an_empty_title_is_400(g):
    """§4: existing uid -> 409; empty title -> 400."""
    g.seed_folder("fold1", "Fold")
    assert call(g, "POST", "/api/folders", json={"uid": "fold1", "title": "Again"}).status_code == 409
    assert call(g, "POST", "/api/folders", json={"uid": "fold2", "title": ""}).status_code == 400


def test_an_unknown_folder_and_the_general_folder_are_404_and_general_cannot_be_created(g):
    """§4: GET unknown -> 404; "general" cannot be created/fetched as a real folder."""
    assert call(g, "GET", "/api/folders/nope").status_code == 404
    assert call(g, "GET", "/api/folders/general").status_code == 404
    assert call(g, "POST", "/api/folders", json={"uid": "general", "title": "G"}).status_code == 400


def test_updating_a_folder_with_a_stale_version_is_412_and_overwrite_wins(g):
    """§4: PUT /api/folders/:uid with stale version -> 412 version-mismatch; overwrite:true -> 200."""
    g.seed_folder("fold1", "Fold")
    assert call(g, "PUT", "/api/folders/fold1", json={"title": "New", "version": 1}).json()["version"] == 2
    r = call(g, "PUT", "/api/folders/fold1", json={"title": "Newer", "version": 1})
    assert (r.status_code, r.json()) == (412, {"status": "version-mismatch",
                                               "message": "The folder has been changed by someone else"})
    assert call(g, "PUT", "/api/folders/fold1", json={"title": "Newer", "overwrite": True}).status_code == 200


def test_deleting_a_folder_deletes_its_dashboards(g):
    """§4: DELETE /api/folders/:uid -> 200 {"message": "Folder deleted", "id"}; deletes contained dashboards."""
    folder = g.seed_folder("fold1", "Fold")
    g.seed_dashboard({"uid": "abc", "title": "T"}, folder_uid="fold1")
    r = call(g, "DELETE", "/api/folders/fold1")
    assert (r.status_code, r.json()) == (200, {"message": "Folder deleted", "id": folder["id"]})
    assert g.dashboard("abc") is None


# ---- test controls ----------------------------------------------------------------------------
def test_an_injected_fault_answers_once_then_the_double_behaves_again(g):
    """§0: injected 503/500 with the classic error body; the faulted request changes nothing."""
    g.fail_next("POST", "/api/dashboards/db", 503, times=2)
    g.fail_next("*", "/api/search", 500)
    assert save(g, {"uid": "abc", "title": "T"}).status_code == 503
    assert save(g, {"uid": "abc", "title": "T"}).json() == {"message": "Service Unavailable"}
    r = call(g, "GET", "/api/search")
    assert (r.status_code, r.json()) == (500, {"message": "Internal Server Error"})
    assert g.dashboard("abc") is None
    assert save(g, {"uid": "abc", "title": "T"}).json()["version"] == 1


def test_latency_delays_but_the_double_still_answers(g):
    """Test control: latency applies to every request; the answer is unchanged."""
    g.latency(0.05)
    assert requests.get(g.url + "/api/health", timeout=10).status_code == 200


def test_a_gate_holds_requests_until_that_many_are_in_flight_together(g):
    """Control: gate(method, prefix, n) lets the next n matching requests go only once all n have arrived."""
    from concurrent.futures import ThreadPoolExecutor

    g.gate("GET", "/api/search", 3, timeout=10)
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: call(g, "GET", "/api/search").status_code, range(3)))
    assert answers == [200, 200, 200]
    assert g.max_in_flight >= 3


def test_a_gate_that_never_fills_answers_504_and_changes_nothing(g):
    """Control: one request alone at a gate of 2 is answered 504 after the timeout, and not applied."""
    g.gate("POST", "/api/dashboards/db", 2, timeout=0.2)
    r = save(g, {"uid": "abc", "title": "T"})
    assert r.status_code == 504 and r.json()["message"].startswith("gate:")
    assert g.dashboard("abc") is None
    assert save(g, {"uid": "abc", "title": "T"}).status_code == 200  # the gate is used up


def test_sequential_requests_are_one_in_flight(g):
    """Control: max_in_flight counts requests handled at once; reset_requests starts it again."""
    call(g, "GET", "/api/search")
    call(g, "GET", "/api/search")
    assert g.max_in_flight == 1
    g.reset_requests()
    assert g.max_in_flight == 0


def test_requests_are_recorded_so_writes_can_be_counted(g):
    """Test control: requests holds (method, path, JSON body or None); reset_requests empties it."""
    save(g, {"uid": "abc", "title": "T"})
    call(g, "GET", "/api/search?tag=x")
    assert g.requests == [("POST", "/api/dashboards/db", {"dashboard": {"uid": "abc", "title": "T"}}),
                          ("GET", "/api/search?tag=x", None)]
    g.reset_requests()
    assert g.requests == []


def test_a_stopped_double_refuses_connections():
    """Test control: stopping the server gives connection refused."""
    double = GrafanaDouble(token=TOKEN).start()
    url = double.url
    double.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/api/health", timeout=5)


# ---- §5 alerting provisioning -----------------------------------------------------------------
def test_alert_rule_writes_set_provenance_api_unless_x_disable_provenance_is_present(g):
    """§5: provenance "api" by default, "" with X-Disable-Provenance; POST 201, GET 404 empty, DELETE 204."""
    g.seed_folder("f", "F")
    r = call(g, "POST", f"{PROV}/alert-rules", json=rule("a", folderUID="f", ruleGroup="g", orgID=1))
    assert (r.status_code, r.json()["provenance"]) == (201, "api")
    r2 = call(g, "POST", f"{PROV}/alert-rules", headers={"X-Disable-Provenance": "true"},
              json=rule("b", folderUID="f", ruleGroup="g", orgID=1))
    assert r2.json()["provenance"] == ""
    missing = call(g, "GET", f"{PROV}/alert-rules/nope")
    assert (missing.status_code, missing.content) == (404, b"")
    assert call(g, "DELETE", f"{PROV}/alert-rules/{r2.json()['uid']}").status_code == 204


def test_changing_the_provenance_of_an_api_object_is_refused(g):
    """§5: updating an object with provenance "api" without it -> "cannot change provenance" error."""
    g.seed_folder("f", "F")
    uid = call(g, "POST", f"{PROV}/alert-rules", json=rule("a", folderUID="f", ruleGroup="g", orgID=1)).json()["uid"]
    r = call(g, "PUT", f"{PROV}/alert-rules/{uid}", headers={"X-Disable-Provenance": "true"},
             json=rule("a", folderUID="f", ruleGroup="g", orgID=1))
    assert (r.status_code, r.json()["message"]) == (400, "cannot change provenance from 'api' to ''")


def test_an_alert_rule_missing_a_required_field_is_400(g):
    """§5: required fields (title, condition, data, folderUID, ruleGroup, for, ..., orgID) -> 400."""
    g.seed_folder("f", "F")
    assert call(g, "POST", f"{PROV}/alert-rules", json=rule("a", folderUID="f", ruleGroup="g")).status_code == 400


def test_putting_a_rule_group_replaces_the_whole_group_and_the_path_wins(g):
    """§5: PUT rule group -> 200 echo; rules matched by uid, absent ones deleted; path overrides title/folderUid."""
    g.seed_folder("f", "F")
    path = f"{PROV}/folder/f/rule-groups/grp"
    body = {"title": "ignored", "folderUid": "ignored", "interval": 60,
            "rules": [rule("keep", uid="keep"), rule("drop", uid="drop")]}
    r = call(g, "PUT", path, json=body)
    assert (r.status_code, r.json()["title"], r.json()["folderUid"]) == (200, "grp", "f")
    call(g, "PUT", path, json={"interval": 120, "rules": [rule("keep", uid="keep")]})
    group = call(g, "GET", path).json()
    assert (group["interval"], [x["uid"] for x in group["rules"]]) == (120, ["keep"])
    assert call(g, "GET", f"{PROV}/alert-rules/drop").status_code == 404
    assert call(g, "DELETE", path).status_code == 204
    assert call(g, "GET", path).status_code == 404


def test_contact_points_answer_202_and_redact_secure_settings(g):
    """§5: POST 202 created object; PUT 202 message; DELETE 202 message; secure settings redacted."""
    r = call(g, "POST", f"{PROV}/contact-points",
             json={"name": "oncall", "type": "slack", "settings": {"url": "https://hooks.example/secret"}})
    assert (r.status_code, r.json()["settings"]["url"]) == (202, "[REDACTED]")
    uid = r.json()["uid"]
    assert [c["uid"] for c in call(g, "GET", f"{PROV}/contact-points", params={"name": "oncall"}).json()] == [uid]
    r = call(g, "PUT", f"{PROV}/contact-points/{uid}", json={"name": "oncall", "type": "slack", "settings": {}})
    assert (r.status_code, r.json()) == (202, {"message": "contactpoint updated"})
    assert call(g, "PUT", f"{PROV}/contact-points/nope",
                json={"name": "x", "type": "slack", "settings": {}}).status_code == 404
    r = call(g, "DELETE", f"{PROV}/contact-points/{uid}")
    assert (r.status_code, r.json()) == (202, {"message": "contactpoint deleted"})


def test_the_policy_tree_rejects_an_unknown_receiver_and_delete_resets_it(g):
    """§5: PUT /policies -> 202; receiver not an existing contact point -> 400; DELETE -> 202 default tree."""
    tree = {"receiver": "grafana-default-email", "routes": [{"receiver": "nobody"}]}
    assert call(g, "PUT", f"{PROV}/policies", json=tree).status_code == 400
    tree["routes"][0]["receiver"] = "grafana-default-email"
    r = call(g, "PUT", f"{PROV}/policies", json=tree)
    assert (r.status_code, r.json()) == (202, {"message": "policies updated"})
    assert call(g, "GET", f"{PROV}/policies").json()["provenance"] == "api"
    reset = call(g, "DELETE", f"{PROV}/policies", headers={})
    assert (reset.status_code, reset.json()["receiver"], "routes" in reset.json()) == (202, "grafana-default-email",
                                                                                        False)


def test_mute_timings_and_templates_answer_their_status_codes(g):
    """§5: /mute-timings POST 201, PUT 202, DELETE 204; /templates/{name} PUT 202, DELETE 204."""
    mt = {"name": "weekends", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]}
    assert call(g, "POST", f"{PROV}/mute-timings", json=mt).status_code == 201
    assert call(g, "PUT", f"{PROV}/mute-timings/weekends", json=mt).status_code == 202
    assert call(g, "DELETE", f"{PROV}/mute-timings/weekends").status_code == 204
    assert call(g, "PUT", f"{PROV}/templates/t1", json={"template": "{{ define \"t1\" }}x{{ end }}"}).status_code == 202
    assert call(g, "DELETE", f"{PROV}/templates/t1").status_code == 204
