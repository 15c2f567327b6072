"""A Mimir (Cortex) test double: the ruler rule-config API and the multitenant Alertmanager config API.

Written from tests/doubles/contracts/prometheus-alertmanager-api.md ("Common (Mimir / Cortex)", "Ruler
rule-config API", "Alertmanager config API"). One HTTP server on 127.0.0.1 serves both, as Mimir's single
binary does; state is in memory behind one lock; test controls are plain methods, never HTTP.

    with MimirDouble() as mimir:
        requests.get(mimir.url + "/prometheus/config/v1/rules",
                     headers={"Authorization": "Bearer mimir-token", "X-Scope-OrgID": "team-a"})

Where the contract is silent the double copies Mimir's source (pkg/ruler/api.go, ruler/manager.go
ValidateRuleGroup, ruler/rulestore/bucketclient, pkg/alertmanager/api.go, dskit middleware, Prometheus
rulefmt), except where marked [double] (invented) or [contract] (stricter than Mimir):
- [double] Bearer token checked first (Mimir leaves it to a gateway): wrong/missing -> 401 "Unauthorized".
- No route -> 404 "404 page not found"; route without that method -> 405, empty body (gorilla/mux).
- Rule bases: {prefix}/config/v1/rules, legacy /api/v1/rules, and Cortex's /api/prom/rules; one store.
- Multitenant and no X-Scope-OrgID -> 401 "no org id"; multitenant off -> always "anonymous".
- Errors are Go http.Error text (message + newline); rule writes answer 202 JSON
  {"status":"success","data":null,"errorType":"","error":""}; reads answer application/yaml.
- GET {base} and GET {base}/{ns} answer the map {namespace: [groups]}, 404 "no rule groups found" when
  empty; namespaces and groups sorted by name. A missing group: GET 404 "group does not exist";
  DELETE 404 "group does not exist" (filesystem/GCS stores; S3 answers 202: missing_group_delete_status).
  DELETE of a missing namespace -> 404 "group namespace does not exist". (mimirtool: 404 = not an error.)
- POST: [contract] a Content-Type other than application/yaml (or x-yaml, text/yaml) -> 415. The body is
  decoded as yaml.v3 into rulefmt.RuleGroup: first document only, unknown keys dropped, scalars kept as
  text; a type or duration error -> 400 "unable to decoded rule group" (sic). ValidateRuleGroup errors ->
  400, joined by ", ". PromQL via promql_parser; Go templates in labels/annotations are not parsed;
  source_tenants needs tenant_federation=True (Mimir's default is off); no per-tenant limits.
- GET re-marshals the stored group: durations canonical ("300s" -> "5m"), zero values omitted, expr verbatim.
- Alertmanager: the alertmanager_config string is stored and returned verbatim. 400 "error validating
  Alertmanager config: ..." for: empty; no route receiver; undefined or duplicate receivers; *_file secrets
  and TLS files, which Mimir refuses ("setting PagerDuty routing_key_file is not allowed"); template names
  with a path; and, when `amtool` is on PATH, whatever `amtool check-config` (0.25, older than Mimir's
  fork) finds, templates included. DELETE without a config -> 200.
- A posted template that `templates:` does not list (mimir#7075) is ACCEPTED, as by Mimir, which only
  fails at render: unlisted_templates(tenant) reports it; strict_templates=True refuses it instead.
"""
from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote

from .server import ServedDouble

import promql_parser
import yaml

