"""The Mimir/Cortex ruler rule-config API: one namespace per generated rule file.

Namespaces are named `obsgen/<service>-<env>/<rule file stem>`; every namespace
under that prefix is obsgen's, every other namespace of the tenant is left alone.
Groups are written one per POST (the API takes exactly one group per request),
deleted one per DELETE, and read back in one GET of the whole tenant. Every POST
and DELETE names one group, and Mimir's rule store keeps each group as an object
of its own (rules/<tenant>/<namespace>/<group>), so writes to different groups
are independent -- of one namespace or of different ones -- and all of them run
in parallel, bounded like the reads (`writes.write_all`). After the writes, every
written group is read again (in parallel) and must equal what was sent;
otherwise, or when any write fails, the groups this apply touched (or may have
touched) are put back as they were.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from obsgen.model.artifact import Artifact
from obsgen.deploy import normalise
from obsgen.deploy.backends.base import Backend, BackendError, connect, parallel
from obsgen.deploy.backends.writes import write_all
from obsgen.deploy.plan import CREATE, DELETE, Change, Obj
from obsgen.errors import ObsgenError
from obsgen.model import Environment, Model

NAME = "prometheus"
DEFAULT_PATH = "/prometheus/config/v1/rules"  # Mimir; Cortex uses /api/v1/rules (set api_path)


def _seg(name: str) -> str:
    return quote(name, safe="")  # `/` -> %2F, as the API requires


def _group_problem(group: dict[str, Any]) -> str | None:
    """What is off in a rule group read from the ruler (the fields `normalise.rule_group` reads), or None."""
    from obsgen.model import durations

    def duration(value: Any) -> bool:
        return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)) or \
            durations.is_duration(value)

    if not duration(group.get("interval")):
        return "an `interval` that is not a duration"
    for rule in group.get("rules") or []:
        if not isinstance(rule, dict):
            return "a rule that is not a mapping"
        if "expr" not in rule:
            return "a rule without `expr`"
        for key in ("expr", "alert", "record"):
            if key in rule and not isinstance(rule[key], str if key == "expr" else (str, type(None))):
                return f"a rule whose `{key}` is not a string"
        for key in ("labels", "annotations"):
            if not isinstance(rule.get(key) or {}, dict):
                return f"a rule whose `{key}` is not a mapping"
        if not duration(rule.get("for")):
            return "a rule whose `for` is not a duration"
    return None


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
        response = self.http.request("GET", self.base, ok=(200, 404))
        tenant = self.http.yaml(response, dict, empty={}) if response.status_code == 200 else {}
        wanted_namespaces = {o.payload[0] for o in desired}
        objs = []
        for namespace, groups in sorted(tenant.items(), key=lambda item: str(item[0])):
            if not isinstance(namespace, str) or not (namespace.startswith(self.prefix)
                                                      or namespace in wanted_namespaces):
                continue  # another tool's namespace: never read, changed or deleted
            for group in self.http.expect(response, groups or [], list, f"namespace {namespace}"):
                group = self._group(response, group, namespace)
                objs.append(Obj(NAME, "rule-group", f"{namespace}/{group['name']}", normalise.rule_group(group),
                                payload=(namespace, group)))
        return objs

    def _group(self, response: Any, group: Any, namespace: str) -> dict[str, Any]:
        """A rule group of an answer, checked for every field the plan reads: a group or rule of another
        shape is one clear error naming the ruler and the group, never a crash in the normal form."""
        group = self.http.expect(response, group, dict, f"a group of {namespace}")
        self.http.expect(response, group.get("name"), str, f"a group name in {namespace}")
        where = f"{namespace}/{group['name']}"
        self.http.expect(response, group.get("rules") or [], list, f"the rules of {where}")
        problem = _group_problem(group)
        if problem is None:
            try:
                normalise.rule_group(group)
            except (KeyError, TypeError, ValueError, AttributeError):
                problem = "a rule obsgen cannot read"
        if problem is not None:
            raise self.http.malformed(response, f"{problem} in group {where}")
        return group

    # --- writes ----------------------------------------------------------------------------------

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied = []
        write_all(self._write, changes, self.applied)
        self._confirm([c for c in changes if c.action != DELETE])
        return self.applied

    def _write(self, change: Change) -> None:
        if change.action == DELETE:
            self._delete(*change.obj.payload)
        else:
            self._post(*change.obj.payload)

    def _post(self, namespace: str, group: dict[str, Any]) -> None:
        import yaml

        body = yaml.safe_dump(group, sort_keys=False, allow_unicode=True)
        self.http.request("POST", f"{self.base}/{_seg(namespace)}", ok=(200, 201, 202), data=body.encode(),
                          headers={"Content-Type": "application/yaml"})

    def _delete(self, namespace: str, group: dict[str, Any]) -> None:
        self.http.request("DELETE", f"{self.base}/{_seg(namespace)}/{_seg(group['name'])}", ok=(200, 202, 404))

    def _confirm(self, written: list[Change]) -> None:
        def fetch(change: Change) -> tuple[Change, Any]:
            namespace, group = change.obj.payload
            response = self.http.request("GET", f"{self.base}/{_seg(namespace)}/{_seg(group['name'])}",
                                         ok=(200, 404))
            if response.status_code == 404:
                return change, None
            return change, self._group(response, self.http.yaml(response, dict), namespace)

        for change, live in parallel(fetch, written):
            if live is None or normalise.rule_group(live) != change.obj.body:
                raise BackendError(f"{self.http.name}: group {change.obj.key} does not read back as written")

    def restore(self, applied: list[Change]) -> None:
        """Every group back as it was, in parallel (each is its own object); raise naming those that failed.

        Safe for a write that may not have landed: deleting a group never created answers 404, and
        posting a group as it was is the same whether or not it was changed."""
        def undo(change: Change) -> str | None:
            try:
                if change.action == CREATE:
                    self._delete(*change.obj.payload)
                else:  # updated or deleted: post the group as it was before
                    self._post(*change.before.payload)  # type: ignore[union-attr]
            except ObsgenError as exc:
                return f"{change.obj.key}: {exc}"
            return None

        failed = [error for error in parallel(undo, list(reversed(applied))) if error]
        if failed:
            raise BackendError(f"{self.http.name}: groups not restored: {'; '.join(failed)}")
