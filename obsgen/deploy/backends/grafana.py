"""Grafana: the environment's folder and the dashboards in it, through the classic /api HTTP surface.

Ownership: a dashboard is obsgen's only when it is in this service's and environment's folder (uid
derived from both) AND carries their marker tag (`obsgen:<service>:<env>`). Only that folder's marked
dashboards are read, plus whatever holds a desired uid (to refuse it), so other environments, other
services and hand-made dashboards never show in a plan and are never pruned. A desired uid held by a
dashboard obsgen does not own is refused, --force or not.

Saves never send `overwrite`: a create is only a create (with `overwrite`, Grafana up to 11.2 lets a
create take over another dashboard of the same title in the folder), and an update sends the version
that was read, so a dashboard edited since answers 412 (409 on Grafana 13) and the apply stops. --force
overrides that version conflict on an owned dashboard and nothing else: obsgen reads the dashboard again,
checks it is still its own, and saves with the version it has now. The uid of every save answer must be
the uid sent. Unchanged dashboards are never re-posted (every save bumps Grafana's version).

The folder is written first; the dashboard saves and deletes then run in parallel (`writes.write_all`).
`restore` puts back a dashboard only when the live one is still what this apply left there.
"""
from __future__ import annotations

import json
from functools import partial
from typing import Any

from obsgen import __version__
from obsgen.compile import conventions as c
from obsgen.model.artifact import Artifact
from obsgen.deploy import normalise
from obsgen.deploy.backends.base import Backend, BackendError, ConflictError, connect, parallel
from obsgen.deploy.backends.writes import NotApplied, write_all
from obsgen.deploy.plan import CREATE, DELETE, UPDATE, Change, Obj
from obsgen.errors import ObsgenError
from obsgen.deploy.http import message_of
from obsgen.model import Environment, Model
from obsgen.model.names import grafana_folder_title

NAME = "grafana"
SEARCH_LIMIT = 5000  # the most /api/search returns per page
MAX_PAGES = 200  # pages of one search read at most: a million dashboards, far beyond any one folder's
UID_BATCH = 50  # desired uids per search, so that a URL stays well under proxies' 8 KiB header limits


class VersionConflict(ConflictError, NotApplied):
    """Grafana refused a save because the dashboard changed since it was read (412 version-mismatch, 409)."""


Live = tuple[dict[str, Any], str, int]  # a dashboard as read: its JSON, its folder's uid, its version