ACCEPTED = json.dumps({"status": "success", "data": None, "errorType": "", "error": ""}, separators=(",", ":")).encode()
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
BAD_GROUP = "unable to decoded rule group"
AM_INVALID = "error validating Alertmanager config: "
AMTOOL_CONFIG = ".mimir-double-alertmanager.yml"   # beside the templates, so relative `templates:` resolve
DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
UNITS = (("y", 31_536_000_000), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
         ("m", 60_000), ("s", 1000), ("ms", 1))
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
REFUSED = {  # Mimir refuses settings that read the server's disk: "setting <what> is not allowed"
    "smtp_auth_password_file, password_file, bearer_token_file, auth_password_file or credentials_file":
        ("password_file", "credentials_file", "bearer_token_file", "smtp_auth_password_file", "auth_password_file"),
    "OAuth2 client_secret_file": ("client_secret_file",),
    "TLS ca_file, cert_file, key_file, ca, cert or key": ("ca_file", "cert_file", "key_file", "tls.ca", "tls.cert",
                                                          "tls.key"),
    "Slack api_url_file or global slack_api_url_file": ("api_url_file", "slack_api_url_file"),
    "VictorOps api_key_file or global victorops_api_key_file": ("victorops.api_key_file", "victorops_api_key_file"),
    "OpsGenie api_key_file or global opsgenie_api_key_file": ("opsgenie.api_key_file", "opsgenie_api_key_file"),
    "PagerDuty service_key_file": ("service_key_file",), "PagerDuty routing_key_file": ("routing_key_file",),
    "Pushover user_key_file": ("user_key_file",), "Pushover token_file": ("token_file",),
    "Telegram bot_token_file": ("bot_token_file",), "Webhook url_file": ("url_file", "webhook_url_file"),
}
FILE_SETTINGS = {key: f"setting {what} is not allowed" for what, keys in REFUSED.items() for key in keys}



class ApiError(Exception):
    """Answered as `status` with a Go http.Error text body (None = empty body)."""

    def __init__(self, status: int, message: str | None = None):
        super().__init__(status, message)
        self.status, self.message = status, message


class _GoLoader(yaml.BaseLoader):
    """Every scalar stays its text (as yaml.v3 decodes into Go strings); only plain nulls become None."""


_GoLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                                ["~", "n", "N", ""])
_GoLoader.add_constructor("tag:yaml.org,2002:null", lambda loader, node: None)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, as yaml.v3 writes them."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s,
                                                             style="|" if "\n" in s else None))


def to_yaml(data) -> bytes:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True).encode()


def parse_duration(text: str) -> int:
    """Prometheus model.ParseDuration -> milliseconds; ValueError when invalid."""
    match = DURATION.fullmatch(text)
    if text == "0":
        return 0
    if not text or not match:
        raise ValueError(f"not a valid duration string: {text!r}")
    return sum(int(v) * mult for v, (_, mult) in zip(match.groups(), UNITS) if v)


