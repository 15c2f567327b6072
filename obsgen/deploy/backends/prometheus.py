"""Vanilla Prometheus: rule files in an obsgen-owned directory, reload, read back, restore.

Every file in `rules_dir` is obsgen's. Apply snapshots the directory, writes the
changed files atomically, POSTs /-/reload and confirms through /api/v1/rules that
every group loaded healthy; when the reload fails the snapshot is put back and
Prometheus is reloaded again, so the previous rules stay live.
"""
from __future__ import annotations

from pathlib import Path

from obsgen.artifact import Artifact
from obsgen.deploy import normalise
from obsgen.deploy.backends.base import Backend, BackendError, connect
from obsgen.deploy.plan import DELETE, Change, Obj
from obsgen.files import atomic_write
from obsgen.model import Environment, Model

NAME = "prometheus"


class PrometheusBackend(Backend):
    name = NAME

    def __init__(self, model: Model, env: Environment, url: str | None = None, rules_dir: str | None = None):
        spec, self.http = connect(env, NAME, "Prometheus", url, mode="prometheus")
        self.env = env
        self.rules_dir = Path(rules_dir or spec.rules_dir)
        self.snapshot: dict[str, bytes] | None = None

    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        import yaml

        objs = []
        for artifact in artifacts:
            if artifact.path.startswith(f"{self.env.name}/prometheus/"):
                name = artifact.path.rsplit("/", 1)[1]
                for group in yaml.safe_load(artifact.content)["groups"]:
                    objs.append(Obj(NAME, "rule-group", f"{name}/{group['name']}", normalise.rule_group(group),
                                    payload=(name, artifact.content)))
        return objs

    def read(self, desired: list[Obj]) -> list[Obj]:
        data = self.http.request("GET", "/api/v1/rules").json()["data"]
        objs = []
        for group in data.get("groups", []):
            path = Path(group["file"])
            if path.parent.resolve() != self.rules_dir.resolve():
                continue  # not in obsgen's directory: not ours
            rules = [{"alert" if r["type"] == "alerting" else "record": r["name"], "expr": r["query"],
                      "for": r.get("duration", 0), "labels": r.get("labels") or {},
                      "annotations": r.get("annotations") or {}} for r in group["rules"]]
            body = normalise.rule_group({"name": group["name"], "interval": group.get("interval", 0), "rules": rules})
            objs.append(Obj(NAME, "rule-group", f"{path.name}/{group['name']}", body, payload=(path.name, None)))
        return objs

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        files: dict[str, bytes | None] = {}
        for change in changes:
            name, content = change.obj.payload
            if change.action == DELETE:
                files.setdefault(name, None)  # removed unless another change rewrites it
            else:
                files[name] = content
        self.snapshot = {p.name: p.read_bytes() for p in self.rules_dir.glob("*") if p.is_file()}
        try:
            for name, content in sorted(files.items()):
                target = self.rules_dir / name
                if content is None:
                    target.unlink(missing_ok=True)
                else:
                    atomic_write(target, content)
            self._reload()
        except BackendError:
            self.restore(changes)
            raise
        return list(changes)

    def _reload(self) -> None:
        response = self.http.request("POST", "/-/reload", ok=(200, 500))
        if response.status_code != 200:
            raise BackendError(f"Prometheus ({self.env.name}) refused the new rules: "
                               f"{response.text.strip()[:300]}")
        bad = [f"{g['name']}: {r.get('lastError', r.get('health'))}"
               for g in self.http.request("GET", "/api/v1/rules").json()["data"]["groups"]
               for r in g["rules"] if r.get("health") == "err"]
        if bad:
            raise BackendError(f"Prometheus ({self.env.name}) loaded rules that fail: {'; '.join(bad)[:300]}")

    def restore(self, applied: list[Change]) -> None:
        if self.snapshot is None:
            return
        for path in self.rules_dir.glob("*"):
            if path.is_file() and path.name not in self.snapshot:
                path.unlink()
        for name, content in self.snapshot.items():
            atomic_write(self.rules_dir / name, content)
        self.http.request("POST", "/-/reload", ok=(200, 500))