class GrafanaBackend(Backend):
    name = NAME

    def __init__(self, model: Model, env: Environment, url: str | None = None):
        spec, self.http = connect(env, NAME, "Grafana", url)
        self.model, self.env = model, env
        self.label = f"Grafana ({env.name})"
        self.folder_uid = c.grafana_folder_uid(model, env)
        self.folder_title = grafana_folder_title(model.service.name, env.name, spec.folder)
        self.marker = c.owner_tag(model, env)
        self.versions: dict[str, int] = {}  # uid -> version read
        self.folder_version: int | None = None  # the folder's version, as read or as this apply left it
        # per dashboard this apply wrote (one thread per uid): what it overwrote and the version it left
        self.base: dict[str, tuple[int | None, dict[str, Any]]] = {}
        self.written: dict[str, int] = {}
        self.applied: list[Change] = []

    # --- desired and live ------------------------------------------------------------------------

    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        objs = [Obj(NAME, "folder", self.folder_uid, {"title": self.folder_title})]
        for artifact in artifacts:
            if artifact.path.startswith(f"{self.env.name}/grafana/"):
                dashboard = json.loads(artifact.content)
                objs.append(Obj(NAME, "dashboard", dashboard["uid"], self._body(dashboard, self.folder_uid),
                                payload=dashboard))
        return objs

    @staticmethod
    def _body(dashboard: dict[str, Any], folder_uid: str) -> dict[str, Any]:
        return {"dashboard": normalise.dashboard(dashboard), "folderUid": folder_uid}

    def read(self, desired: list[Obj]) -> list[Obj]:
        """The folder, the folder's marked dashboards, and whatever holds a desired uid.

        Searches first (the folder's marked dashboards; which desired uids exist at all, in batches),
        all at once; then only the dashboards found are fetched, so a first apply reads almost nothing."""
        wanted = sorted(o.key for o in desired if o.kind == "dashboard")
        searches = [{"folderUIDs": self.folder_uid, "tag": self.marker}] + [
            {"dashboardUIDs": wanted[i:i + UID_BATCH]} for i in range(0, len(wanted), UID_BATCH)]
        folder, *hits = parallel(lambda job: job(), [self._read_folder] + [partial(self._search, f) for f in searches])
        live, wanted_set = ([folder] if folder is not None else []), set(wanted)
        uids = sorted(set().union(*hits))
        for uid, found in zip(uids, parallel(self._fetch, uids)):
            if found is None:
                continue
            dashboard, folder_uid, version = found
            owned = self._owns(dashboard, folder_uid)
            if not owned and uid not in wanted_set:
                continue  # not obsgen's and not in its way: not part of any plan
            self.versions[uid] = version
            live.append(Obj(NAME, "dashboard", uid, self._body(dashboard, folder_uid), owned=owned,
                            payload={**dashboard, "_folderUid": folder_uid}))
        return live

    def _read_folder(self) -> Obj | None:
        folder = self.http.request("GET", f"/api/folders/{self.folder_uid}", ok=(200, 404))
        if folder.status_code == 404:
            return None
        body = self.http.json(folder, dict)
        title = self.http.expect(folder, body.get("title"), str, "the folder's title")
        self.folder_version = body["version"] if isinstance(body.get("version"), int) else None
        return Obj(NAME, "folder", self.folder_uid, {"title": title})

    def _search(self, filters: dict[str, Any]) -> set[str]:
        """uids of the dashboards matching every filter (Grafana ANDs them), over every page -- at most
        MAX_PAGES, and never a page that repeats an earlier one (a Grafana, or something else, that
        ignores `page` would otherwise be paged for ever)."""
        uids: set[str] = set()
        pages: dict[tuple[str, ...], int] = {}  # the uids of each full page read -> its number
        for page in range(1, MAX_PAGES + 1):
            response = self.http.request("GET", "/api/search", params={
                "type": "dash-db", **filters, "limit": SEARCH_LIMIT, "page": page})
            hits = self.http.json(response, list)
            found = tuple(self.http.expect(response, self.http.expect(response, hit, dict, "a search hit").get("uid"),
                                           str, "a search hit's uid") for hit in hits)
            uids.update(found)
            if len(hits) < SEARCH_LIMIT:
                # a Grafana that ignores a filter answers more: only what was asked for counts
                return uids & set(filters["dashboardUIDs"]) if "dashboardUIDs" in filters else uids
            if found in pages:
                raise BackendError(f"{self.label} answered page {page} of GET /api/search with the same dashboards "
                                   f"as page {pages[found]}: it ignores `page`, so obsgen cannot read every "
                                   f"dashboard; is {self.http.base_url} really Grafana?")
            pages[found] = page
        raise BackendError(f"{self.label} answered GET /api/search with more than {MAX_PAGES} pages of "
                           f"{SEARCH_LIMIT} dashboards; obsgen stops there: is {self.http.base_url} really Grafana?")

    def _fetch(self, uid: str) -> Live | None:
        """The dashboard at `uid` as it is now, or None when there is none."""
        response = self.http.request("GET", f"/api/dashboards/uid/{uid}", ok=(200, 404))
        if response.status_code == 404:
            return None
        data = self.http.json(response, dict)
        dashboard = self.http.expect(response, data.get("dashboard"), dict, "its dashboard")
        meta = self.http.expect(response, data.get("meta", {}), dict, "its meta")
        folder_uid = self.http.expect(response, meta.get("folderUid") or "", str, "meta.folderUid")
        version = self.http.expect(response, meta.get("version", dashboard.get("version", 0)), int, "its version")
        self.http.expect(response, dashboard.get("tags") or [], list, "its tags")
        return dashboard, folder_uid, version

    def _owns(self, dashboard: dict[str, Any], folder_uid: str) -> bool:
        return folder_uid == self.folder_uid and self.marker in (dashboard.get("tags") or [])

    # --- writes ----------------------------------------------------------------------------------

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied = []
        for change in changes:  # before any write: whatever is not obsgen's is refused, --force or not
            if change.before is not None and not change.before.owned:
                raise NotApplied(self._not_ours(change.before))
            if change.obj.kind == "folder" and change.action == DELETE:
                raise NotApplied(f"{self.label}: obsgen never deletes its folder {self.folder_uid} (Grafana would "
                                 f"delete every dashboard in it)")
        write_all(lambda change: self._apply_folder(change, force),
                  [ch for ch in changes if ch.obj.kind == "folder"], self.applied, workers=1)
        write_all(lambda change: self._apply_dashboard(change, force),
                  [ch for ch in changes if ch.obj.kind == "dashboard"], self.applied)
        return self.applied

    def why_blocked(self, change: Change) -> str:
        return self._not_ours(change.before)  # type: ignore[arg-type]

    def _not_ours(self, obj: Obj) -> str:
        folder, tags = obj.payload.get("_folderUid") or "", obj.payload.get("tags") or []
        why = [f"it is in folder {folder or 'General'!r}, not {self.folder_uid!r}"] if folder != self.folder_uid else []
        why += [] if self.marker in tags else [f"it lacks the tag {self.marker!r}"]
        legacy = folder == self.folder_uid and c.OWNED_TAG in tags and not any(
            t.startswith(f"{c.OWNED_TAG}:") for t in tags)
        hint = (f"; if obsgen 0.2 wrote it (tag {c.OWNED_TAG!r} only), add the tag {self.marker!r} to it in Grafana "
                f"and obsgen will manage it again") if legacy else ""
        return (f"{self.label}: dashboard {obj.key} exists but is not obsgen's for {self.model.service.name} "
                f"{self.env.name} ({' and '.join(why)}); obsgen never changes it, not even with --force: move or "
                f"delete it in Grafana, or give the spec's dashboard another id{hint}")

    def _apply_folder(self, change: Change, force: bool) -> None:
        if change.action == CREATE:
            response = self.http.request("POST", "/api/folders", ok=(200, 409),
                                         json={"uid": self.folder_uid, "title": self.folder_title})
            if response.status_code == 409:
                raise NotApplied(f"{self.label}: folder {self.folder_uid} was created in Grafana since obsgen read "
                                 f"it; run `obsgen diff` again")
            self.folder_version = self._folder_answer(response)
            return
        try:
            self.folder_version = self._put_folder(self.folder_title, self.folder_version)
        except VersionConflict:
            if not force:
                raise
            current = self.http.json(self.http.request("GET", f"/api/folders/{self.folder_uid}"), dict)
            self.folder_version = self._put_folder(self.folder_title, current.get("version"))

    def _put_folder(self, title: str, version: Any) -> int | None:
        body: dict[str, Any] = {"title": title}
        body.update({"version": version} if isinstance(version, int) else {"overwrite": True})
        response = self.http.request("PUT", f"/api/folders/{self.folder_uid}", ok=(200, 412), json=body)
        if response.status_code == 412:
            raise VersionConflict(f"{self.label}: folder {self.folder_uid} was changed in Grafana since obsgen read "
                                  f"it; run `obsgen diff` to see the change, then `obsgen apply --force`")
        return self._folder_answer(response)

    def _folder_answer(self, response: Any) -> int | None:
        body = self.http.json(response, dict)
        if body.get("uid", self.folder_uid) != self.folder_uid:
            raise BackendError(f"{self.label}: Grafana answered a write of folder {self.folder_uid} with folder "
                               f"{body.get('uid')!r}")
        return body["version"] if isinstance(body.get("version"), int) else None

    def _apply_dashboard(self, change: Change, force: bool) -> bool:
        uid = change.obj.key
        if change.action == DELETE:
            return self._delete(uid, force)
        payload = change.obj.payload
        if change.action == CREATE:
            self.base[uid] = (None, {})
            self._save(payload, version=None)
            return True
        self.base[uid] = (self.versions.get(uid), change.before.payload)  # type: ignore[union-attr]
        try:
            self._save(payload, version=self.versions.get(uid))
        except VersionConflict:
            if not force:
                raise
            version, current = self._still_ours(uid, "overwritten")
            self.base[uid] = (version, current)  # --force: the version it has now, still obsgen's
            self._save(payload, version=version, again=True)
        return True

    def _delete(self, uid: str, force: bool) -> bool:
        found = self._fetch(uid)
        if found is None:
            return False  # already gone: nothing to do, nothing to restore
        dashboard, folder_uid, version = found
        if not self._owns(dashboard, folder_uid):
            raise NotApplied(f"{self.label}: dashboard {uid} is no longer obsgen's (moved or its tag "
                             f"{self.marker!r} removed since obsgen read it); not deleted")
        if version != self.versions.get(uid) and not force:
            raise VersionConflict(f"{self.label}: dashboard {uid} was changed in Grafana since obsgen read it; run "
                                  f"`obsgen diff` to see the change, then `obsgen apply --prune --force` to delete "
                                  f"it anyway")
        self.base[uid] = (version, {**dashboard, "_folderUid": folder_uid})
        self.http.request("DELETE", f"/api/dashboards/uid/{uid}", ok=(200, 404))
        return True

    def _still_ours(self, uid: str, what: str) -> tuple[int, dict[str, Any]]:
        """The current version and JSON of an owned dashboard, for a forced write; refused if not ours now."""
        found = self._fetch(uid)
        if found is None:
            raise NotApplied(f"{self.label}: dashboard {uid} was deleted in Grafana since obsgen read it; run "
                             f"`obsgen apply` again")
        dashboard, folder_uid, version = found
        if not self._owns(dashboard, folder_uid):
            raise NotApplied(f"{self.label}: dashboard {uid} is no longer obsgen's (moved or its tag "
                             f"{self.marker!r} removed since obsgen read it); not {what}")
        return version, {**dashboard, "_folderUid": folder_uid}

    def _save(self, dashboard: dict[str, Any], *, version: int | None, again: bool = False) -> int:
        """POST /api/dashboards/db without `overwrite`; the version Grafana gave the saved dashboard."""
        uid = dashboard["uid"]
        body = {k: v for k, v in dashboard.items() if k not in ("id", "version", "_folderUid")}
        body["id"] = None
        if version is not None:
            body["version"] = version
        response = self.http.request("POST", "/api/dashboards/db", ok=(200, 400, 404, 409, 412), json={
            "dashboard": body, "folderUid": self.folder_uid,
            "message": f"obsgen v{__version__}: spec {self.model.source} sha256 {self.model.digest[:12]}"})
        if response.status_code != 200:
            raise self._refusal(response, uid, str(body.get("title", "")), creating=version is None, again=again)
        answer = self.http.json(response, dict)
        if answer.get("uid") != uid:
            raise BackendError(f"{self.label}: Grafana saved dashboard {uid} as dashboard {answer.get('uid')!r} "
                               f"(a save that took over another dashboard of the same title); see that "
                               f"dashboard's version history in Grafana")
        saved = self.http.expect(response, answer.get("version"), int, "its version")
        self.written[uid] = saved
        return saved

    def _refusal(self, response: Any, uid: str, title: str, *, creating: bool, again: bool) -> NotApplied:
        """One specific, actionable error per refusal, told apart by Grafana's `status` field."""
        try:
            body = response.json()
        except ValueError:
            body = None
        status = body.get("status") if isinstance(body, dict) else None
        code, said = response.status_code, message_of(response)
        if code == 409 or status == "version-mismatch":
            if creating:
                return NotApplied(f"{self.label}: a dashboard with uid {uid} was created in Grafana since obsgen "
                                  f"read it; run `obsgen diff` to see it")
            if again:
                return VersionConflict(f"{self.label}: dashboard {uid} was changed again while obsgen saved it; "
                                       f"run `obsgen apply --force` again")
            return VersionConflict(f"{self.label}: dashboard {uid} was changed in Grafana since obsgen read it; "
                                   f"run `obsgen diff` to see the change, then `obsgen apply --force` to overwrite it")
        if status == "name-exists":
            return NotApplied(f"{self.label}: cannot save dashboard {uid}: another dashboard titled {title!r} is "
                              f"already in folder {self.folder_title!r} (Grafana up to 11.2 wants titles unique in "
                              f"a folder); rename or move that dashboard in Grafana, or change the title in the "
                              f"spec -- obsgen never overwrites it, not even with --force")
        if status == "plugin-dashboard":
            return NotApplied(f"{self.label}: dashboard {uid} belongs to a Grafana plugin ({said}); obsgen does not "
                              f"overwrite a plugin's dashboard: remove it in Grafana or give the spec's dashboard "
                              f"another id")
        if status == "name-match":
            return NotApplied(f"{self.label}: Grafana refuses dashboard {uid}: its title {title!r} is also a "
                              f"folder's ({said}); change the title in the spec")
        return NotApplied(f"{self.label} refused to save dashboard {uid} (HTTP {code}"
                          f"{', ' + str(status) if status else ''}): {said}")

    # --- rollback --------------------------------------------------------------------------------

    def restore(self, applied: list[Change]) -> None:
        """Put back every dashboard still as this apply left it, then the folder; raise naming what was not."""
        dashboards = [ch for ch in applied if ch.obj.kind == "dashboard"]
        failures = [error for error in parallel(self._restore_dashboard, dashboards) if error]
        for change in reversed([ch for ch in applied if ch.obj.kind == "folder"]):
            try:
                self._restore_folder(change)
            except ObsgenError as exc:
                failures.append(str(exc))
        if failures:
            raise BackendError("; ".join(failures))

    def _restore_dashboard(self, change: Change) -> str | None:
        """Undo one change; None when done (or nothing to undo), else why it was left as it is."""
        uid = change.obj.key
        try:
            found = self._fetch(uid)
            base_version, base = self.base.get(uid, (self.versions.get(uid), getattr(change.before, "payload", {})))
            if change.action == CREATE:
                if found is None or not self._owns(found[0], found[1]):
                    return None  # never created (or not by obsgen): nothing to undo
                if uid in self.written and found[2] != self.written[uid]:
                    return f"dashboard {uid} was edited in Grafana after this apply created it; left in place"
                self.http.request("DELETE", f"/api/dashboards/uid/{uid}", ok=(200, 404))
            elif change.action == UPDATE:
                if found is None:
                    return f"dashboard {uid} was deleted in Grafana after this apply updated it; not restored"
                if found[2] == base_version:
                    return None  # the update never landed
                left = self.written.get(uid, (base_version or 0) + 1)
                if found[2] != left:
                    return (f"dashboard {uid} was changed in Grafana after this apply wrote it (version {found[2]}, "
                            f"not {left}); not restored")
                self._save(base, version=left)
            elif found is None:  # a delete that landed: saved again as it was (a create: no overwrite)
                self._save(base, version=None)
        except ObsgenError as exc:
            return f"dashboard {uid}: {exc}"
        return None

    def _restore_folder(self, change: Change) -> None:
        if change.action == CREATE:
            response = self.http.request("GET", "/api/search", params={"folderUIDs": self.folder_uid, "limit": 1})
            if self.http.json(response, list):
                raise BackendError(f"folder {self.folder_uid}, created by this apply, was not removed: it holds "
                                   f"dashboards or folders obsgen did not leave there")
            self.http.request("DELETE", f"/api/folders/{self.folder_uid}", ok=(200, 404))
        elif change.action == UPDATE:
            try:
                self._put_folder(change.before.body["title"], self.folder_version)  # type: ignore[union-attr]
            except VersionConflict:
                raise BackendError(f"folder {self.folder_uid} was changed in Grafana after this apply renamed it; "
                                   f"its title was not restored") from None