def format_duration(ms: int) -> str:
    """Prometheus model.Duration.String(): years and weeks only when exact."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, mult in UNITS:
        if unit in ("y", "w") and ms % mult:
            continue
        if ms // mult:
            out, ms = out + f"{ms // mult}{unit}", ms % mult
    return out


def _text(value) -> str:
    if value is not None and not isinstance(value, str):
        raise ValueError("expected a scalar")
    return value or ""


def _duration(value) -> str | None:
    """Canonical duration text, or None for an absent or zero one (omitempty)."""
    ms = parse_duration(_text(value)) if value is not None else 0
    return format_duration(ms) if ms else None


def _string_map(value) -> dict[str, str]:
    if not isinstance(value or {}, dict):
        raise ValueError("expected a mapping")
    return {_text(k): _text(v) for k, v in sorted((value or {}).items())}


def _compact(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v not in (None, "", {}, [], 0) or k in ("name", "expr", "rules")}


def _decode_rule(raw) -> dict:
    if not isinstance(raw, dict):
        raise ValueError("a rule must be a mapping")
    return _compact({"record": _text(raw.get("record")), "alert": _text(raw.get("alert")),
                     "expr": _text(raw.get("expr")), "for": _duration(raw.get("for")),
                     "keep_firing_for": _duration(raw.get("keep_firing_for")),
                     "labels": _string_map(raw.get("labels")), "annotations": _string_map(raw.get("annotations"))})


def decode_group(payload: bytes | str) -> dict:
    """The body as Mimir stores it (yaml.v3 into rulefmt.RuleGroup); ValueError when it does not decode."""
    try:
        raw = next(iter(yaml.load_all(payload, Loader=_GoLoader)), None) or {}
    except yaml.YAMLError as e:
        raise ValueError(str(e)) from e
    if not isinstance(raw, dict) or not isinstance(raw.get("rules") or [], list):
        raise ValueError("a rule group must be a mapping with a list of rules")
    tenants = raw.get("source_tenants") or []
    if not isinstance(tenants, list):
        raise ValueError("source_tenants must be a list")
    return _compact({"name": _text(raw.get("name")), "interval": _duration(raw.get("interval")),
                     "evaluation_delay": _duration(raw.get("evaluation_delay")),
                     "query_offset": _duration(raw.get("query_offset")), "limit": int(_text(raw.get("limit")) or 0),
                     "source_tenants": [_text(t) for t in tenants],
                     "rules": [_decode_rule(r) for r in raw.get("rules") or []]})


def _rule_errors(rule: dict) -> list[str]:
    """Prometheus rulefmt Rule.Validate (template parsing left out)."""
    errs, record = [], rule.get("record")
    if record and rule.get("alert"):
        errs.append("only one of 'record' and 'alert' must be set")
    if not record and not rule.get("alert"):
        errs.append("one of 'record' or 'alert' must be set")
    if not rule["expr"]:
        errs.append("field 'expr' must be set in rule")
    else:
        try:
            promql_parser.parse(rule["expr"])
        except ValueError as e:
            errs.append(f"could not parse expression: {e}")
    if record:
        errs += [f"invalid field '{key}' in recording rule" for key in ("annotations", "for", "keep_firing_for")
                 if key in rule]
        if not METRIC_NAME.fullmatch(record):
            errs.append(f"invalid recording rule name: {record}")
    errs += [f"invalid label name: {k}" for k in rule.get("labels", {}) if not LABEL_NAME.fullmatch(k)]
    errs += [f"invalid annotation name: {k}" for k in rule.get("annotations", {}) if not LABEL_NAME.fullmatch(k)]
    return errs


def group_errors(group: dict, federation: bool) -> list[str]:
    """Mimir's ValidateRuleGroup."""
    name = group["name"]
    if not name:
        return ["invalid rules configuration: rule group name must not be empty"]
    if not group["rules"]:
        return [f"invalid rules configuration: rule group '{name}' has no rules"]
    errs = []
    if group.get("source_tenants") and not federation:
        errs.append(f"invalid rules configuration: rule group '{name}' is a federated rule group, but rules "
                    "federation is disabled; please contact your service administrator to have it enabled")
    for i, rule in enumerate(group["rules"]):
        label = rule.get("alert") or rule.get("record", "")
        errs += [f'group "{name}", rule {i}, "{label}": {e}' for e in _rule_errors(rule)]
    return errs


def _template_name_error(name: str) -> str | None:
    if name in ("", ".", "..") or os.path.basename(name) != name or os.path.dirname(os.path.normpath(name)):
        return f'invalid template name "{name}": the template name cannot contain any path'
    return None


def _walk(node, owner: str = ""):
    """(owner key, key, value) for every mapping entry of a parsed YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield owner, key, value
            yield from _walk(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, owner)


def _file_setting_error(owner: str, key: str, value) -> str | None:
    """Mimir's refusal of a setting that reads the server's disk (owner: the enclosing key)."""
    scoped = {"tls_config": "tls", "victorops_configs": "victorops", "opsgenie_configs": "opsgenie"}.get(owner)
    return FILE_SETTINGS.get(f"{scoped}.{key}", FILE_SETTINGS.get(key)) if value else None


def _routes(route):
    if isinstance(route, dict):
        yield route
        for child in route.get("routes") or []:
            yield from _routes(child)


def am_config_error(config: str, templates: dict[str, str]) -> str | None:
    """Mimir's validateUserConfig without amtool: the first problem found, or None."""
    if not config:
        return ("configuration provided is empty, if you'd like to remove your configuration please use "
                "the delete configuration endpoint")
    try:
        cfg = yaml.load(config, Loader=_GoLoader)
    except yaml.YAMLError as e:
        return f"yaml: {e}".replace("\n", " ")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("route"), dict):
        return "no route provided in config"
    receivers = [r.get("name") if isinstance(r, dict) else None for r in cfg.get("receivers") or []]
    if not cfg["route"].get("receiver"):
        return "root route must specify a default receiver"
    if not all(receivers):
        return "missing name in receiver"
    dupes = sorted({n for n in receivers if receivers.count(n) > 1})
    if dupes:
        return f'notification config name "{dupes[0]}" is not unique'
    for route in _routes(cfg["route"]):
        if route.get("receiver") and route["receiver"] not in receivers:
            return f'undefined receiver "{route["receiver"]}" used in route'
    refused = next(filter(None, (_file_setting_error(o, k, v) for o, k, v in _walk(cfg))), None)
    if refused:
        return refused
    listed = cfg.get("templates") if isinstance(cfg.get("templates"), list) else []
    return next(filter(None, map(_template_name_error, listed + list(templates))), None)


