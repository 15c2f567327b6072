"""The Mimir/Cortex multitenant Alertmanager config API (`/api/v1/alerts`).

Mimir refuses `*_file` secrets in tenant configs (the files would have to live
on Mimir's hosts), so this client reads each `routing_key_file` / `api_url_file`
named in the generated config on the machine running obsgen and sends the value
inline, in the request body only. Read-back replaces every inline secret by a
reference to the file it must equal — or by a marker when it differs — so no
secret value ever reaches a diff, a log or the ledger. A spec names those files, so
they are read only under a directory the operator lists in OBSGEN_SECRET_DIRS, and the
config carrying their values is sent only to an endpoint the operator allows (an
override URL, or a host in OBSGEN_ALLOWED_HOSTS) -- see obsgen/http.py.
"""
from __future__ import annotations

from typing import Any

from obsgen.access import require_allowed, secret_file
from obsgen.artifact import Artifact
from obsgen.deploy.backends.alertmanager import (
    KEY,
    config_in,
    generated_config,
    project,
    sorted_matchers,
)
from obsgen.deploy.backends.base import Backend, BackendError, connect
from obsgen.deploy.plan import Change, Obj
from obsgen.model import Environment, Model

NAME = "alertmanager"
DEFAULT_PATH = "/api/v1/alerts"
SECRET_FIELDS = {"routing_key_file": "routing_key", "service_key_file": "service_key", "api_url_file": "api_url"}
DIFFERS = "<inline secret that differs from {}>"


class MimirAlertmanagerBackend(Backend):
    name = NAME

    def __init__(self, model: Model, env: Environment, url: str | None = None):
        spec, self.http = connect(env, NAME, "Mimir Alertmanager", url, mode="mimir")
        self.env, self.spec, self.url = env, spec, url
        self.path = spec.api_path or DEFAULT_PATH
        self.shape: Any = None
        self.previous: str | None = None  # the raw document read before writing; None = no config
        self.applied: list[Change] = []

    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        found = generated_config(self.env, artifacts)
        if found is None:
            return []
        self.shape = found[0]
        for path in _secret_paths(self.shape):  # refuse before any request, not halfway through
            secret_file(path, self.http.name)
        return [Obj(NAME, "alertmanager-config", KEY, self.shape, payload=self.shape)]

    def read(self, desired: list[Obj]) -> list[Obj]:

        response = self.http.request("GET", self.path, ok=(200, 404))
        if response.status_code == 404:
            self.previous = None
            return []
        self.previous = response.text
        document = self.http.yaml(response, dict, empty={})
        live = config_in(self.http, response, document.get("alertmanager_config"), "alertmanager_config")
        live = _mask(live, self.shape, self._secret)
        body = project(live, self.shape) if self.shape is not None else sorted_matchers(live)
        return [Obj(NAME, "alertmanager-config", KEY, body, payload=None)]

    def _secret(self, path: str) -> str:
        real = secret_file(path, self.http.name)
        try:
            with open(real, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise BackendError(f"{self.http.name}: cannot read secret file {path} ({exc.strerror}); Mimir needs "
                               f"secrets inline, so obsgen reads the file named in the spec on this machine") \
                from None

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        import yaml

        self.applied = []
        if any(_secret_paths(change.obj.payload) for change in changes):
            require_allowed(self.spec, self.env.name, self.url, "the config's inline secrets")
        for change in changes:
            config = _inline(change.obj.payload, self._secret)
            document = {"template_files": {},
                        "alertmanager_config": yaml.safe_dump(config, sort_keys=True, allow_unicode=True)}
            self.applied.append(change)  # from the POST on it may have landed, even if its answer is lost
            response = self.http.request("POST", self.path, ok=(200, 201, 400),
                                         data=yaml.safe_dump(document, sort_keys=True).encode(),
                                         headers={"Content-Type": "application/yaml"})
            if response.status_code == 400:
                self.applied.pop()  # refused: nothing changed
                raise BackendError(f"{self.http.name} refused the new config: {response.text.strip()[:300]}; "
                                   f"the previous config is still in place")
        return self.applied

    def restore(self, applied: list[Change]) -> None:
        if not applied:
            return
        if self.previous is None:
            self.http.request("DELETE", self.path, ok=(200, 404))
        else:
            self.http.request("POST", self.path, ok=(200, 201), data=self.previous.encode(),
                              headers={"Content-Type": "application/yaml"})


def _inline(config: Any, secret: Any) -> Any:
    """The config with every `*_file` secret replaced by its value (for the request body only)."""
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            if key in SECRET_FIELDS and isinstance(value, str):
                out[SECRET_FIELDS[key]] = secret(value)
            else:
                out[key] = _inline(value, secret)
        return out
    if isinstance(config, list):
        return [_inline(v, secret) for v in config]
    return config


def _secret_paths(config: Any) -> list[str]:
    """Every `*_file` secret path named in a generated config."""
    if isinstance(config, dict):
        return [p for key, value in config.items()
                for p in ([value] if key in SECRET_FIELDS and isinstance(value, str) else _secret_paths(value))]
    if isinstance(config, list):
        return [p for value in config for p in _secret_paths(value)]
    return []


def _mask(live: Any, shape: Any, secret: Any) -> Any:
    """Live config with inline secrets turned back into the `*_file` reference they equal, or a marker."""
    if isinstance(live, dict):
        out = {k: _mask(v, shape.get(k) if isinstance(shape, dict) else None, secret) for k, v in live.items()
               if k not in SECRET_FIELDS.values()}
        for file_key, inline_key in SECRET_FIELDS.items():
            if inline_key in live:
                path = shape.get(file_key) if isinstance(shape, dict) else None
                same = isinstance(path, str) and str(live[inline_key]).strip() == secret(path)
                out[file_key] = path if same else DIFFERS.format(path or "the spec")
        return out
    if isinstance(live, list):
        shapes = shape if isinstance(shape, list) else []
        return [_mask(v, shapes[i] if i < len(shapes) else None, secret) for i, v in enumerate(live)]
    return live
