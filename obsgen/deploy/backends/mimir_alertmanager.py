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

By default (`owns: subtree`) obsgen changes only its part of the tenant's
config (see obsgen.amtree and am_parts): the rest of `alertmanager_config`,
other teams' secrets included, is posted back as it was read, and the tenant's
`template_files` are kept in both modes.
"""
from __future__ import annotations

import copy
from typing import Any

from obsgen import amtree
from obsgen import conventions as c
from obsgen.access import require_allowed, secret_file
from obsgen.artifact import Artifact
from obsgen.deploy.backends import am_parts, am_yaml
from obsgen.deploy.backends.alertmanager import KEY, WHOLE, generated_config, whole_body
from obsgen.deploy.backends.base import Backend, BackendError, ConflictError, connect
from obsgen.deploy.plan import Change, Obj
from obsgen.model import Environment, Model

NAME = "alertmanager"
DEFAULT_PATH = "/api/v1/alerts"
SECRET_FIELDS = {"routing_key_file": "routing_key", "service_key_file": "service_key", "api_url_file": "api_url"}
DIFFERS = "<inline secret that differs from {}>"
# Alertmanager's other secret settings (those it prints as <secret>, and webhook URLs, which carry tokens):
# obsgen generates none of them, so a value found live -- another team's receiver in a whole config, or
# one added by hand to obsgen's -- is shown only as this marker.
HIDDEN = "<secret>"
OTHER_SECRETS = frozenset({
    "url", "webhook_url", "api_key", "user_key", "token", "bot_token", "api_secret", "secret_key", "auth_password",
    "auth_secret", "password", "credentials", "bearer_token", "client_secret", "slack_api_url", "opsgenie_api_key",
    "victorops_api_key", "smtp_auth_password", "smtp_auth_secret", "wechat_api_secret"})


class MimirAlertmanagerBackend(Backend):
    name = NAME

    def __init__(self, model: Model, env: Environment, url: str | None = None):
        spec, self.http = connect(env, NAME, "Mimir Alertmanager", url, mode="mimir")
        self.env, self.spec, self.url = env, spec, url
        self.whole = spec.owns == WHOLE
        self.owner = c.am_owner(model, env)
        self.position = env.alertmanager_placement[0]
        self.path = spec.api_path or DEFAULT_PATH
        self.shape: Any = None
        self.standalone: dict[str, Any] = {}
        self.payloads: dict[tuple[str, str, str], Any] = {}  # desired parts: the shape live secrets are masked by
        self.previous: str | None = None  # the raw document read before writing; None = no config
        self.templates: dict[str, Any] = {}
        self.live: dict[str, Any] = {}
        self.indent: tuple[int, int, int] | None = None  # the stored config's block indentation, kept on write
        self.applied: list[Change] = []

    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        found = generated_config(self.env, artifacts)
        if found is None:
            return []
        self.shape = found[0]
        for path in _secret_paths(self.shape):  # refuse before any request, not halfway through
            secret_file(path, self.http.name)
        if self.whole:
            return [Obj(NAME, "alertmanager-config", KEY, self.shape, payload=self.shape)]
        self.standalone = am_parts.generated(self.env.name, artifacts, am_parts.STANDALONE)
        objs = am_parts.desired_objs(am_parts.generated(self.env.name, artifacts, am_parts.SUBTREE), self.owner)
        self.payloads = {o.ident: o.payload for o in objs}
        return objs

    def read(self, desired: list[Obj]) -> list[Obj]:
        response = self.http.request("GET", self.path, ok=(200, 404))
        if response.status_code == 404:
            self.previous, self.templates, self.live = None, {}, {}
            return []
        self.previous = response.text
        document = self.http.yaml(response, dict, empty={})
        self.templates = self.http.expect(response, document.get("template_files") or {}, dict,
                                          "its `template_files`")
        self.live = _tenant_config(self.http, response, document.get("alertmanager_config"))
        self.indent = am_yaml.indentation(str(document.get("alertmanager_config") or ""))
        if self.whole:
            live = _mask(self.live, self.shape, self._secret)
            return [Obj(NAME, "alertmanager-config", KEY, whole_body(live, self.shape), payload=None)]
        try:
            parts = am_parts.extract(self.live, self.owner)
        except amtree.OwnershipError as exc:
            raise BackendError(f"{self.http.name}: the tenant's config: {exc}") from None
        objs = am_parts.live_objs(parts, self.owner, self.position)
        raw = {("alertmanager", am_parts.RECEIVER, name): r for name, r in parts.receivers.items()}
        masked = []
        for obj in objs:  # only obsgen's own receivers are unmasked-then-masked; no other secret is read
            if obj.kind == am_parts.RECEIVER:
                body = amtree.normal(_mask(raw[obj.ident], self.payloads.get(obj.ident), self._secret))
                obj = Obj(obj.backend, obj.kind, obj.key, body)
            masked.append(obj)
        return masked

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
        if not changes:
            return []
        if self.whole:
            config = _inline(changes[0].obj.payload, self._secret)
        else:
            current = self.http.request("GET", self.path, ok=(200, 404))
            if (current.text if current.status_code == 200 else None) != self.previous:
                raise ConflictError(f"{self.http.name}: the tenant's config changed since obsgen read it; nothing "
                                    f"was written, run diff again")
            inlined = [Change(ch.action, ch.before, ch.after and Obj(
                ch.after.backend, ch.after.kind, ch.after.key, ch.after.body,
                payload=_inline(ch.after.payload, self._secret))) for ch in changes]
            config = copy.deepcopy(self.live)
            am_yaml.release_comments(config, self.owner)
            config = am_parts.merge(config, inlined, self.owner, self.standalone, am_yaml.block)
        text = yaml.safe_dump(config, sort_keys=True, allow_unicode=True) if self.whole else \
            am_yaml.dump(config, self.indent).decode()
        document = {"template_files": self.templates, "alertmanager_config": text}
        self.applied = list(changes)  # from the POST on it may have landed, even if its answer is lost
        response = self.http.request("POST", self.path, ok=(200, 201, 400),
                                     data=yaml.safe_dump(document, sort_keys=True, allow_unicode=True).encode(),
                                     headers={"Content-Type": "application/yaml"})
        if response.status_code == 400:
            self.applied = []  # refused: nothing changed
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


def _tenant_config(http: Any, response: Any, text: Any) -> dict[str, Any]:
    """The tenant's `alertmanager_config` as a round-trip document. Posted back with obsgen's part merged
    in, everything else keeps its text: read as YAML 1.2, as Alertmanager reads it (PyYAML's YAML 1.1
    would turn another team's `start_time: 17:00` into 1020, which Mimir then refuses)."""
    from ruamel.yaml.error import YAMLError

    text = http.expect(response, text or "", str, "its alertmanager_config")
    try:
        live = am_yaml.yaml().load(text) if text.strip() else None
    except YAMLError:
        raise http.malformed(response, "an alertmanager_config that is not YAML") from None
    return http.expect(response, {} if live is None else live, dict, "its alertmanager_config")


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
        shape = shape if isinstance(shape, dict) else {}
        out = {k: HIDDEN if k in OTHER_SECRETS and k not in shape and not isinstance(v, (dict, list))
               else _mask(v, shape.get(k), secret) for k, v in live.items() if k not in SECRET_FIELDS.values()}
        for file_key, inline_key in SECRET_FIELDS.items():
            if inline_key in live:
                path = shape.get(file_key)
                same = isinstance(path, str) and str(live[inline_key]).strip() == secret(path)
                out[file_key] = path if same else DIFFERS.format(path or "the spec")
        return out
    if isinstance(live, list):
        shapes = shape if isinstance(shape, list) else []
        return [_mask(v, shapes[i] if i < len(shapes) else None, secret) for i, v in enumerate(live)]
    return live
