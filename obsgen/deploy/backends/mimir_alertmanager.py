"""The Mimir/Cortex multitenant Alertmanager config API (`/api/v1/alerts`).

Mimir refuses `*_file` secrets in tenant configs (the files would have to live
on Mimir's hosts), so this client reads each `routing_key_file` / `api_url_file`
named in the generated config on the machine running obsgen and sends the value
inline, in the request body only. Read-back replaces every inline secret by a
reference to the file it must equal — or by a marker when it differs — so no
secret value ever reaches a diff, a log or the ledger. A spec names those files, so
they are read only under a directory the operator lists in OBSGEN_SECRET_DIRS, and the
config carrying their values is sent only to an endpoint the operator allows (an
override URL, or a host in OBSGEN_ALLOWED_HOSTS) -- see obsgen/deploy/http.py.

By default (`owns: subtree`) obsgen changes only its part of the tenant's
config (see obsgen.compile.amtree and am_parts): the rest of `alertmanager_config`,
other teams' secrets included, is posted back as it was read, and the tenant's
`template_files` are kept in both modes.
"""
from __future__ import annotations

import copy
from typing import Any

from obsgen.compile import amtree
from obsgen.compile import conventions as c
from obsgen.deploy.access import read_secret, require_allowed, secret_file
from obsgen.model.artifact import Artifact
from obsgen.deploy import state
from obsgen.deploy.backends import am_parts, am_shape, am_yaml
from obsgen.deploy.backends.alertmanager import KEY, WHOLE, generated_config, whole_body
from obsgen.deploy.backends.base import Backend, BackendError, ConflictError, connect
from obsgen.deploy.normalise import scrub, secret_values
from obsgen.deploy.plan import Change, Obj
from obsgen.model import Environment, Model

NAME = "alertmanager"
DEFAULT_PATH = "/api/v1/alerts"
SECRET_FIELDS = {"routing_key_file": "routing_key", "service_key_file": "service_key", "api_url_file": "api_url"}
URL_SECRETS = ("api_url_file",)  # Alertmanager parses these values as URLs
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
        self.posted: dict[str, Any] | None = None  # the document obsgen's own POST sent (None: none yet)

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
        document = self.http.yaml(response, dict)
        self.templates = self.http.expect(response, document.get("template_files") or {}, dict,
                                          "its `template_files`")
        if "alertmanager_config" not in document:  # a stored config always has one: this is no config
            raise self.http.malformed(response, "no `alertmanager_config`")
        self.live = _tenant_config(self.http, response, document["alertmanager_config"])
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
            if obj.kind == am_parts.RECEIVER and obj.owned:
                body = amtree.normal(_mask(raw[obj.ident], self.payloads.get(obj.ident), self._secret))
                obj = Obj(obj.backend, obj.kind, obj.key, body)
            masked.append(obj)
        return masked

    def _secret(self, path: str) -> str:
        """The one line a secret file holds (Mimir needs secrets inline, so obsgen reads the file named in
        the spec on this machine): only under OBSGEN_SECRET_DIRS, a regular file, size-capped."""
        return read_secret(path, self.http.name)

    def _lock(self) -> Any:
        """The tenant's lock (endpoint and tenant): two environments sharing one tenant exclude each other."""
        return state.target_lock(state.tenant_target(self.http.base_url + self.path, self.spec.tenant),
                                 f"the Alertmanager config of Mimir tenant {self.spec.tenant or '(none)'} at "
                                 f"{self.http.base_url}", f"obsgen apply --env {self.env.name}")

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied, self.posted = [], None
        if not changes:
            return []
        with self._lock():
            return self._apply(changes)

    def _apply(self, changes: list[Change]) -> list[Change]:
        import yaml

        self.applied = []
        if any(_secret_paths(change.obj.payload) for change in changes):
            require_allowed(self.spec, self.env.name, self.url, "the config's inline secrets")
        if not changes:
            return []
        sent: set[str] = set()  # every secret value this apply inlines: never repeated in an error line

        def secret(path: str) -> str:
            value = self._secret(path)
            sent.add(value)
            return value

        for change in changes:  # refuse a secret Alertmanager cannot parse before sending anything
            self._check_urls(change.obj.payload)
        if self.whole:
            config = _inline(changes[0].obj.payload, secret)
        else:
            current = self.http.request("GET", self.path, ok=(200, 404))
            if (current.text if current.status_code == 200 else None) != self.previous:
                raise ConflictError(f"{self.http.name}: the tenant's config changed since obsgen read it; nothing "
                                    f"was written, run diff again")
            inlined = [Change(ch.action, ch.before, ch.after and Obj(
                ch.after.backend, ch.after.kind, ch.after.key, ch.after.body,
                payload=_inline(ch.after.payload, secret))) for ch in changes]
            config = copy.deepcopy(self.live)
            am_yaml.release_comments(config, self.owner)
            config = am_parts.merge(config, inlined, self.owner, self.standalone, am_yaml.block)
        text = yaml.safe_dump(config, sort_keys=True, allow_unicode=True) if self.whole else \
            am_yaml.dump(config, self.indent).decode()
        document = {"template_files": self.templates, "alertmanager_config": text}
        self.applied = list(changes)  # from the POST on it may have landed, even if its answer is lost
        self.posted = document
        sent |= secret_values(self.live)
        try:
            response = self.http.request("POST", self.path, ok=(200, 201, 400),
                                         data=yaml.safe_dump(document, sort_keys=True, allow_unicode=True).encode(),
                                         headers={"Content-Type": "application/yaml"})
        except BackendError as exc:  # an error answer may quote what was sent
            exc.args = (scrub(str(exc), sent), *exc.args[1:])
            raise
        if response.status_code == 400:
            self.applied = []  # refused: nothing changed
            refusal = scrub(response.text, sent).strip()[:300]
            raise BackendError(f"{self.http.name} refused the new config: {refusal}; the previous config is still "
                               f"in place")
        return self.applied

    def prepare(self, changes: list[Change]) -> None:
        """Before any backend writes: a secret that is not a URL where Alertmanager needs one stops the apply."""
        for change in changes:
            self._check_urls(change.obj.payload)

    def _check_urls(self, payload: Any, receiver: str = "") -> None:
        """Every `*_file` secret that Alertmanager reads as a URL holds an http(s) URL: Alertmanager quotes a
        value it cannot parse in its error, so obsgen refuses it first, naming the field and the file."""
        if isinstance(payload, list):
            for item in payload:
                self._check_urls(item, receiver)
            return
        if not isinstance(payload, dict):
            return
        receiver = str(payload.get("name") or receiver)
        for key, value in payload.items():
            if key in URL_SECRETS and isinstance(value, str) and not _is_url(self._secret(value)):
                where = f" of receiver {receiver}" if receiver else ""
                raise BackendError(f"{self.http.name}: secret file {value} ({key}{where}) does not hold an http(s) "
                                   f"URL with a host and no spaces, which Alertmanager needs; fix the file (its "
                                   f"content is not shown)")
            self._check_urls(value, receiver)

    def restore(self, applied: list[Change]) -> None:
        """Put back the tenant's config as it was -- only while it holds what obsgen posted (or, when that
        POST's answer was lost, what was there before): a config someone changed since is left as it is
        and reported, never overwritten."""
        if not applied or self.posted is None:
            return
        with self._lock():
            current = self.http.request("GET", self.path, ok=(200, 404))
            now = _stored(current)
            if now == _stored_text(self.previous):
                return  # the POST did not land, or someone put it back: nothing of obsgen's is there
            if now != _stored_doc(self.posted):
                what = "was deleted" if now is None else "changed"
                raise BackendError(f"{self.http.name}: the tenant's config {what} since obsgen wrote it (another "
                                   f"writer?); left as it is")
            if self.previous is None:
                self.http.request("DELETE", self.path, ok=(200, 404))
            else:
                self.http.request("POST", self.path, ok=(200, 201), data=self.previous.encode(),
                                  headers={"Content-Type": "application/yaml"})
            self.posted = None


