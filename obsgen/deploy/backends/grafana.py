"""Grafana: one folder and the dashboards, through the classic /api HTTP surface.

Owned dashboards carry the `obsgen` tag; a dashboard without it is never
changed or deleted. Unchanged dashboards are never re-posted (every save bumps
Grafana's version). Saves send the version that was read, so a dashboard edited
in the UI since then answers 412 and the apply stops, unless --force.
"""
from __future__ import annotations

import json
from typing import Any

from obsgen import __version__
from obsgen.artifact import Artifact
from obsgen.conventions import OWNED_TAG, slug
from obsgen.deploy import normalise
from obsgen.deploy.backends.base import Backend, ConflictError, connect, parallel
from obsgen.deploy.plan import CREATE, DELETE, UPDATE, Change, Obj
from obsgen.model import Environment, Model

NAME = "grafana"


class GrafanaBackend(Backend):
    name = NAME

    def __init__(self, model: Model, env: Environment, url: str | None = None):
        spec, self.http = connect(env, NAME, "Grafana", url)
        self.model, self.env = model, env
        self.folder_uid = slug(f"obsgen-{model.service.name}-{env.name}")[:40]
        self.folder_title = spec.folder or f"{model.service.name} ({env.name})"
        self.versions: dict[str, int] = {}

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
        live = []
        folder = self.http.request("GET", f"/api/folders/{self.folder_uid}", ok=(200, 404))
        if folder.status_code == 200:
            live.append(Obj(NAME, "folder", self.folder_uid, {"title": folder.json().get("title")}))
        hits = self.http.request("GET", "/api/search", params={"type": "dash-db", "tag": OWNED_TAG,
                                                                "limit": 5000}).json()
        uids = sorted({hit["uid"] for hit in hits} | {o.key for o in desired if o.kind == "dashboard"})
        fetch = lambda uid: self.http.request("GET", f"/api/dashboards/uid/{uid}", ok=(200, 404))  # noqa: E731
        for uid, response in zip(uids, parallel(fetch, uids)):
            if response.status_code == 404:
                continue
            data = response.json()
            dashboard, meta = data["dashboard"], data.get("meta", {})
            self.versions[uid] = int(meta.get("version", dashboard.get("version", 0)))
            owned = OWNED_TAG in (dashboard.get("tags") or [])
            live.append(Obj(NAME, "dashboard", uid, self._body(dashboard, meta.get("folderUid") or ""),
                            owned=owned, payload={**dashboard, "_folderUid": meta.get("folderUid") or ""}))
        return live

    # --- writes ----------------------------------------------------------------------------------

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied: list[Change] = []
        for change in changes:
            if change.before is not None and not change.before.owned and not force:
                raise ConflictError(f"Grafana ({self.env.name}): dashboard {change.obj.key} exists but is not "
                                    f"managed by obsgen (no '{OWNED_TAG}' tag); refusing to change it without --force")
            if change.obj.kind == "folder":
                self._apply_folder(change)
            elif change.action == DELETE:
                self.http.request("DELETE", f"/api/dashboards/uid/{change.obj.key}")
            else:
                self._save(change.obj.payload, self.folder_uid, version=self.versions.get(change.obj.key),
                           overwrite=force or change.action == CREATE)
            self.applied.append(change)
        return self.applied

    def _apply_folder(self, change: Change) -> None:
        if change.action == CREATE:
            self.http.request("POST", "/api/folders", json={"uid": self.folder_uid, "title": self.folder_title})
        elif change.action == UPDATE:
            self.http.request("PUT", f"/api/folders/{self.folder_uid}",
                              json={"title": self.folder_title, "overwrite": True})
        else:
            self.http.request("DELETE", f"/api/folders/{self.folder_uid}")

    def _save(self, dashboard: dict[str, Any], folder_uid: str, *, version: int | None, overwrite: bool) -> None:
        body = {k: v for k, v in dashboard.items() if k not in ("id", "version", "_folderUid")}
        body["id"] = None
        if version is not None:
            body["version"] = version
        response = self.http.request("POST", "/api/dashboards/db", ok=(200, 409, 412), json={
            "dashboard": body, "folderUid": folder_uid, "overwrite": overwrite,
            "message": f"obsgen v{__version__}: spec {self.model.source} sha256 {self.model.digest[:12]}"})
        if response.status_code in (409, 412):
            raise ConflictError(f"Grafana ({self.env.name}): dashboard {dashboard.get('uid')} was changed in "
                                f"Grafana since obsgen read it; run `obsgen diff` to see the change, then "
                                f"`obsgen apply --force` to overwrite it")
        self.versions[dashboard["uid"]] = int(response.json().get("version", 0))

    def restore(self, applied: list[Change]) -> None:
        for change in reversed(applied):
            if change.obj.kind == "folder":
                if change.action == CREATE:
                    self.http.request("DELETE", f"/api/folders/{self.folder_uid}", ok=(200, 404))
                continue
            if change.action == CREATE:
                self.http.request("DELETE", f"/api/dashboards/uid/{change.obj.key}", ok=(200, 404))
            else:
                before = change.before.payload  # type: ignore[union-attr]
                self._save(before, before.get("_folderUid", ""), version=None, overwrite=True)
