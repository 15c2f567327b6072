"""A Grafana HTTP API test double, written from tests/doubles/contracts/grafana-http-api.md.

"§N" below points at a section of that contract. The double is a real HTTP server on
127.0.0.1 (stdlib only); its state lives in memory behind one lock. Test controls are plain
methods (fail_next, latency, requests, seed_*, edit_dashboard_in_ui, ...), never HTTP.

    with GrafanaDouble(token="secret-token") as g:
        requests.get(g.url + "/api/health")

Where the contract leaves a choice open, the double picks (and a constructor knob switches):
- grafana_version (default "11.2.0") selects the flagged rules: [<=11.2] 412 name-exists,
  [main/13] 409 + "folderUid" in the save answer, "very old" (< 9) 401 bodies {"message"} only.
- a missing folder on save answers folder_not_found_status (400; the contract says 400 or 404).
- DELETE of a contact point answers contact_point_delete_status (202 as the code; 204 as the docs).
Silent points: legal uid chars are [A-Za-z0-9_-]; folderUid "general" on save is an unknown
folder; deletes of unknown alerting objects answer their success status; the export endpoint
answers 501.
[<=11.2] title checks, from Grafana's source (getExistingDashboardByTitleAndFolder, run after the
version and plugin checks; titles compared by slug, as Grafana's `slug` column):
- a title whose slug is a folder's -> 400 {"status": "name-match", "message": "Dashboard name
  cannot be the same as folder"};
- another dashboard with that slug in the target folder -> without overwrite 412 name-exists (§3);
  with overwrite:true the save TAKES OVER that dashboard: it gets that dashboard's id, uid and
  version, the dashboard named by the posted uid is left as it was, and the answer carries the
  taken-over uid.
"""
from __future__ import annotations

import base64
import copy
import itertools
import json
import random
import re
import string
import threading
import time
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from .server import ServedDouble

COMMIT = "0000000000000000000000000000000000000000"
UNAUTHORIZED = {"extra": None, "message": "Unauthorized", "messageId": "auth.unauthorized",
                "statusCode": 401, "traceID": ""}                                       # §1
INVALID_KEY = {"extra": None, "message": "Invalid API key", "messageId": "api-key.invalid",
               "statusCode": 401, "traceID": ""}                                        # §1
DASH_NOT_FOUND = {"message": "Dashboard not found"}                                     # §3
FOLDER_NOT_FOUND = {"message": "Folder not found"}                                      # §3, §4
BAD_REQUEST = {"message": "bad request data"}
UID_OK = re.compile(r"[A-Za-z0-9_-]*")
DEFAULT_POLICY = {"receiver": "grafana-default-email", "group_by": ["grafana_folder", "alertname"]}
DEFAULT_CONTACT_POINT = {"uid": "default-email", "name": "grafana-default-email", "type": "email",
                         "settings": {"addresses": "<example@email.com>"},
                         "disableResolveMessage": False, "provenance": ""}
SECURE_SETTINGS = {"slack": ("url", "token"), "webhook": ("password", "authorization_credentials"),
                   "pagerduty": ("integrationKey",), "opsgenie": ("apiKey",),
                   "telegram": ("bottoken",), "discord": ("url",), "googlechat": ("url",)}
REDACTED = "[REDACTED]"
RULE_REQUIRED = ("title", "condition", "data", "folderUID", "ruleGroup", "for", "noDataState",
                 "execErrState", "orgID")                                              # §5
RULE_STATES = {"noDataState": ("NoData", "Alerting", "OK"), "execErrState": ("Error", "Alerting", "OK")}



class ApiError(Exception):
    """Raised by a route: answered as `status` with JSON `body` (None = empty body)."""

    def __init__(self, status: int, body=None):
        super().__init__(status, body)
        self.status, self.body = status, body


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def short_uid() -> str:
    return random.choice(string.ascii_lowercase) + "".join(
        random.choices(string.ascii_lowercase + string.digits, k=13))


