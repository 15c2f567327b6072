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
        response = self.http.request("GET", "/api/v2/status")
        status = self.http.json(response, dict)
        config = self.http.expect(response, status.get("config") or {}, dict, "its `config`")
        live = config_in(self.http, response, config.get("original"), "`config.original`")
        body = project(live, self.shape) if self.shape is not None else sorted_matchers(live)
        return [Obj(NAME, "alertmanager-config", KEY, body, payload=None)]

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied = []
        for change in changes:
            try:
                self.previous = self.config_file.read_bytes() if self.config_file.exists() else None
            except OSError as exc:
                raise BackendError(f"Alertmanager ({self.env.name}): cannot read {self.config_file}: "
                                   f"{exc.strerror}") from None
            self.applied.append(change)  # from the write on, the file may have changed
            self._write_and_reload(change.obj.payload, "the new config")
        return list(changes)

    def restore(self, applied: list[Change]) -> None:
        if self.previous is not None:
            self._write_and_reload(self.previous, "the previous config on restore")

    def _write_and_reload(self, content: bytes, what: str) -> None:
        try:
            atomic_write(self.config_file, content)
        except OSError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): cannot write {self.config_file}: "
                               f"{exc.strerror}") from None
        response = self.http.request("POST", "/-/reload", ok=(200, 500))
        if response.status_code != 200:
            raise BackendError(f"Alertmanager ({self.env.name}) refused {what}: {response.text.strip()[:300]}")


def config_in(http: Any, response: Any, text: Any, what: str) -> dict[str, Any]:
    """An Alertmanager config held as YAML text inside an API answer, checked to be a mapping."""
    import yaml

    text = http.expect(response, text or "", str, f"its {what}")
    try:
        live = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise http.malformed(response, f"a {what} that is not YAML") from None
    return http.expect(response, live, dict, f"its {what}")
