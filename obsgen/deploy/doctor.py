"""`obsgen doctor`: every backend of an environment checked at once, one line per check, with the fix.

For each backend of the environment, in parallel: its URL (the operator's override, else the spec's),
whether credentials may go there (OBSGEN_ALLOWED_HOSTS), whether its token is set and readable, then one
authenticated read -- the read `diff` starts with -- that shows it reachable, the token accepted and (for
Mimir) the tenant served; then what `apply` will need: Prometheus's lifecycle API (it reloads the
rules) and a writable rules directory, a readable Alertmanager config file in a writable directory,
Mimir's secret files under OBSGEN_SECRET_DIRS. A Pushgateway is checked when one is given. A check
that depends on one that failed is not run (and says so). A warning (Prometheus keeps less than the longest
SLO period) is said but fails nothing. Nothing is written anywhere.
"""
from __future__ import annotations

import errno
import getpass
import os
from functools import partial
from pathlib import Path
from typing import Any, Callable

from obsgen import access
from obsgen import conventions as c
from obsgen import durations
from obsgen.deploy.checks import SKIP, Check, Checks, Report
from obsgen.deploy.session import Overrides
from obsgen.http import BackendError, Http, parallel
from obsgen.model import Backend as BackendSpec
from obsgen.model import Environment, Model

ANY_STATUS = tuple(range(100, 600))  # the checks read every answer themselves


LABELS = {("grafana", "grafana"): "Grafana", ("prometheus", "prometheus"): "Prometheus",
          ("prometheus", "mimir"): "Mimir ruler", ("alertmanager", "alertmanager"): "Alertmanager",
          ("alertmanager", "mimir"): "Mimir Alertmanager"}


def run(model: Model, env: Environment, overrides: Overrides, only: tuple[str, ...] = (),
        pushgateway: str | None = None, sources: dict[str, str] | None = None) -> Report:
    """Check the backends `only` (default: all) of `env`, and the Pushgateway when one is given; all at
    once. `sources` names where each override came from (a flag or a variable), for the URL lines."""
    sources = sources or {}
    jobs: list[Callable[[], list[Check]]] = []
    for kind in ("grafana", "prometheus", "alertmanager"):
        spec = env.backend(kind)
        if only and kind not in only:
            continue
        if spec is None:
            if only:
                jobs.append(partial(lambda k: [Check(k, "spec", SKIP, f"environment {env.name} has no {k} backend")],
                                    kind))
            continue
        label = f"{LABELS.get((kind, spec.mode), kind)} ({env.name})"
        jobs.append(partial(_backend, model, env, spec, label, overrides, sources.get(kind, "")))
    if pushgateway:
        jobs.append(partial(_pushgateway, pushgateway, sources.get("pushgateway", "")))
    return Report(env.name, [check for checks in parallel(lambda job: job(), jobs) for check in checks])


# --- one backend -------------------------------------------------------------------------------------

def _backend(model: Model, env: Environment, spec: BackendSpec, label: str, overrides: Overrides,
             source: str) -> list[Check]:
    checks = Checks(label)
    url = overrides.urls.get(spec.kind)
    http = _access(checks, env, spec, url, source)
    read = {("grafana", "grafana"): _grafana, ("prometheus", "prometheus"): _prometheus,
            ("prometheus", "mimir"): _mimir_ruler, ("alertmanager", "alertmanager"): _alertmanager,
            ("alertmanager", "mimir"): _mimir_alertmanager}.get((spec.kind, spec.mode))
    if read is not None:
        read(checks, http, model, env, spec, overrides)
    return checks.checks


def _access(checks: Checks, env: Environment, spec: BackendSpec, url: str | None, source: str) -> Http | None:
    """URL, may credentials go there, is the token there: the checks no request is needed for.
    An Http client for the backend when they passed, else None."""
    where = f"from {source or 'an override'}" if url else "the spec's"
    checks.url_fix = f"fix {source or 'the override'}" if url else f"fix the spec's url or pass --{spec.kind}-url"
    try:
        access.endpoint_of(spec, env.name, url)
        checks.ok("URL", f"{url or spec.url} ({where})")
    except BackendError as exc:
        fix = (f"give {source or 'the override'} as http(s)://host[:port]" if url
               else f"write the {spec.kind} url of {env.name} in the spec as http(s)://host[:port]")
        checks.fail("URL", _bare(exc, spec, env), fix, halt=True)
        checks.skip("token")
        return None
    ref = spec.token_env or spec.token_file
    if not ref:
        checks.ok("token", "none in the spec (requests carry no credentials)")
    else:
        try:
            access.require_allowed(spec, env.name, url)
        except access.AccessError as exc:
            checks.fail("token", exc.problem.removeprefix(f"{spec.kind} ({env.name}): "), exc.fix, halt=True)
            return None
        _token(checks, env, spec)
        if checks.halted:
            return None
    try:
        return access.connect(env, spec.kind, checks.backend.rsplit(" (", 1)[0], url, mode=spec.mode)[1]
    except BackendError as exc:  # checked above; anything else connect refuses still ends as one line
        checks.fail("connect", _bare(exc, spec, env), "see the message", halt=True)
        return None


