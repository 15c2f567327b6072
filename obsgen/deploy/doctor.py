"""`obsgen doctor`: every backend of an environment checked at once, one line per check, with the fix.

For each backend of the environment, in parallel: its URL (the operator's override, else the spec's),
whether credentials may go there (OBSGEN_ALLOWED_HOSTS), whether its token is set and readable, then one
authenticated read -- the read `diff` starts with -- that shows it reachable, the token accepted and (for
Mimir) the tenant served; then what `apply` will need: Prometheus's lifecycle API (it reloads the
rules) and a writable rules directory, a readable Alertmanager config file in a writable directory
(both under OBSGEN_WRITE_DIRS when the spec names them), Mimir's secret files under OBSGEN_SECRET_DIRS
(the checks that need no request live in doctor_checks). A Pushgateway is checked when one is given. A check
that depends on one that failed is not run (and says so). A warning (Prometheus keeps less than the longest
SLO period) is said but fails nothing. Nothing is written anywhere.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from obsgen.deploy import access
from obsgen.compile import conventions as c
from obsgen.model import durations
from obsgen.deploy import doctor_checks
from obsgen.deploy.checks import SKIP, Check, Checks, Report
from obsgen.deploy.session import Overrides
from obsgen.deploy.http import BackendError, Http, parallel
from obsgen.deploy.wire import shown
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
        doctor_checks.token(checks, env, spec)
        if checks.halted:
            return None
    try:
        return access.connect(env, spec.kind, checks.backend.rsplit(" (", 1)[0], url, mode=spec.mode)[1]
    except BackendError as exc:  # checked above; anything else connect refuses still ends as one line
        checks.fail("connect", _bare(exc, spec, env), "see the message", halt=True)
        return None


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
        if spec.token_env or spec.token_file:  # said, not dropped: an unreachable backend accepted no token
            checks.skip("token accepted")
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
    doctor_checks.rules_dir(checks, overrides.prometheus_rules_dir or spec.rules_dir,
                            operator=bool(overrides.prometheus_rules_dir))


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
    doctor_checks.secret_files(checks, env, spec, overrides.alertmanager_url)


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
        first = [line for line in (response.text or "").strip().split("\n") if line.strip()][:1]
        checks.fail("tenant", f"no {api} at {http.base_url}{path} (HTTP {response.status_code}"
                              f"{': ' + shown(first[0].strip(), 120) if first else ''})", fix)


def _alertmanager(checks: Checks, http: Http | None, model: Model, env: Environment, spec: BackendSpec,
                  overrides: Overrides) -> None:
    response = _get(checks, http, spec, "/api/v2/status")
    if response is None:
        checks.skip("status API")
    else:
        try:
            status = http.json(response, dict) if response.status_code == 200 else None
            info = http.expect(response, status.get("versionInfo") or {}, dict, "its versionInfo") if status else {}
            config = http.expect(response, status.get("config") or {}, dict, "its config") if status else {}
            version = info.get("version")
            if status is None or not isinstance(config.get("original"), str):
                raise BackendError(f"GET /api/v2/status answered HTTP {response.status_code} without a config")
            checks.ok("status API", f"answers with the running config"
                                    f"{f' (Alertmanager {version})' if isinstance(version, str) else ''}")
        except BackendError as exc:
            checks.fail("status API", str(exc), f"is {http.base_url} really Alertmanager?")
    doctor_checks.config_file(checks, overrides.alertmanager_config_file or spec.config_file,
                              operator=bool(overrides.alertmanager_config_file))


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