def _stored_doc(document: Any) -> tuple[str, dict[str, Any]] | None:
    """A tenant's stored config in comparable form: (alertmanager_config text, template files)."""
    if not isinstance(document, dict):
        return None
    return str(document.get("alertmanager_config") or ""), dict(document.get("template_files") or {})


def _stored_text(text: str | None) -> tuple[str, dict[str, Any]] | None:
    import yaml

    if text is None:
        return None
    try:
        return _stored_doc(yaml.safe_load(text))
    except yaml.YAMLError:
        return None


def _stored(response: Any) -> tuple[str, dict[str, Any]] | None:
    return None if response.status_code == 404 else _stored_text(response.text) or ("<unreadable>", {})


def _is_url(value: str) -> bool:
    """As Alertmanager's config.URL accepts it (an http or https URL with a host), and no whitespace."""
    from urllib.parse import urlsplit

    if not value or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _tenant_config(http: Any, response: Any, text: Any) -> dict[str, Any]:
    """The tenant's `alertmanager_config` as a round-trip document. Posted back with obsgen's part merged
    in, everything else keeps its text: read as YAML 1.2, as Alertmanager reads it (PyYAML's YAML 1.1
    would turn another team's `start_time: 17:00` into 1020, which Mimir then refuses)."""
    from ruamel.yaml.error import YAMLError

    text = http.expect(response, text, str, "its alertmanager_config")
    if not text.strip():  # Mimir stores only a config it validated, never an empty one
        raise http.malformed(response, "an empty alertmanager_config")
    try:
        live = am_yaml.yaml().load(text)
    except YAMLError:
        raise http.malformed(response, "an alertmanager_config that is not YAML") from None
    live = http.expect(response, live, dict, "its alertmanager_config")
    wrong = am_shape.problem(live)
    if wrong:
        raise http.malformed(response, f"an alertmanager_config that is no Alertmanager config ({wrong})")
    return live


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