def decode_user_config(raw: bytes) -> tuple[str, dict[str, str]]:
    """The POST document (yaml.v3 into Mimir's UserConfig); ValueError when it does not decode."""
    try:
        doc = yaml.load(raw, Loader=_GoLoader) or {}
    except yaml.YAMLError as e:
        raise ValueError(" ".join(str(e).split())) from e
    templates = doc.get("template_files") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not isinstance(templates or {}, dict):
        raise ValueError("expected a mapping with template_files (a mapping) and alertmanager_config")
    return _text(doc.get("alertmanager_config")), {_text(k): _text(v) for k, v in (templates or {}).items()}


def unlisted(config: str, templates: dict[str, str]) -> list[str]:
    """Posted template files that no `templates:` glob of the config names (mimir#7075)."""
    try:
        listed = (yaml.load(config, Loader=_GoLoader) or {}).get("templates") or []
    except (yaml.YAMLError, AttributeError):
        listed = []
    return sorted(name for name in templates if not any(fnmatch.fnmatchcase(name, g) for g in listed))


def amtool_error(amtool: str, config: str, templates: dict[str, str]) -> str | None:
    """`amtool check-config` on the config, its templates written beside it; the FAILED message or None."""
    with tempfile.TemporaryDirectory(prefix="mimir-double-") as tmp:
        for name, body in {**templates, AMTOOL_CONFIG: config}.items():
            Path(tmp, name).write_text(body, encoding="utf-8")
        run = subprocess.run([amtool, "check-config", AMTOOL_CONFIG], cwd=tmp, capture_output=True,
                             text=True, timeout=30, check=False)
    if run.returncode == 0:
        return None
    failed = re.findall(r"FAILED: (.*)", run.stdout + run.stderr)
    return failed[0].strip() if failed else (run.stderr or run.stdout).strip()


