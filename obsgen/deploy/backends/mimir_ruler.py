"""The Mimir/Cortex ruler rule-config API: one namespace per generated rule file.

Namespaces are named `obsgen/<service>-<env>/<rule file stem>`; every namespace
under that prefix is obsgen's, every other namespace of the tenant is left alone.
Groups are written one per POST (the API takes exactly one group per request),
deleted one per DELETE, and read back in one GET of the whole tenant. After the
writes, every written group is read again (in parallel) and must equal what was
sent; otherwise, or when any write fails, the groups this apply touched are put
back as they were.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from obsgen.artifact import Artifact
from obsgen.deploy import normalise
from obsgen.deploy.backends.base import Backend, BackendError, connect, parallel
from obsgen.deploy.plan import CREATE, DELETE, Change, Obj
from obsgen.model import Environment, Model

NAME = "prometheus"
DEFAULT_PATH = "/prometheus/config/v1/rules"  # Mimir; Cortex uses /api/v1/rules (set api_path)


def _seg(name: str) -> str:
    return quote(name, safe="")  # `/` -> %2F, as the API requires


class MimirRulerBackend(Backend):
    name = NAME

    def __init__(self, model: Model, env: Environment, url: str | None = None):
        spec, self.http = connect(env, NAME, "Mimir ruler", url, mode="mimir")
        self.env = env
        self.base = (spec.api_path or DEFAULT_PATH).rstrip("/")
        self.prefix = f"obsgen/{model.service.name}-{env.name}/"
        self.applied: list[Change] = []

    def namespace(self, file_name: str) -> str:
        return self.prefix + file_name.split(".", 1)[0]

    # --- desired and live ------------------------------------------------------------------------

    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        import yaml

        objs = []
        for artifact in artifacts:
            if artifact.path.startswith(f"{self.env.name}/prometheus/"):
                namespace = self.namespace(artifact.path.rsplit("/", 1)[1])
                for group in yaml.safe_load(artifact.content)["groups"]:
                    objs.append(Obj(NAME, "rule-group", f"{namespace}/{group['name']}",
                                    normalise.rule_group(group), payload=(namespace, group)))
        return objs

    def read(self, desired: list[Obj]) -> list[Obj]:
        import yaml

        response = self.http.request("GET", self.base, ok=(200, 404))
        tenant = (yaml.safe_load(response.text) or {}) if response.status_code == 200 else {}
        if not isinstance(tenant, dict):
            raise BackendError(f"{self.http.name} answered GET {self.base} with something that is not a "
                               f"namespace map")
        wanted_namespaces = {o.payload[0] for o in desired}
        objs = []
        for namespace, groups in sorted(tenant.items()):
            if not (namespace.startswith(self.prefix) or namespace in wanted_namespaces):
                continue  # another tool's namespace: never read, changed or deleted
            for group in groups or []:
                objs.append(Obj(NAME, "rule-group", f"{namespace}/{group['name']}", normalise.rule_group(group),
                                payload=(namespace, group)))
        return objs

    # --- writes ----------------------------------------------------------------------------------

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied = []
        for change in changes:
            if change.action == DELETE:
                self._delete(*change.obj.payload)
            else:
                self._post(*change.obj.payload)
            self.applied.append(change)
        self._confirm([c for c in changes if c.action != DELETE])
        return self.applied

    def _post(self, namespace: str, group: dict[str, Any]) -> None:
        import yaml

        body = yaml.safe_dump(group, sort_keys=False, allow_unicode=True)
        self.http.request("POST", f"{self.base}/{_seg(namespace)}", ok=(200, 201, 202), data=body.encode(),
                          headers={"Content-Type": "application/yaml"})

    def _delete(self, namespace: str, group: dict[str, Any]) -> None:
        self.http.request("DELETE", f"{self.base}/{_seg(namespace)}/{_seg(group['name'])}", ok=(200, 202, 404))

    def _confirm(self, written: list[Change]) -> None:
        import yaml

        def fetch(change: Change) -> tuple[Change, Any]:
            namespace, group = change.obj.payload
            response = self.http.request("GET", f"{self.base}/{_seg(namespace)}/{_seg(group['name'])}",
                                         ok=(200, 404))
            return change, (yaml.safe_load(response.text) if response.status_code == 200 else None)

        for change, live in parallel(fetch, written):
            if live is None or normalise.rule_group(live) != change.obj.body:
                raise BackendError(f"{self.http.name}: group {change.obj.key} does not read back as written")

    def restore(self, applied: list[Change]) -> None:
        for change in reversed(applied):
            if change.action == CREATE:
                self._delete(*change.obj.payload)
            else:  # updated or deleted: post the group as it was before
                self._post(*change.before.payload)  # type: ignore[union-attr]
