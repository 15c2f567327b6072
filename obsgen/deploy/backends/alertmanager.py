"""Vanilla Alertmanager: the config file, reload, confirm through /api/v2/status, restore on refusal.

Alertmanager re-marshals its config (defaults filled in, matchers sorted,
inline secrets masked), so the live config is compared only on the fields
obsgen generates.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from obsgen.artifact import Artifact
from obsgen.deploy.backends.base import Backend, BackendError, connect
from obsgen.deploy.plan import Change, Obj
from obsgen.files import atomic_write
from obsgen.model import Environment, Model

NAME = "alertmanager"
KEY = "alertmanager.yaml"
_MATCHER_LISTS = ("matchers", "source_matchers", "target_matchers")


def project(live: Any, shape: Any) -> Any:
    """`live` cut down to the keys `shape` has, recursively; matcher lists sorted."""
    if isinstance(shape, dict) and isinstance(live, dict):
        return {k: (sorted(live[k]) if k in _MATCHER_LISTS and isinstance(live.get(k), list)
                    else project(live.get(k), v)) for k, v in shape.items()}
    if isinstance(shape, list) and isinstance(live, list):
        return [project(item, shape[i] if i < len(shape) else item) for i, item in enumerate(live)]
    return live


def sorted_matchers(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: sorted(v) if k in _MATCHER_LISTS and isinstance(v, list) else sorted_matchers(v)
                for k, v in config.items()}
    if isinstance(config, list):
        return [sorted_matchers(v) for v in config]
    return config


def generated_config(env: Environment, artifacts: list[Artifact]) -> tuple[Any, bytes] | None:
    """The environment's generated config, parsed with sorted matchers (the shape both Alertmanager
    clients compare on), and its bytes; None when the build has none."""
    import yaml

    for artifact in artifacts:
        if artifact.path == f"{env.name}/alertmanager/{KEY}":
            return sorted_matchers(yaml.safe_load(artifact.content)), artifact.content
    return None


class AlertmanagerBackend(Backend):
    name = NAME

    def __init__(self, model: Model, env: Environment, url: str | None = None, config_file: str | None = None):
        spec, self.http = connect(env, NAME, "Alertmanager", url, mode="alertmanager")
        self.env = env
        self.config_file = Path(config_file or spec.config_file)
        self.shape: Any = None
        self.previous: bytes | None = None
        self.applied: list[Change] = []

    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        found = generated_config(self.env, artifacts)
        if found is None:
            return []
        self.shape, content = found
        return [Obj(NAME, "alertmanager-config", KEY, self.shape, payload=content)]

    def read(self, desired: list[Obj]) -> list[Obj]:
        import yaml

        response = self.http.request("GET", "/api/v2/status")
        status = self.http.json(response, dict)
        config = self.http.expect(response, status.get("config") or {}, dict, "its `config`")
        original = self.http.expect(response, config.get("original") or "", str, "its `config.original`")
        try:
            live = yaml.safe_load(original) or {}
        except yaml.YAMLError:
            raise self.http.malformed(response, "a `config.original` that is not YAML") from None
        live = self.http.expect(response, live, dict, "its `config.original`")
        body = project(live, self.shape) if self.shape is not None else sorted_matchers(live)
        return [Obj(NAME, "alertmanager-config", KEY, body, payload=None)]

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied = []
        for change in changes:
            try:
                self.previous = self.config_file.read_bytes() if self.config_file.exists() else None
                self.applied.append(change)  # from the write on, the file may have changed
                atomic_write(self.config_file, change.obj.payload)
            except OSError as exc:
                raise BackendError(f"Alertmanager ({self.env.name}): cannot write {self.config_file}: "
                                   f"{exc.strerror}") from None
            response = self.http.request("POST", "/-/reload", ok=(200, 500))
            if response.status_code != 200:
                raise BackendError(f"Alertmanager ({self.env.name}) refused the new config: "
                                   f"{response.text.strip()[:300]}")
            self.http.request("GET", "/api/v2/status")
        return list(changes)

    def restore(self, applied: list[Change]) -> None:
        if self.previous is None:
            return
        try:
            atomic_write(self.config_file, self.previous)
        except OSError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): cannot put back {self.config_file}: "
                               f"{exc.strerror}") from None
        response = self.http.request("POST", "/-/reload", ok=(200, 500))
        if response.status_code != 200:
            raise BackendError(f"Alertmanager ({self.env.name}) refused the previous config on restore: "
                               f"{response.text.strip()[:300]}")