class MimirDouble(ServedDouble):
    def __init__(self, token: str | None = "mimir-token", multitenant: bool = True, prefix: str = "/prometheus",
                 *, missing_group_delete_status: int = 404, tenant_federation: bool = False,
                 strict_templates: bool = False, amtool: str | None = shutil.which("amtool")):
        super().__init__()
        self.token, self.multitenant, self.prefix = token, multitenant, prefix.rstrip("/")
        self.missing_group_delete_status = missing_group_delete_status
        self.tenant_federation, self.strict_templates, self.amtool = tenant_federation, strict_templates, amtool
        self.rule_bases = (f"{self.prefix}/config/v1/rules", "/api/v1/rules", "/api/prom/rules")
        self._lock = threading.RLock()
        self._requests: list[tuple[str, str, str | None]] = []
        self._faults: list[dict] = []
        self._latency = 0.0
        self._rules: dict[str, dict[str, dict[str, dict]]] = {}   # tenant -> namespace -> name -> group
        self._alertmanager: dict[str, dict] = {}                   # tenant -> {config, templates}

    # ---- test controls ------------------------------------------------------------------
    def fail_next(self, method: str, path_prefix: str, status: int, body: str = "", times: int = 1) -> None:
        """The next `times` requests whose method matches (`*` = any) and whose raw path (query included)
        starts with `path_prefix` get `status` with the plain-text `body`, and change nothing."""
        with self._lock:
            self._faults.append({"method": method.upper(), "prefix": path_prefix, "status": status,
                                 "body": body, "times": times})

    def latency(self, seconds: float) -> None:
        """Delay every request by `seconds` before it is answered."""
        self._latency = float(seconds)

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        """Snapshot of (method, raw path as sent, tenant) -- tenant None when the header was missing."""
        with self._lock:
            return list(self._requests)

    @property
    def writes(self) -> int:
        return sum(1 for method, _, _ in self.requests if method not in ("GET", "HEAD"))

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def seed_group(self, tenant: str, namespace: str, group_dict: dict) -> dict:
        """Store a group directly (decoded like a POST, not validated); returns it as stored."""
        group = decode_group(yaml.safe_dump(group_dict))
        with self._lock:
            self._rules.setdefault(tenant, {}).setdefault(namespace, {})[group["name"]] = group
            return copy.deepcopy(group)

    def groups(self, tenant: str) -> dict[str, list[dict]]:
        """{namespace: [group, ...]} of a tenant, in the order GET answers it."""
        with self._lock:
            return copy.deepcopy(self._listing(tenant))

    def seed_alertmanager(self, tenant: str, config_str: str, templates: dict[str, str] | None = None) -> None:
        with self._lock:
            self._alertmanager[tenant] = {"config": config_str, "templates": dict(templates or {})}

    def alertmanager_config(self, tenant: str) -> dict | None:
        """{"template_files": {...}, "alertmanager_config": "<str>"} as GET answers it, or None."""
        with self._lock:
            stored = self._alertmanager.get(tenant)
            return None if stored is None else {"template_files": dict(stored["templates"]),
                                                "alertmanager_config": stored["config"]}

    def unlisted_templates(self, tenant: str) -> list[str]:
        """Stored template files the tenant's config does not list: they fail at render (mimir#7075)."""
        with self._lock:
            stored = self._alertmanager.get(tenant)
            return [] if stored is None else unlisted(stored["config"], stored["templates"])

    # ---- internals ----------------------------------------------------------------------
    def _listing(self, tenant: str, only: str | None = None) -> dict[str, list[dict]]:
        spaces = self._rules.get(tenant, {})
        return {ns: [spaces[ns][name] for name in sorted(spaces[ns])] for ns in sorted(spaces)
                if spaces[ns] and only in (None, ns)}

    def _take_fault(self, method: str, path: str) -> dict | None:
        with self._lock:
            fault = next((f for f in self._faults if f["method"] in ("*", method)
                          and path.startswith(f["prefix"])), None)
            if fault:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self._faults.remove(fault)
            return fault

    def _route(self, path: str) -> tuple[str, list[str]] | None:
        """("alerts", []) or ("rules", [namespace[, group]]) with percent-decoded segments, or None."""
        if path == "/api/v1/alerts":
            return "alerts", []
        for base in self.rule_bases:
            if path == base:
                return "rules", []
            parts = path[len(base) + 1:].split("/") if path.startswith(base + "/") else []
            if 1 <= len(parts) <= 2 and all(parts):
                return "rules", [unquote(p, errors="strict") for p in parts]
        return None


METHODS = {("alerts", 0): ("GET", "POST", "DELETE"), ("rules", 0): ("GET",),
           ("rules", 1): ("GET", "POST", "DELETE"), ("rules", 2): ("GET", "DELETE")}