def _as_int(value) -> int:
    """Go's MustInt: a JSON number becomes an int, anything else (null, string, bool) is 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        return 0
    return int(value)


def _first(query: dict, key: str, default: str = "") -> str:
    return query.get(key, [default])[0]


def _int_param(query: dict, key: str, default: int) -> int:
    """A positive integer query parameter; absent, malformed or < 1 gives `default`."""
    value = _first(query, key)
    return int(value) if value.isdigit() and int(value) > 0 else default


def _param(match: re.Match) -> str:
    """Route template "{name}" or "{name:alt1|alt2}" -> a named regex group."""
    return f"(?P<{match[1]}>{match[2] or '[^/]+'})"


def _walk_routes(route: dict):
    yield route
    for child in route.get("routes") or []:
        yield from _walk_routes(child)


class GrafanaDouble(ServedDouble):
    def __init__(self, token: str | None = "secret-token", *, basic_auth=("admin", "admin"),
                 grafana_version: str = "11.2.0", folder_not_found_status: int = 400,
                 contact_point_delete_status: int = 202):
        super().__init__()
        self.token, self.basic_auth, self.grafana_version = token, basic_auth, grafana_version
        self.folder_not_found_status = folder_not_found_status            # §3: "400 or 404"
        self.contact_point_delete_status = contact_point_delete_status    # §5: 202 (code) or 204 (docs)
        self._ver = tuple(int(x) for x in re.findall(r"\d+", grafana_version)[:3])
        self._lock = threading.RLock()
        self._requests: list = []
        self._faults: list[dict] = []
        self._cuts: list[dict] = []
        self._latency = 0.0
        self._gates: list[dict] = []
        self._in_flight = self._max_in_flight = 0
        self._database_ok = True
        self._next_id = 1
        self._folders: dict[str, dict] = {}
        self._dashboards: dict[str, dict] = {}   # uid -> {id, json, folder_uid, created, ...}
        self._versions: dict[str, list] = {}     # uid -> dashboard_version rows
        self._rules: dict[str, dict] = {}
        self._rule_ids = itertools.count(1)
        self._groups: dict[tuple, int] = {}      # (folderUid, group) -> interval seconds
        self._contact_points = {DEFAULT_CONTACT_POINT["uid"]: copy.deepcopy(DEFAULT_CONTACT_POINT)}
        self._policy = dict(copy.deepcopy(DEFAULT_POLICY), provenance="")
        self._mute_timings: dict[str, dict] = {}
        self._templates: dict[str, dict] = {}

    # ---- test controls ------------------------------------------------------------------
    def fail_next(self, method: str, path_prefix: str, status: int, body=None, times: int = 1) -> None:
        """The next `times` requests whose method matches (`*` = any) and whose path (query
        string included) starts with `path_prefix` are answered `status` + `body` and do nothing.
        `body`: dict/list -> JSON, str -> text, bytes -> raw (b"" = empty). Default:
        {"message": <HTTP reason phrase>}, e.g. "Internal Server Error" as in §0."""
        if body is None:
            body = {"message": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"}
        with self._lock:
            self._faults.append({"method": method.upper(), "prefix": path_prefix,
                                 "status": status, "body": body, "times": times})

    def cut_next(self, method: str, path_prefix: str) -> None:
        """The next matching request is carried out, but its answer breaks off halfway through the body
        (Content-Length promises more than is sent, then the connection closes): a lost answer."""
        with self._lock:
            self._cuts.append({"method": method.upper(), "prefix": path_prefix})

    def latency(self, seconds: float) -> None:
        self._latency = float(seconds)

    def gate(self, method: str, path_prefix: str, parties: int, timeout: float = 10.0) -> None:
        """The next `parties` requests matching like fail_next each wait until all `parties` have arrived,
        then go on; if they are not all in flight together within `timeout` s, each waiting one is
        answered 504 {"message": "gate: ..."} and does nothing, and the gate is gone. Proves requests
        run concurrently."""
        with self._lock:
            self._gates.append({"method": method.upper(), "prefix": path_prefix, "left": parties,
                                "barrier": threading.Barrier(parties, timeout=timeout)})

    @property
    def max_in_flight(self) -> int:
        """The most requests the double was handling at once since it started (or reset_requests)."""
        with self._lock:
            return self._max_in_flight

    def set_database_ok(self, ok: bool) -> None:
        self._database_ok = ok

    @property
    def requests(self) -> list:
        """Snapshot of (method, path including query string, parsed JSON body or None)."""
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self._max_in_flight = self._in_flight

    def seed_folder(self, uid: str, title: str, parent_uid: str | None = None) -> dict:
        with self._lock:
            if parent_uid is not None and parent_uid not in self._folders:
                raise ValueError(f"unknown parent folder {parent_uid!r}")
            now = _now()
            self._folders[uid] = {"id": self._new_id(), "uid": uid, "title": title, "version": 1,
                                  "parentUid": parent_uid, "created": now, "updated": now}
            return copy.deepcopy(self._folders[uid])

    def seed_dashboard(self, dashboard: dict, folder_uid: str | None = None, *,
                       provisioned: bool = False, plugin_id: str | None = None) -> dict:
        """Store `dashboard` directly (no validation). Keeps its uid (generated if absent) and
        its version if it is a positive int (else 1); the id is always assigned here."""
        with self._lock:
            if folder_uid is not None and folder_uid not in self._folders:
                raise ValueError(f"unknown folder {folder_uid!r}")
            dash = copy.deepcopy(dashboard)
            uid = dash.get("uid") or short_uid()
            old = self._dashboards.get(uid)
            dash.update(id=old["id"] if old else self._new_id(), uid=uid,
                        version=_as_int(dash.get("version")) or 1)
            now = _now()
            self._dashboards[uid] = {"id": dash["id"], "json": dash, "folder_uid": folder_uid,
                                     "created": now, "updated": now, "provisioned": provisioned,
                                     "plugin_id": plugin_id}
            self._versions[uid] = [self._version_row(self._dashboards[uid], 0, "")]
            return copy.deepcopy(dash)

    def edit_dashboard_in_ui(self, uid: str, mutate) -> int:
        """Apply `mutate(dashboard_json)` (in place, or return a new dict) as a UI save would:
        version + 1 and a new dashboard_version row. Returns the new version."""
        with self._lock:
            rec = self._dashboards[uid]
            dash = copy.deepcopy(rec["json"])
            dash = mutate(dash) or dash
            parent = rec["json"]["version"]
            dash.update(id=rec["id"], uid=uid, version=parent + 1)
            rec.update(json=dash, updated=_now())
            self._versions[uid].append(self._version_row(rec, parent, ""))
            return dash["version"]

    def dashboard(self, uid: str) -> dict | None:
        with self._lock:
            rec = self._dashboards.get(uid)
            return copy.deepcopy(rec["json"]) if rec else None

    def dashboard_folder(self, uid: str) -> str | None:
        with self._lock:
            return self._dashboards[uid]["folder_uid"]

    def dashboard_versions(self, uid: str) -> list:
        """The dashboard_version rows (§3: one per save, with parentVersion and message)."""
        with self._lock:
            return copy.deepcopy(self._versions.get(uid, []))

    # ---- internals (called with the lock held) ------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _version_row(self, rec: dict, parent: int, message: str) -> dict:
        return {"dashboardId": rec["id"], "dashboardUid": rec["json"]["uid"], "parentVersion": parent,
                "version": rec["json"]["version"], "created": rec["updated"], "createdBy": "admin",
                "message": message, "data": copy.deepcopy(rec["json"])}

    def _folder_missing(self):
        return ApiError(self.folder_not_found_status, FOLDER_NOT_FOUND)

    def _folder_url(self, uid: str) -> str:
        return f"/dashboards/f/{uid}/{slugify(self._folders[uid]['title'])}"


class _Handler(BaseHTTPRequestHandler):
    """One request. Routes return (status, body); they raise ApiError for error answers."""

    ROUTES = [
        ("GET", "/api/health", "health"), ("HEAD", "/api/health", "health"),
        ("GET", "/healthz", "healthz"),
        ("POST", "/api/dashboards/db", "save_dashboard"),
        ("GET", "/api/dashboards/uid/{uid}", "get_dashboard"),
        ("DELETE", "/api/dashboards/uid/{uid}", "delete_dashboard"),
        ("GET", "/api/search", "search"),
        ("GET", "/api/folders", "list_folders"), ("POST", "/api/folders", "create_folder"),
        ("GET", "/api/folders/{uid}", "get_folder"), ("PUT", "/api/folders/{uid}", "update_folder"),
        ("DELETE", "/api/folders/{uid}", "delete_folder"),
        ("GET", "/api/v1/provisioning/alert-rules", "list_rules"),
        ("POST", "/api/v1/provisioning/alert-rules", "create_rule"),
        ("GET", "/api/v1/provisioning/alert-rules/export", "not_implemented"),
        ("GET", "/api/v1/provisioning/alert-rules/{uid}", "get_rule"),
        ("PUT", "/api/v1/provisioning/alert-rules/{uid}", "update_rule"),
        ("DELETE", "/api/v1/provisioning/alert-rules/{uid}", "delete_rule"),
        ("GET", "/api/v1/provisioning/folder/{folder}/rule-groups/{group}", "get_group"),
        ("PUT", "/api/v1/provisioning/folder/{folder}/rule-groups/{group}", "put_group"),
        ("DELETE", "/api/v1/provisioning/folder/{folder}/rule-groups/{group}", "delete_group"),
        ("GET", "/api/v1/provisioning/contact-points", "list_contact_points"),
        ("POST", "/api/v1/provisioning/contact-points", "create_contact_point"),
        ("PUT", "/api/v1/provisioning/contact-points/{uid}", "update_contact_point"),
        ("DELETE", "/api/v1/provisioning/contact-points/{uid}", "delete_contact_point"),
        ("GET", "/api/v1/provisioning/policies", "get_policies"),
        ("PUT", "/api/v1/provisioning/policies", "put_policies"),
        ("DELETE", "/api/v1/provisioning/policies", "reset_policies"),
        ("GET", "/api/v1/provisioning/{kind:mute-timings|templates}", "list_named"),
        ("GET", "/api/v1/provisioning/{kind:mute-timings|templates}/{name}", "get_named"),
        ("POST", "/api/v1/provisioning/{kind:mute-timings}", "create_named"),
        ("PUT", "/api/v1/provisioning/{kind:mute-timings|templates}/{name}", "put_named"),
        ("DELETE", "/api/v1/provisioning/{kind:mute-timings|templates}/{name}", "delete_named"),
    ]
    ROUTES = [(m, re.compile(re.sub(r"\{(\w+)(?::([^}]+))?\}", _param, p)), h) for m, p, h in ROUTES]
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    @property
    def g(self) -> GrafanaDouble:
        return self.server.double

    # ---- plumbing -----------------------------------------------------------------------
    def _handle(self) -> None:
        g, method = self.g, self.command
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urlsplit(self.path)
        with g._lock:
            g._requests.append((method, self.path, body))
            g._in_flight += 1
            self._counted = True
            g._max_in_flight = max(g._max_in_flight, g._in_flight)
            gate = next((x for x in g._gates if x["method"] in ("*", method)
                         and self.path.startswith(x["prefix"])), None)
            if gate:
                gate["left"] -= 1
                if gate["left"] <= 0:
                    g._gates.remove(gate)
        try:
            if gate:
                try:
                    gate["barrier"].wait()
                except threading.BrokenBarrierError:
                    with g._lock:
                        if gate in g._gates:
                            g._gates.remove(gate)   # a broken gate holds nobody else
                    return self._send(504, {"message": f"gate: fewer than {gate['barrier'].parties} requests "
                                                       f"were in flight together"})
            self._respond(g, method, url, body)
        finally:
            self._answered()

    def _answered(self) -> None:
        """The request stops counting as in flight: before its answer is sent (a client that has its
        answer may already send the next request), or when the handler ends without one."""
        if getattr(self, "_counted", False):
            self._counted = False
            with self.g._lock:
                self.g._in_flight -= 1

    def _respond(self, g: "GrafanaDouble", method: str, url, body) -> None:
        if g._latency:
            time.sleep(g._latency)
        with g._lock:
            fault = next((f for f in g._faults if f["method"] in ("*", method)
                          and self.path.startswith(f["prefix"])), None)
            if fault:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    g._faults.remove(fault)
            else:
                try:
                    status, out = self._dispatch(method, url.path, parse_qs(url.query, True), body)
                except ApiError as e:
                    status, out = e.status, e.body
        if fault:
            return self._send(fault["status"], fault["body"])
        with g._lock:
            cut = next((c for c in g._cuts if c["method"] in ("*", method) and self.path.startswith(c["prefix"])),
                       None)
            if cut:
                g._cuts.remove(cut)
        if cut:
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return None
        if url.path == "/api/health":  # §2: pretty-printed, 2-space indent
            return self._send(status, json.dumps(out, indent=2).encode())
        self._send(status, out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    def _dispatch(self, method: str, path: str, query: dict, body):
        if path not in ("/api/health", "/healthz"):   # §1: only health needs no auth
            self._authenticate()
        for m, pattern, name in self.ROUTES:
            match = pattern.fullmatch(path)
            if m == method and match:
                return getattr(self, name)(query, body, **{k: unquote(v) for k, v in match.groupdict().items()})
        raise ApiError(404, {"message": "Not Found"})

    def _send(self, status: int, body) -> None:
        if body is None or isinstance(body, bytes):
            data, ctype = body or b"", "application/json"
        elif isinstance(body, str):
            data, ctype = body.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(body).encode(), "application/json"
        self._answered()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _authenticate(self) -> None:
        g = self.g
        scheme, _, cred = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            if g.token is not None and cred.strip() == g.token:
                return
            error = INVALID_KEY
        else:
            if scheme.lower() == "basic" and g.basic_auth:
                try:
                    user, _, password = base64.b64decode(cred.strip()).decode().partition(":")
                except ValueError:
                    user = password = None
                if (user, password) == tuple(g.basic_auth):
                    return
            error = UNAUTHORIZED
        raise ApiError(401, {"message": error["message"]} if g._ver[0] < 9 else error)

    # ---- health (§2) ----------------------------------------------------------------------
    def health(self, query, body):
        ok = self.g._database_ok
        out = {"commit": COMMIT, "database": "ok" if ok else "failing", "version": self.g.grafana_version}
        return (200 if ok else 503), out

    def healthz(self, query, body):
        return 200, "Ok"

    # ---- dashboards (§3) -----------------------------------------------------------------
    def save_dashboard(self, query, body):
        g = self.g
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            raise ApiError(400, BAD_REQUEST)
        dash, message = copy.deepcopy(body["dashboard"]), body.get("message") or ""
        overwrite = body.get("overwrite") is True
        title, uid = dash.get("title"), dash.get("uid") or ""
        if not isinstance(title, str) or not title.strip():
            raise ApiError(400, {"status": "empty-name", "message": "Dashboard title cannot be empty"})
        if len(uid) > 40:
            raise ApiError(400, {"message": "uid too long, max 40 characters"})
        if not UID_OK.fullmatch(uid):
            raise ApiError(400, {"message": "uid contains illegal characters"})
        if len(message) > 500:
            raise ApiError(400, {"message": "message too long, max 500 characters"})
        folder_uid = self._target_folder(body)
        existing, dash_id = None, _as_int(dash.get("id"))
        if dash_id > 0:
            existing = next((d for d in g._dashboards.values() if d["id"] == dash_id), None)
            if existing is None:
                raise ApiError(404, {"status": "not-found", "message": "Dashboard not found"})
            if uid and g._dashboards.get(uid, existing) is not existing:
                raise ApiError(400, {"message": "A dashboard with the same uid already exists"})
        elif uid:
            existing = g._dashboards.get(uid)
        if existing is not None and not overwrite:
            if _as_int(dash.get("version")) != existing["json"]["version"]:
                if g._ver[0] >= 13:
                    raise ApiError(409, {"message": "Dashboard already exists. Use overwrite flag to update."})
                raise ApiError(412, {"status": "version-mismatch",
                                     "message": "The dashboard has been changed by someone else"})
            if existing["plugin_id"]:
                raise ApiError(412, {"status": "plugin-dashboard",
                                     "message": f"The dashboard belongs to plugin {existing['plugin_id']}."})
        if g._ver[:2] <= (11, 2):
            existing = self._title_check(dash, folder_uid, existing, overwrite)
        if existing is not None and existing["provisioned"]:
            raise ApiError(400, {"message": "Cannot save provisioned dashboard"})
        rec = self._store_dashboard(dash, folder_uid, existing, message)
        uid, version = rec["json"]["uid"], rec["json"]["version"]
        out = {"id": rec["id"], "uid": uid, "url": f"/d/{uid}/{slugify(title)}", "status": "success",
               "version": version, "slug": slugify(title)}
        if g._ver[0] >= 13:
            out["folderUid"] = folder_uid or ""
        return 200, out

    def _title_check(self, dash: dict, folder_uid, existing, overwrite: bool):
        """[<=11.2] getExistingDashboardByTitleAndFolder: the record the save lands on (see the docstring)."""
        g, slug = self.g, slugify(dash["title"])
        if any(slugify(f["title"]) == slug for f in g._folders.values()):
            raise ApiError(400, {"status": "name-match", "message": "Dashboard name cannot be the same as folder"})
        clash = next((d for d in g._dashboards.values() if d is not existing and d["folder_uid"] == folder_uid
                      and slugify(d["json"].get("title", "")) == slug), None)
        if clash is None:
            return existing
        if not overwrite:
            raise ApiError(412, {"status": "name-exists",
                                 "message": "A dashboard with the same name in the folder already exists"})
        dash["uid"] = clash["json"]["uid"]   # the takeover: its id, uid and version
        return clash

    def _target_folder(self, body: dict) -> str | None:
        """folderUid wins over the deprecated folderId; neither (or "" / 0) means root."""
        g, folder_uid = self.g, body.get("folderUid")
        if folder_uid is not None:
            if folder_uid == "":
                return None
            if folder_uid not in g._folders:
                raise g._folder_missing()
            return folder_uid
        folder_id = _as_int(body.get("folderId"))
        if folder_id:
            found = [f["uid"] for f in g._folders.values() if f["id"] == folder_id]
            if not found:
                raise g._folder_missing()
            return found[0]
        return None

    def _store_dashboard(self, dash: dict, folder_uid, existing, message: str) -> dict:
        g, now = self.g, _now()
        if existing is None:
            uid = dash.get("uid") or short_uid()
            rec = {"id": g._new_id(), "created": now, "provisioned": False, "plugin_id": None}
            parent, versions = 0, []
        else:
            rec, old_uid = existing, existing["json"]["uid"]
            uid = dash.get("uid") or old_uid
            parent = existing["json"]["version"]
            del g._dashboards[old_uid]
            versions = g._versions.pop(old_uid, [])
        dash.update(id=rec["id"], uid=uid, version=parent + 1)
        rec.update(json=dash, folder_uid=folder_uid, updated=now)
        g._dashboards[uid] = rec
        g._versions[uid] = versions + [g._version_row(rec, parent, message)]
        return rec

    def get_dashboard(self, query, body, uid):
        g = self.g
        rec = g._dashboards.get(uid)
        if rec is None:
            raise ApiError(404, DASH_NOT_FOUND)
        folder, slug = g._folders.get(rec["folder_uid"]), slugify(rec["json"].get("title", ""))
        perms = {"canAdd": True, "canEdit": True, "canDelete": True}
        meta = {"type": "db", "canSave": True, "canEdit": True, "canAdmin": True, "canDelete": True,
                "canStar": True, "slug": slug, "url": f"/d/{uid}/{slug}", "expires": "0001-01-01T00:00:00Z",
                "created": rec["created"], "updated": rec["updated"], "updatedBy": "admin",
                "createdBy": "admin", "version": rec["json"]["version"], "hasAcl": False, "isFolder": False,
                "folderId": folder["id"] if folder else 0, "folderUid": folder["uid"] if folder else "",
                "folderTitle": folder["title"] if folder else "General",
                "folderUrl": g._folder_url(folder["uid"]) if folder else "",
                "provisioned": rec["provisioned"], "provisionedExternalId": "",
                "annotationsPermissions": {"dashboard": dict(perms), "organization": dict(perms)},
                "publicDashboardEnabled": False}
        return 200, {"dashboard": copy.deepcopy(rec["json"]), "meta": meta}

    def delete_dashboard(self, query, body, uid):
        g = self.g
        rec = g._dashboards.get(uid)
        if rec is None:
            raise ApiError(404, DASH_NOT_FOUND)
        if rec["provisioned"]:
            raise ApiError(400, {"message": "provisioned dashboard cannot be deleted"})
        del g._dashboards[uid]
        g._versions.pop(uid, None)
        title = rec["json"].get("title", "")
        return 200, {"title": title, "message": f"Dashboard {title} deleted", "uid": uid}

    # ---- search (§3 GET /api/search) -------------------------------------------------------
    def search(self, query, body):
        g, kind = self.g, _first(query, "type")
        text, tags = _first(query, "query").lower(), query.get("tag", [])
        uids, folder_uids = query.get("dashboardUIDs"), query.get("folderUIDs")
        hits = []
        if kind != "dash-db":
            hits += [self._hit("dash-folder", f["id"], f["uid"], f["title"], g._folder_url(f["uid"]), [],
                               f["parentUid"]) for f in g._folders.values()]
        if kind != "dash-folder":
            hits += [self._hit("dash-db", d["id"], uid, d["json"].get("title", ""),
                               f"/d/{uid}/{slugify(d['json'].get('title', ''))}",
                               list(d["json"].get("tags") or []), d["folder_uid"])
                     for uid, d in g._dashboards.items()]
        hits = [h for h in hits if text in h["title"].lower() and all(t in h["tags"] for t in tags)
                and (uids is None or h["uid"] in uids)
                and (folder_uids is None or h.get("folderUid", "general") in folder_uids)
                and _first(query, "starred") != "true"]          # nothing is ever starred here
        hits.sort(key=lambda h: (h["title"].lower(), h["uid"]))
        limit, page = min(_int_param(query, "limit", 1000), 5000), _int_param(query, "page", 1)
        return 200, hits[(page - 1) * limit:page * limit]

    def _hit(self, kind, id_, uid, title, url, tags, folder_uid):
        hit = {"id": id_, "uid": uid, "title": title, "uri": f"db/{slugify(title)}", "url": url,
               "slug": "", "type": kind, "tags": tags, "isStarred": False, "sortMeta": 0}
        if folder_uid:   # root items carry no folder* keys
            folder = self.g._folders[folder_uid]
            hit.update(folderId=folder["id"], folderUid=folder_uid, folderTitle=folder["title"],
                       folderUrl=self.g._folder_url(folder_uid))
        return hit

    # ---- folders (§4) ----------------------------------------------------------------------
    def _folder_body(self, f: dict, full: bool = True) -> dict:
        out = {"id": f["id"], "uid": f["uid"], "title": f["title"]}
        if full:
            out.update(url=self.g._folder_url(f["uid"]), hasAcl=False, canSave=True, canEdit=True,
                       canAdmin=True, canDelete=True, createdBy="admin", created=f["created"],
                       updatedBy="admin", updated=f["updated"], version=f["version"])
        if f["parentUid"]:
            out["parentUid"] = f["parentUid"]
            if full:
                chain, p = [], f["parentUid"]
                while p:
                    chain.insert(0, self._folder_body(self.g._folders[p], full=False))
                    p = self.g._folders[p]["parentUid"]
                out["parents"] = chain
        return out

    def list_folders(self, query, body):
        parent = _first(query, "parentUid") or None
        found = sorted((f for f in self.g._folders.values() if f["parentUid"] == parent),
                       key=lambda f: (f["title"].lower(), f["uid"]))
        limit, page = _int_param(query, "limit", 1000), _int_param(query, "page", 1)
        return 200, [self._folder_body(f, full=False) for f in found[(page - 1) * limit:page * limit]]

    def _folder(self, uid: str) -> dict:
        if uid not in self.g._folders:
            raise ApiError(404, FOLDER_NOT_FOUND)
        return self.g._folders[uid]

    def get_folder(self, query, body, uid):
        return 200, self._folder_body(self._folder(uid))

    def create_folder(self, query, body):
        g = self.g
        if not isinstance(body, dict):
            raise ApiError(400, BAD_REQUEST)
        title, uid, parent = body.get("title"), body.get("uid") or short_uid(), body.get("parentUid") or None
        if not isinstance(title, str) or not title.strip():
            raise ApiError(400, {"message": "Folder title cannot be empty"})
        if uid == "general":
            raise ApiError(400, {"message": "uid general is reserved for the root folder"})
        if uid in g._folders:
            raise ApiError(409, {"message": "Folder already exists"})
        if parent is not None and parent not in g._folders:
            raise g._folder_missing()
        return 200, self._folder_body(g.seed_folder(uid, title, parent))

    def update_folder(self, query, body, uid):
        folder = self._folder(uid)
        if not isinstance(body, dict):
            raise ApiError(400, BAD_REQUEST)
        if not isinstance(body.get("title"), str) or not body["title"].strip():
            raise ApiError(400, {"message": "Folder title cannot be empty"})
        if body.get("overwrite") is not True and _as_int(body.get("version")) != folder["version"]:
            raise ApiError(412, {"status": "version-mismatch",
                                 "message": "The folder has been changed by someone else"})
        folder.update(title=body["title"], version=folder["version"] + 1, updated=_now())
        return 200, self._folder_body(folder)

    def delete_folder(self, query, body, uid):
        g, folder = self.g, self._folder(uid)
        doomed, grew = {uid}, True
        while grew:   # the folder and all its descendants
            more = {f["uid"] for f in g._folders.values() if f["parentUid"] in doomed}
            grew, doomed = not more <= doomed, doomed | more
        rules = [r for r in g._rules.values() if r["folderUID"] in doomed]
        if rules and _first(query, "forceDeleteRules") != "true":
            raise ApiError(400, {"message": "folder contains alert rules"})
        for r in rules:
            del g._rules[r["uid"]]
        g._groups = {k: v for k, v in g._groups.items() if k[0] not in doomed}
        for d_uid in [u for u, d in g._dashboards.items() if d["folder_uid"] in doomed]:
            del g._dashboards[d_uid]
            g._versions.pop(d_uid, None)
        for f_uid in doomed:
            del g._folders[f_uid]
        return 200, {"message": "Folder deleted", "id": folder["id"]}

    # ---- alerting provisioning (§5) ---------------------------------------------------------
    def not_implemented(self, query, body):
        raise ApiError(501, {"message": "not implemented by the Grafana test double"})

    def _provenance(self) -> str:
        return "" if "X-Disable-Provenance" in self.headers else "api"

    def _check_provenance(self, stored: dict | None) -> None:
        old, new = (stored or {}).get("provenance") or "", self._provenance()
        if old and old != new:
            raise ApiError(400, {"message": f"cannot change provenance from '{old}' to '{new}'"})

    def _valid_rule(self, rule) -> dict:
        if not isinstance(rule, dict):
            raise ApiError(400, BAD_REQUEST)
        missing = [k for k in RULE_REQUIRED if rule.get(k) in (None, "", [], {})]
        if missing:
            raise ApiError(400, {"message": f"invalid alert rule: missing {', '.join(missing)}"})
        for key, allowed in RULE_STATES.items():
            if rule[key] not in allowed:
                raise ApiError(400, {"message": f"invalid alert rule: {key} must be one of {', '.join(allowed)}"})
        if not isinstance(rule["data"], list) or rule["condition"] not in {
                q.get("refId") for q in rule["data"] if isinstance(q, dict)}:
            raise ApiError(400, {"message": "invalid alert rule: condition is not the refId of a query in data"})
        if rule["folderUID"] not in self.g._folders:
            raise ApiError(400, {"message": f"invalid alert rule: folder {rule['folderUID']} does not exist"})
        return rule

    def _refuse_title_clash(self, rules: list, ignore: set) -> None:
        seen = set()
        for rule in rules:
            key = (rule["folderUID"], rule["title"])
            if key in seen or any((r["folderUID"], r["title"]) == key and r["uid"] not in ignore
                                  for r in self.g._rules.values()):
                raise ApiError(400, {"message": "a rule with the same title already exists in the folder"})
            seen.add(key)

    def _store_rule(self, rule: dict, existing: dict | None = None) -> dict:
        g, r = self.g, copy.deepcopy(rule)
        for key, default in (("annotations", {}), ("labels", {}), ("isPaused", False)):
            r.setdefault(key, default)
        r.update(id=existing["id"] if existing else next(g._rule_ids),
                 uid=(existing or r).get("uid") or short_uid(), updated=_now(), provenance=self._provenance())
        g._rules[r["uid"]] = r
        g._groups.setdefault((r["folderUID"], r["ruleGroup"]), 60)
        self._prune_groups()
        return copy.deepcopy(r)

    def _prune_groups(self) -> None:
        g = self.g
        used = {(r["folderUID"], r["ruleGroup"]) for r in g._rules.values()}
        g._groups = {k: v for k, v in g._groups.items() if k in used}

    def _group_rules(self, folder: str, group: str) -> list:
        return [r for r in self.g._rules.values() if (r["folderUID"], r["ruleGroup"]) == (folder, group)]

    def list_rules(self, query, body):
        return 200, copy.deepcopy(list(self.g._rules.values()))

    def get_rule(self, query, body, uid):
        if uid not in self.g._rules:
            raise ApiError(404)
        return 200, copy.deepcopy(self.g._rules[uid])

    def create_rule(self, query, body):
        rule = self._valid_rule(body)
        if rule.get("uid") in self.g._rules:
            raise ApiError(409, {"message": "a rule with this uid already exists"})
        self._refuse_title_clash([rule], set())
        return 201, self._store_rule(rule)

    def update_rule(self, query, body, uid):
        existing = self.g._rules.get(uid)
        if existing is None:
            raise ApiError(404)
        rule = dict(self._valid_rule(body), uid=uid)
        self._refuse_title_clash([rule], {uid})
        self._check_provenance(existing)
        return 200, self._store_rule(rule, existing)

    def delete_rule(self, query, body, uid):
        if uid in self.g._rules:
            self._check_provenance(self.g._rules[uid])
            del self.g._rules[uid]
            self._prune_groups()
        return 204, None

    def get_group(self, query, body, folder, group):
        g = self.g
        if (folder, group) not in g._groups:
            raise ApiError(404)
        return 200, {"title": group, "folderUid": folder, "interval": g._groups[(folder, group)],
                     "rules": copy.deepcopy(self._group_rules(folder, group))}

    def put_group(self, query, body, folder, group):
        """Replace the whole group: rules matched by uid, absent ones deleted; path wins."""
        g = self.g
        if not isinstance(body, dict) or not isinstance(body.get("rules", []), list) or not all(
                isinstance(r, dict) for r in body.get("rules", [])):
            raise ApiError(400, BAD_REQUEST)
        interval = body.get("interval")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
            raise ApiError(400, {"message": "invalid rule group: interval must be a positive integer (seconds)"})
        rules = [self._valid_rule(dict(r, folderUID=folder, ruleGroup=group, orgID=r.get("orgID", 1)))
                 for r in body.get("rules", [])]
        current = {r["uid"]: r for r in self._group_rules(folder, group)}
        kept = {r["uid"] for r in rules if r.get("uid")}
        self._refuse_title_clash(rules, kept | set(current))
        moved = {u: g._rules[u] for u in kept if u in g._rules and u not in current}
        for stored in list(current.values()) + list(moved.values()):
            self._check_provenance(stored)
        for uid in list(current) + list(moved):
            del g._rules[uid]          # re-inserted below in the body's order
        for rule in rules:
            self._store_rule(rule, current.get(rule.get("uid")) or moved.get(rule.get("uid")))
        if rules:
            g._groups[(folder, group)] = interval
        self._prune_groups()
        return 200, dict(body, title=group, folderUid=folder)

    def delete_group(self, query, body, folder, group):
        doomed = self._group_rules(folder, group)
        for rule in doomed:
            self._check_provenance(rule)
        for rule in doomed:
            del self.g._rules[rule["uid"]]
        self._prune_groups()
        return 204, None

    def _contact_point_out(self, cp: dict) -> dict:
        out = copy.deepcopy(cp)
        for key in SECURE_SETTINGS.get(cp["type"], ()):
            if key in out["settings"]:
                out["settings"][key] = REDACTED
        return out

    def _valid_contact_point(self, body) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, BAD_REQUEST)
        for key, kind in (("name", str), ("type", str), ("settings", dict)):
            if not isinstance(body.get(key), kind) or (kind is str and not body[key].strip()):
                raise ApiError(400, {"message": f"invalid contact point: {key} is required"})
        return {"name": body["name"], "type": body["type"], "settings": copy.deepcopy(body["settings"]),
                "disableResolveMessage": body.get("disableResolveMessage") is True}

    def list_contact_points(self, query, body):
        name = _first(query, "name") or None
        return 200, [self._contact_point_out(c) for c in self.g._contact_points.values()
                     if name in (None, c["name"])]

    def create_contact_point(self, query, body):
        g, cp = self.g, self._valid_contact_point(body)
        cp.update(uid=body.get("uid") or short_uid(), provenance=self._provenance())
        if cp["uid"] in g._contact_points:
            raise ApiError(400, {"message": "a contact point with this uid already exists"})
        g._contact_points[cp["uid"]] = cp
        return 202, self._contact_point_out(cp)

    def update_contact_point(self, query, body, uid):
        stored = self.g._contact_points.get(uid)
        if stored is None:
            raise ApiError(404, {"message": "contact point not found"})
        cp = self._valid_contact_point(body)
        self._check_provenance(stored)
        for key, value in cp["settings"].items():   # a redacted secret sent back keeps its value
            if value == REDACTED and key in stored["settings"]:
                cp["settings"][key] = stored["settings"][key]
        stored.update(cp, provenance=self._provenance())
        return 202, {"message": "contactpoint updated"}

    def delete_contact_point(self, query, body, uid):
        g, stored = self.g, self.g._contact_points.get(uid)
        if stored is not None:
            self._check_provenance(stored)
            del g._contact_points[uid]
        status = g.contact_point_delete_status
        return status, (None if status == 204 else {"message": "contactpoint deleted"})

    def get_policies(self, query, body):
        return 200, copy.deepcopy(self.g._policy)

    def put_policies(self, query, body):
        g = self.g
        if not isinstance(body, dict) or not body.get("receiver"):
            raise ApiError(400, {"message": "invalid object specification: root route must have a receiver"})
        names = {c["name"] for c in g._contact_points.values()}
        for route in _walk_routes(body):
            if not isinstance(route, dict):
                raise ApiError(400, BAD_REQUEST)
            if route.get("receiver") and route["receiver"] not in names:
                raise ApiError(400, {"message": "invalid object specification: "
                                                f"receiver '{route['receiver']}' does not exist"})
            for name in route.get("mute_time_intervals") or []:
                if name not in g._mute_timings:
                    raise ApiError(400, {"message": "invalid object specification: "
                                                    f"mute time interval '{name}' does not exist"})
        self._check_provenance(g._policy)
        g._policy = dict(copy.deepcopy(body), provenance=self._provenance())
        return 202, {"message": "policies updated"}

    def reset_policies(self, query, body):
        self.g._policy = dict(copy.deepcopy(DEFAULT_POLICY), provenance="")
        return 202, copy.deepcopy(self.g._policy)

    def _named_store(self, kind: str) -> dict:
        return self.g._mute_timings if kind == "mute-timings" else self.g._templates

    def _valid_named(self, kind: str, body, name) -> dict:
        if kind == "templates" and isinstance(body, dict) and isinstance(body.get("template"), str):
            return {"name": name, "template": body["template"], "provenance": self._provenance()}
        if kind == "mute-timings" and isinstance(body, dict) and isinstance(name, str) and name \
                and isinstance(body.get("time_intervals", []), list):
            return {"name": name, "time_intervals": copy.deepcopy(body.get("time_intervals", [])),
                    "provenance": self._provenance()}
        raise ApiError(400, BAD_REQUEST)

    def list_named(self, query, body, kind):
        return 200, copy.deepcopy(list(self._named_store(kind).values()))

    def get_named(self, query, body, kind, name):
        store = self._named_store(kind)
        if name not in store:
            raise ApiError(404)
        return 200, copy.deepcopy(store[name])

    def create_named(self, query, body, kind):
        store, item = self._named_store(kind), self._valid_named(
            kind, body, body.get("name") if isinstance(body, dict) else None)
        if item["name"] in store:
            raise ApiError(409, {"message": f"a mute timing named '{item['name']}' already exists"})
        store[item["name"]] = item
        return 201, copy.deepcopy(item)

    def put_named(self, query, body, kind, name):
        store = self._named_store(kind)
        if kind == "mute-timings" and name not in store:   # templates: PUT creates
            raise ApiError(404)
        item = self._valid_named(kind, body, name)
        self._check_provenance(store.get(name))
        store[name] = item
        return 202, copy.deepcopy(item)

    def delete_named(self, query, body, kind, name):
        store = self._named_store(kind)
        if name in store:
            self._check_provenance(store[name])
            del store[name]
        return 204, None


GrafanaDouble.handler = _Handler