def _token(checks: Checks, env: Environment, spec: BackendSpec) -> None:
    name = checks.backend.rsplit(" (", 1)[0]
    if spec.token_env:
        if not os.environ.get(spec.token_env, "").strip():
            checks.fail("token", f"environment variable {spec.token_env} is not set",
                        f"export {spec.token_env}=<the {name} token> where obsgen runs", halt=True)
        else:
            checks.ok("token", f"{spec.token_env} is set")
        return
    try:
        with open(spec.token_file, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as exc:
        checks.fail("token", f"cannot read token_file {spec.token_file}: {exc.strerror}",
                    f"write the {name} token to {spec.token_file}, readable by {_user()}, or name another "
                    f"file in the spec's token_file", halt=True)
        return
    if not token:
        checks.fail("token", f"token_file {spec.token_file} is empty",
                    f"write the {name} token to {spec.token_file}", halt=True)
    else:
        checks.ok("token", f"token_file {spec.token_file} is readable")


def _get(checks: Checks, http: Http | None, spec: BackendSpec, path: str, **kwargs: Any) -> Any:
    """One authenticated read: the `reachable` and `token accepted` checks; the answer when both pass."""
    if http is None:
        checks.skip("reachable")
        if spec.token_env or spec.token_file:
            checks.skip("token accepted")
        return None
    try:
        response = http.request("GET", path, ok=ANY_STATUS, **kwargs)
    except BackendError as exc:
        name = checks.backend.rsplit(" (", 1)[0]
        checks.fail("reachable", str(exc), f"is {name} running at {http.base_url}? {checks.url_fix}", halt=True)
        return None
    checks.ok("reachable", f"{http.base_url} answered GET {path}")
    ref = spec.token_env or spec.token_file
    status = response.status_code
    if status == 401 and "no org id" in response.text:
        checks.fail("tenant", f"{http.name} wants a tenant (HTTP 401: no org id)",
                    "set the backend's tenant in the spec", halt=True)
    elif status in (401, 403):
        verb = "rejected the token (HTTP 401)" if status == 401 else f"denied GET {path} (HTTP 403)"
        fix = (f"the token in {ref} is wrong, expired or lacks permission: give it a valid one" if ref else
               "the backend wants credentials: set token_env or token_file in the spec")
        checks.fail("token accepted" if ref else "credentials", f"{http.name} {verb}", fix, halt=True)
    elif ref:
        checks.ok("token accepted", f"GET {path} answered HTTP {status}")
    return None if checks.halted else response


def _grafana(checks: Checks, http: Http | None, model: Model, env: Environment, spec: BackendSpec,
             overrides: Overrides) -> None:
    folder = c.grafana_folder_uid(model, env)
    response = _get(checks, http, spec, "/api/search", params={
        "type": "dash-db", "folderUIDs": folder, "tag": c.owner_tag(model, env), "limit": 5000})
    if response is None:
        checks.skip("dashboards")
        return
    if response.status_code != 200:
        checks.fail("dashboards", f"GET /api/search answered HTTP {response.status_code}",
                    f"is {http.base_url} really Grafana?")
        return
    try:
        hits = http.json(response, list)
    except BackendError as exc:
        checks.fail("dashboards", str(exc), "point the Grafana url at Grafana itself")
        return
    checks.ok("dashboards", f"folder {folder} holds {len(hits)} dashboard{'' if len(hits) == 1 else 's'} of "
                            f"obsgen's")


def _prometheus(checks: Checks, http: Http | None, model: Model, env: Environment, spec: BackendSpec,
                overrides: Overrides) -> None:
    response = _get(checks, http, spec, "/api/v1/rules")
    if response is not None and response.status_code != 200:
        checks.fail("rules API", f"GET /api/v1/rules answered HTTP {response.status_code}",
                    f"is {http.base_url} really Prometheus?", halt=True)
    if checks.halted:
        checks.skip("lifecycle API")
    else:
        _lifecycle(checks, http)
        _retention(checks, http, model)
    _rules_dir(checks, Path(overrides.prometheus_rules_dir or spec.rules_dir))


def _retention(checks: Checks, http: Http, model: Model) -> None:
    """An SLO's budget and period ratio cover only what Prometheus keeps: its retention (runtimeinfo's
    storageRetention: `15d`, `45d or 1GiB`, `1GiB`) against the longest SLO period. A warning, not a failure:
    nothing obsgen writes breaks, but the numbers cover less than the spec says."""
    if not model.slos:
        return
    longest = max(model.slos, key=lambda slo: durations.seconds(slo.period))
    need, fix = f"SLO {longest.id}'s period of {longest.period}", \
        f"start Prometheus with --storage.tsdb.retention.time={longest.period} or more"
    status = _status(checks, http, "runtimeinfo", "retention")
    if status is None:
        return
    data, _code = status
    kept = data.get("storageRetention") if isinstance(data, dict) else None
    if not isinstance(kept, str) or not kept:
        checks.skip("retention", "could not tell: GET /api/v1/status/runtimeinfo names no storageRetention")
        return
    by_time = kept.split(" or ")[0].strip()
    if not durations.is_duration(by_time):
        checks.warn("retention", f"Prometheus keeps data by size only ({kept}): how far back that reaches "
                                 f"depends on the data, and {need} may not fit", fix)
    elif durations.seconds(by_time) < durations.seconds(longest.period):
        checks.warn("retention", f"Prometheus keeps {kept}, less than {need}: its error budget and period "
                                 f"ratio silently cover {by_time} only", fix)
    else:
        size = " (the size limit may cut it shorter)" if " or " in kept else ""
        checks.ok("retention", f"Prometheus keeps {kept}, at least {need}{size}")


def _status(checks: Checks, http: Http, page: str, what: str) -> tuple[Any, int] | None:
    """The `data` of Prometheus's /api/v1/status/<page> (None unless HTTP 200) and the HTTP status; None,
    with `what` skipped as "could not tell", when the request fails."""
    try:
        response = http.request("GET", f"/api/v1/status/{page}", ok=ANY_STATUS)
        data = http.json(response, dict).get("data") if response.status_code == 200 else None
    except BackendError as exc:
        checks.skip(what, f"could not tell: {exc}")
        return None
    return data, response.status_code


def _lifecycle(checks: Checks, http: Http) -> None:
    """Prometheus reloads its rules on POST /-/reload only with --web.enable-lifecycle. Without a reload
    to try (a reload is not harmless: it restarts the notifier's discovery), the flags it runs with say:
    GET /-/reload answers 405 whether the API is on or off (checked against Prometheus 2.42)."""
    status = _status(checks, http, "flags", "lifecycle API")
    if status is None:
        return
    flags, code = status
    value = flags.get("web.enable-lifecycle") if isinstance(flags, dict) else None
    if value == "true":
        checks.ok("lifecycle API", "on (--web.enable-lifecycle): apply can reload the rules")
    elif value == "false":
        checks.fail("lifecycle API", "off: Prometheus refuses POST /-/reload, so apply cannot load new rules",
                    "start Prometheus with --web.enable-lifecycle")
    else:
        checks.skip("lifecycle API", f"could not tell: GET /api/v1/status/flags answered HTTP "
                                     f"{code} without web.enable-lifecycle")


def _rules_dir(checks: Checks, path: Path) -> None:
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        checks.fail("rules_dir", f"{path} {what}",
                    f"create it where Prometheus's rule_files globs look (mkdir -p {path}), or pass "
                    f"--prometheus-rules-dir")
    elif not os.access(path, os.W_OK | os.X_OK):
        checks.fail("rules_dir", f"{path} is not writable by {_user()}",
                    f"let {_user()} write {path} (chown or chmod), or pass --prometheus-rules-dir")
    else:
        checks.ok("rules_dir", f"{path} exists and is writable")


def _mimir_ruler(checks: Checks, http: Http | None, model: Model, env: Environment, spec: BackendSpec,
                 overrides: Overrides) -> None:
    from obsgen.deploy.backends.mimir_ruler import DEFAULT_PATH

    _tenant(checks, http, spec, (spec.api_path or DEFAULT_PATH).rstrip("/"), "ruler", "no rule groups found",
            "no rule groups yet", "set api_path in the spec (Cortex: /api/v1/rules) and check the ruler API is "
                                  "enabled (-ruler.enable-api)")


def _mimir_alertmanager(checks: Checks, http: Http | None, model: Model, env: Environment, spec: BackendSpec,
                        overrides: Overrides) -> None:
    from obsgen.deploy.backends.mimir_alertmanager import DEFAULT_PATH

    _tenant(checks, http, spec, spec.api_path or DEFAULT_PATH, "Alertmanager config API",
            "alertmanager storage object not found", "no config yet; apply creates it",
            "set api_path in the spec, and check Mimir runs its Alertmanager")
    _secret_files(checks, env, spec, overrides.alertmanager_url)


def _tenant(checks: Checks, http: Http | None, spec: BackendSpec, path: str, api: str, empty: str,
            empty_means: str, fix: str) -> None:
    """Mimir's answer for the tenant: 200, or 404 with the body that means "nothing stored for it yet"."""
    response = _get(checks, http, spec, path)
    tenant = spec.tenant or "anonymous"
    if response is None:
        checks.skip("tenant")
    elif response.status_code == 200:
        checks.ok("tenant", f"the {api} answers for tenant {tenant}")
    elif response.status_code == 404 and empty in response.text:
        checks.ok("tenant", f"the {api} answers for tenant {tenant} ({empty_means})")
    else:
        first = (response.text or "").strip().splitlines()[:1]
        checks.fail("tenant", f"no {api} at {http.base_url}{path} (HTTP {response.status_code}"
                              f"{': ' + first[0][:120] if first else ''})", fix)


def _secret_files(checks: Checks, env: Environment, spec: BackendSpec, url: str | None) -> None:
    """Mimir refuses *_file secrets, so obsgen reads them and sends their values: only from under
    OBSGEN_SECRET_DIRS, and only to an endpoint the operator allows."""
    paths = sorted({p for target in env.channels for p in (target.routing_key_file, target.api_url_file) if p})
    if not paths:
        return
    problems = 0
    try:  # with a token, the token check has said whether the endpoint may have secrets
        if not (spec.token_env or spec.token_file):
            access.require_allowed(spec, env.name, url, "the config's inline secrets")
    except access.AccessError as exc:
        checks.fail("secret files", exc.problem.removeprefix(f"{spec.kind} ({env.name}): "), exc.fix)
        problems += 1
    for path in paths:
        try:
            real = access.secret_file(path, checks.backend)
        except access.AccessError as exc:
            checks.fail("secret files", exc.problem.removeprefix(f"{checks.backend}: "), exc.fix)
            problems += 1
            continue
        if not os.access(real, os.R_OK) or not os.path.isfile(real):
            checks.fail("secret files", f"cannot read {path}", f"let {_user()} read {path}")
            problems += 1
    if not problems:
        checks.ok("secret files", f"{len(paths)} secret file{'s' if len(paths) > 1 else ''} readable under "
                                  f"{access.SECRET_DIRS}")


def _alertmanager(checks: Checks, http: Http | None, model: Model, env: Environment, spec: BackendSpec,
                  overrides: Overrides) -> None:
    response = _get(checks, http, spec, "/api/v2/status")
    if response is None:
        checks.skip("status API")
    else:
        try:
            status = http.json(response, dict) if response.status_code == 200 else None
            version = (status.get("versionInfo") or {}).get("version") if status else None
            if status is None or not isinstance((status.get("config") or {}).get("original"), str):
                raise BackendError(f"GET /api/v2/status answered HTTP {response.status_code} without a config")
            checks.ok("status API", f"answers with the running config"
                                    f"{f' (Alertmanager {version})' if isinstance(version, str) else ''}")
        except BackendError as exc:
            checks.fail("status API", str(exc), f"is {http.base_url} really Alertmanager?")
    _config_file(checks, Path(overrides.alertmanager_config_file or spec.config_file))


def _config_file(checks: Checks, path: Path) -> None:
    import yaml

    fix_path = "point the spec's config_file (or --alertmanager-config-file) at the file Alertmanager runs " \
               "with (its --config.file)"
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        checks.fail("config_file", f"{path} does not exist", fix_path)
        return
    except OSError as exc:
        checks.fail("config_file", f"cannot read {path}: {exc.strerror}",
                    fix_path if exc.errno == errno.EISDIR else f"let {_user()} read and write {path}")
        return
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError:
        document = []
    if document is not None and not isinstance(document, dict):
        checks.fail("config_file", f"{path} is not a YAML mapping", "fix it: obsgen merges its part into it")
        return
    directory = path.parent
    if not os.access(directory, os.W_OK | os.X_OK):
        checks.fail("config_file", f"{path} is readable, but {_user()} cannot write in {directory} (obsgen "
                                   f"replaces the file atomically)", f"let {_user()} write {directory}")
        return
    checks.ok("config_file", f"{path} is readable and its directory writable")


def _pushgateway(url: str, source: str) -> list[Check]:
    checks = Checks("Pushgateway")
    checks.ok("URL", f"{url} (from {source or 'an override'})")
    try:
        response = Http("Pushgateway", url).request("GET", "/api/v1/status", ok=ANY_STATUS)
    except BackendError as exc:
        checks.fail("reachable", str(exc), f"is the Pushgateway running at {url}? fix {source or 'the URL'}")
        return checks.checks
    if response.status_code != 200:
        checks.fail("reachable", f"GET /api/v1/status answered HTTP {response.status_code}",
                    f"is {url} really a Pushgateway?")
    else:
        checks.ok("reachable", f"{url} answered GET /api/v1/status")
    return checks.checks


def _bare(exc: BaseException, spec: BackendSpec, env: Environment) -> str:
    return str(exc).removeprefix(f"{spec.kind} ({env.name}): ")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