class _Handler(BaseHTTPRequestHandler):
    """One request. Route methods return (status, body bytes, content type) or raise ApiError."""

    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    @property
    def d(self) -> MimirDouble:
        return self.server.double

    def _handle(self) -> None:
        d, method = self.d, self.command
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        tenant = (self.headers.get("X-Scope-OrgID") or None) if d.multitenant else "anonymous"
        with d._lock:
            d._requests.append((method, self.path, tenant))
        if d._latency:
            time.sleep(d._latency)
        fault = d._take_fault(method, self.path)
        if fault:
            return self._send(fault["status"], fault["body"].encode(), "text/plain; charset=utf-8")
        try:
            self._send(*self._dispatch(method, self.path.split("?", 1)[0], tenant, raw))
        except ApiError as e:
            body = b"" if e.message is None else f"{e.message}\n".encode()
            self._send(e.status, body, "text/plain; charset=utf-8")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self, method: str, path: str, tenant: str | None, raw: bytes):
        d = self.d
        if d.token is not None and self.headers.get("Authorization", "") != f"Bearer {d.token}":
            raise ApiError(401, "Unauthorized")
        try:
            route = d._route(path)
        except UnicodeDecodeError:
            raise ApiError(400, "invalid URL escape") from None
        if route is None:
            raise ApiError(404, "404 page not found")
        kind, args = route
        if method not in METHODS[(kind, len(args))]:
            raise ApiError(405)
        if tenant is None:
            raise ApiError(401, "no org id")
        name = f"{kind}_{method.lower()}" + ("" if kind == "alerts" else str(len(args)))
        return getattr(self, name)(tenant, raw, *args)

    # ---- ruler ----------------------------------------------------------------------------
    def _yaml(self, data) -> tuple[int, bytes, str]:
        return 200, to_yaml(data), "application/yaml"

    def rules_get0(self, tenant, raw, namespace: str | None = None):
        with self.d._lock:
            listing = self.d._listing(tenant, namespace)
            if not listing:
                raise ApiError(404, "no rule groups found")
            return self._yaml(listing)

    rules_get1 = rules_get0

    def rules_get2(self, tenant, raw, namespace, group):
        with self.d._lock:
            found = self.d._rules.get(tenant, {}).get(namespace, {}).get(group)
            if found is None:
                raise ApiError(404, "group does not exist")
            return self._yaml(found)

    def rules_post1(self, tenant, raw, namespace):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in YAML_TYPES:
            raise ApiError(415, f"unsupported Content-Type {ctype!r}: send application/yaml")
        try:
            group = decode_group(raw)
        except ValueError:
            raise ApiError(400, BAD_GROUP) from None
        errs = group_errors(group, self.d.tenant_federation)
        if errs:
            raise ApiError(400, ", ".join(errs))
        with self.d._lock:
            self.d._rules.setdefault(tenant, {}).setdefault(namespace, {})[group["name"]] = group
        return 202, ACCEPTED, "application/json"

    def rules_delete1(self, tenant, raw, namespace):
        with self.d._lock:
            if not self.d._rules.get(tenant, {}).pop(namespace, None):
                raise ApiError(404, "group namespace does not exist")
        return 202, ACCEPTED, "application/json"

    def rules_delete2(self, tenant, raw, namespace, group):
        with self.d._lock:
            spaces = self.d._rules.get(tenant, {})
            if spaces.get(namespace, {}).pop(group, None) is None and self.d.missing_group_delete_status != 202:
                raise ApiError(self.d.missing_group_delete_status, "group does not exist")
            if namespace in spaces and not spaces[namespace]:
                del spaces[namespace]
        return 202, ACCEPTED, "application/json"

    # ---- alertmanager ---------------------------------------------------------------------
    def alerts_get(self, tenant, raw):
        doc = self.d.alertmanager_config(tenant)
        if doc is None:
            raise ApiError(404, "alertmanager storage object not found")
        return self._yaml(doc)

    def alerts_post(self, tenant, raw):
        d = self.d
        try:
            config, templates = decode_user_config(raw)
        except ValueError as e:
            raise ApiError(400, f"error marshalling YAML Alertmanager config: {e}") from None
        error = am_config_error(config, templates)
        if error is None and d.strict_templates and unlisted(config, templates):
            error = f"template file {unlisted(config, templates)[0]!r} is not listed under templates:"
        if error is None and d.amtool:
            error = amtool_error(d.amtool, config, templates)
        if error:
            raise ApiError(400, AM_INVALID + error)
        d.seed_alertmanager(tenant, config, templates)
        return 201, b"", "text/plain"

    def alerts_delete(self, tenant, raw):
        with self.d._lock:
            self.d._alertmanager.pop(tenant, None)
        return 200, b"", "text/plain"


MimirDouble.handler = _Handler
