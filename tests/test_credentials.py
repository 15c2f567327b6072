"""Credentials only where the operator allows (issue 9, item 6).

A spec can come from an untrusted pull request, so nothing in it may choose where a secret goes:
a token is sent to the spec's URL only when its host is listed in OBSGEN_ALLOWED_HOSTS (a URL the
operator passes as a flag or OBSGEN_*_URL is allowed as given), and in Mimir mode a secret file
named in the spec is read only under a directory listed in OBSGEN_SECRET_DIRS. Every refusal
happens before any request. The servers here are real loopback HTTP servers: the Grafana and Mimir
doubles, and a small recording server that keeps every request's headers.
"""
from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from conftest import REFERENCE_SPEC
from doubles.grafana import GrafanaDouble
from doubles.mimir import MimirDouble
from doubles.server import ServedDouble

from obsgen import model as m
from obsgen.deploy.access import require_allowed
from obsgen.errors import ObsgenError

GRAFANA_TOKEN = "glsa_credentials_test_token_0123456789"
MIMIR_TOKEN = "mimir_credentials_test_token_0123456789"
ROUTING_KEY = "pd-routing-key-CREDENTIALS-0123456789abcdef"
WEBHOOK = "https://hooks.slack.example/services/T000/B000/CREDENTIALS0123456789"
DEV_GRAFANA_URL = "http://grafana.dev.example.internal:3000"  # the reference spec's dev Grafana
PROD_SECRETS = "/etc/alertmanager/secrets/prod/"  # where the reference spec's prod secret files live
TENANT = "platform"


class Recorder(ServedDouble):
    """Records (method, path, headers) of every request and answers `status` with `headers` and a JSON body."""

    def __init__(self, status: int = 404, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.status, self.headers = status, headers or {}
        self._lock = threading.Lock()
        self._seen: list[tuple[str, str, dict[str, str]]] = []

    @property
    def seen(self) -> list[tuple[str, str, dict[str, str]]]:
        with self._lock:
            return list(self._seen)

    class handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            double: Recorder = self.server.double  # type: ignore[attr-defined]
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with double._lock:
                double._seen.append((self.command, self.path, dict(self.headers.items())))
            body = json.dumps({"message": "recorded"}).encode()
            self.send_response(double.status)
            for name, value in double.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture(autouse=True)
def operator_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from an operator who allowed nothing and overrode nothing."""
    for name in ("OBSGEN_ALLOWED_HOSTS", "OBSGEN_SECRET_DIRS", "OBSGEN_GRAFANA_URL", "OBSGEN_PROMETHEUS_URL",
                 "OBSGEN_ALERTMANAGER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", GRAFANA_TOKEN)


def grafana_spec(tmp_path: Path, url: str, *, token: bool = True) -> Path:
    """The reference spec with dev's Grafana at `url` (and without its token_env when token=False)."""
    text = REFERENCE_SPEC.read_text()
    assert text.count(DEV_GRAFANA_URL) == 1
    text = text.replace(DEV_GRAFANA_URL, url)
    if not token:
        text = text.replace("        token_env: OBSGEN_DEV_GRAFANA_TOKEN\n", "")
    path = tmp_path / "selftest.yaml"
    path.write_text(text)
    return path


def diff_grafana(run_cli, spec: Path, *args: str):
    return run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", "grafana", *args)


# --- tokens go only to allowed hosts --------------------------------------------------------------

def test_diff_sends_nothing_to_a_spec_url_whose_host_is_not_allowed(run_cli, tmp_path, monkeypatch) -> None:
    with GrafanaDouble(token=GRAFANA_TOKEN) as grafana:
        p = port(grafana.url)
        spec = grafana_spec(tmp_path, f"http://localhost:{p}")  # the double, named as a host nobody allowed
        monkeypatch.setenv("OBSGEN_ALLOWED_HOSTS", f"127.0.0.1:{p}")  # the same server under another name
        result = diff_grafana(run_cli, spec, "--exit-code")
        assert (result.code, result.out) == (2, "")
        assert result.err == (
            f"obsgen: error: grafana (dev): the spec's URL http://localhost:{p} is not an allowed host for "
            f"credentials; if it is yours, add localhost:{p} to OBSGEN_ALLOWED_HOSTS (set outside the spec), "
            f"or pass --grafana-url\n")
        assert grafana.requests == []


def test_the_same_diff_works_once_the_operator_allows_that_host(run_cli, tmp_path, monkeypatch) -> None:
    with GrafanaDouble(token=GRAFANA_TOKEN) as grafana:
        p = port(grafana.url)
        spec = grafana_spec(tmp_path, f"http://localhost:{p}")
        monkeypatch.setenv("OBSGEN_ALLOWED_HOSTS", f"grafana.example.com, LOCALHOST:{p}")
        result = diff_grafana(run_cli, spec)
        assert (result.code, result.err) == (0, "")
        assert "+ grafana folder" in result.out  # an empty Grafana: everything is to be created
        assert grafana.requests  # and the double (which checks the Bearer token) answered the reads


def test_a_refused_host_never_sees_an_authorization_header_and_an_allowed_one_does(run_cli, tmp_path,
                                                                                   monkeypatch) -> None:
    with Recorder() as recorder:
        p = port(recorder.url)
        spec = grafana_spec(tmp_path, f"http://localhost:{p}")
        assert diff_grafana(run_cli, spec).code == 2
        assert recorder.seen == []
        monkeypatch.setenv("OBSGEN_ALLOWED_HOSTS", f"localhost:{p}")
        diff_grafana(run_cli, spec)  # the recorder is no Grafana: the diff fails, after sending the token
        assert recorder.seen and all(h.get("Authorization") == f"Bearer {GRAFANA_TOKEN}" for _, _, h in recorder.seen)


def test_a_backend_without_credentials_needs_no_allowance_and_gets_no_authorization(run_cli, tmp_path) -> None:
    with Recorder() as recorder:
        spec = grafana_spec(tmp_path, f"http://localhost:{port(recorder.url)}", token=False)
        diff_grafana(run_cli, spec)
        assert recorder.seen, "no allowance is needed when there is nothing secret to send"
        assert not any("Authorization" in headers for _, _, headers in recorder.seen)


def test_the_host_is_refused_before_the_token_is_read(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OBSGEN_DEV_GRAFANA_TOKEN")
    spec = grafana_spec(tmp_path, "https://evil.example")
    result = diff_grafana(run_cli, spec)
    assert (result.code, result.err) == (2, (
        "obsgen: error: grafana (dev): the spec's URL https://evil.example is not an allowed host for "
        "credentials; if it is yours, add evil.example:443 to OBSGEN_ALLOWED_HOSTS (set outside the spec), "
        "or pass --grafana-url\n"))


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_an_override_url_is_the_operators_and_allowed_as_given(run_cli, tmp_path, monkeypatch, how: str) -> None:
    with GrafanaDouble(token=GRAFANA_TOKEN) as grafana:
        spec = grafana_spec(tmp_path, "https://evil.example")  # the spec's URL is not used at all
        if how == "flag":
            result = diff_grafana(run_cli, spec, "--grafana-url", grafana.url)
        else:
            monkeypatch.setenv("OBSGEN_GRAFANA_URL", grafana.url)
            result = diff_grafana(run_cli, spec)
        assert (result.code, result.err) == (0, "")
        assert grafana.requests


def test_a_redirect_from_an_allowed_host_is_not_followed(run_cli, tmp_path) -> None:
    with Recorder() as elsewhere, Recorder(307, {"Location": "REPLACED"}) as allowed:
        allowed.headers["Location"] = elsewhere.url + "/api/search"
        spec = grafana_spec(tmp_path, "https://grafana.example.com")
        result = diff_grafana(run_cli, spec, "--grafana-url", allowed.url)
        assert result.code == 2 and result.err.count("\n") == 1 and "HTTP 307" in result.err
        assert allowed.seen and elsewhere.seen == []


@pytest.mark.parametrize(("url", "allowed", "ok"), [
    ("https://grafana.example.com", "grafana.example.com", True),          # bare host: the scheme's default port
    ("https://grafana.example.com", "grafana.example.com:443", True),
    ("https://grafana.example.com:443/grafana/", "grafana.example.com", True),
    ("http://grafana.example.com", "grafana.example.com", False),          # a plain entry allows https only,
    ("http://grafana.example.com", "grafana.example.com:80", False),       # so a pull request cannot move an
    ("http://grafana.example.com:443", "grafana.example.com:443", False),  # allowed host to cleartext
    ("http://grafana.example.com", "http://grafana.example.com", True),    # unless the entry says http://
    ("http://grafana.example.com:8080", "http://grafana.example.com:8080", True),
    ("https://grafana.example.com", "http://grafana.example.com:443", False),
    ("http://127.0.0.1:3000", "127.0.0.1:3000", True),                      # http to a loopback host is fine
    ("http://localhost:3000", "localhost:3000", True),
    ("https://grafana.example.com:8443", "grafana.example.com", False),    # another port must be listed
    ("https://grafana.example.com:8443", "grafana.example.com:8443", True),
    ("https://Grafana.Example.COM./", "grafana.example.com:443", True),     # case and a trailing dot
    ("https://grafana.example.com.evil.test", "grafana.example.com", False),
    ("https://evil.test/grafana.example.com", "grafana.example.com", False),
    ("http://127.0.0.1:3000", "localhost:3000", False),                     # names are not resolved
    ("http://[::1]:3000", "[::1]:3000", True),
    ("https://grafana.example.com", " other.example , grafana.example.com:443 ,", True),
    ("https://grafana.example.com", "", False),
])
def test_which_spec_urls_an_allowed_hosts_list_admits(monkeypatch, url: str, allowed: str, ok: bool) -> None:
    monkeypatch.setenv("OBSGEN_ALLOWED_HOSTS", allowed)
    spec = m.Backend("grafana", "grafana", url, token_env="TOKEN")
    if ok:
        require_allowed(spec, "dev", None)
    else:
        with pytest.raises(ObsgenError, match="is not an allowed host for credentials"):
            require_allowed(spec, "dev", None)


@pytest.mark.parametrize("entry", ["ftp://grafana.example.com", "grafana.example.com:https", "user@host",
                                   "host/path", "host:0", "https://host/path"])
def test_an_allowed_hosts_entry_that_is_not_host_or_host_port_is_one_clear_error(run_cli, tmp_path, monkeypatch,
                                                                                  entry: str) -> None:
    monkeypatch.setenv("OBSGEN_ALLOWED_HOSTS", entry)
    result = diff_grafana(run_cli, grafana_spec(tmp_path, "https://grafana.example.com"))
    assert (result.code, result.err) == (2, (f"obsgen: error: OBSGEN_ALLOWED_HOSTS: {entry!r} is not host, "
                                             f"host:port or http(s)://host[:port] (for example "
                                             f"grafana.example.com:443)\n"))


# (malformed URLs, from flags, environment variables or the spec: tests/test_urls.py)


# --- Mimir: secret files only under allowed directories, their values only to allowed hosts ----------

@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "pagerduty-routing-key").write_text(ROUTING_KEY + "\n")
    (directory / "slack-webhook-url").write_text(WEBHOOK + "\n")
    return directory


def mimir_spec(tmp_path: Path, secrets_prefix: str, *, alertmanager_url: str | None = None) -> Path:
    """The reference spec with prod's secret files under `secrets_prefix`; with `alertmanager_url`,
    prod's Mimir Alertmanager is at that URL and has no token (only the config's secrets are sensitive)."""
    text = REFERENCE_SPEC.read_text().replace(PROD_SECRETS, secrets_prefix)
    if alertmanager_url:
        data = yaml.safe_load(text)
        prod = next(e for e in data["environments"] if e["name"] == "prod")
        prod["backends"]["alertmanager"]["url"] = alertmanager_url
        del prod["backends"]["alertmanager"]["token_env"]
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path = tmp_path / "selftest.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def mimir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", MIMIR_TOKEN)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    with MimirDouble(token=MIMIR_TOKEN) as double:
        yield double


def obsgen_prod(run_cli, mimir: MimirDouble, spec: Path, command: str, *args: str):
    """`command --env prod` against the Mimir double, its URLs given by the operator (overrides)."""
    return run_cli(command, "--env", "prod", "--spec", str(spec), "--only", "prometheus", "--only", "alertmanager",
                   "--prometheus-url", mimir.url, "--alertmanager-url", mimir.url, *args)


def refusal(named: str, directory: Path, resolves: str = "", unset: bool = False) -> str:
    return (f"obsgen: error: Mimir Alertmanager (prod): the secret file {named}{resolves} named in the spec is "
            f"not under a directory listed in OBSGEN_SECRET_DIRS{' (not set)' if unset else ''}; if it is "
            f"yours, add {directory} to OBSGEN_SECRET_DIRS (set outside the spec)\n")


@pytest.mark.parametrize("command", [("diff",), ("apply", "--yes")])
def test_a_secret_file_outside_the_allowed_directories_is_neither_read_nor_posted(run_cli, mimir, secrets, tmp_path,
                                                                                  monkeypatch, command) -> None:
    elsewhere = tmp_path / "allowed"
    elsewhere.mkdir()
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(elsewhere))
    result = obsgen_prod(run_cli, mimir, mimir_spec(tmp_path, f"{secrets}/"), *command)
    assert (result.code, result.out) == (2, "")
    assert result.err == refusal(f"{secrets}/pagerduty-routing-key", secrets)
    assert mimir.requests == []  # refused before any request, so nothing was posted either
    assert mimir.alertmanager_config(TENANT) is None


def test_without_secret_dirs_no_secret_file_is_read(run_cli, mimir, secrets, tmp_path) -> None:
    result = obsgen_prod(run_cli, mimir, mimir_spec(tmp_path, f"{secrets}/"), "apply", "--yes")
    assert (result.code, result.err) == (2, refusal(f"{secrets}/pagerduty-routing-key", secrets, unset=True))
    assert mimir.requests == []


def test_dot_dot_does_not_escape_an_allowed_directory(run_cli, mimir, secrets, tmp_path, monkeypatch) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(allowed))
    result = obsgen_prod(run_cli, mimir, mimir_spec(tmp_path, f"{allowed}/../secrets/"), "apply", "--yes")
    assert (result.code, result.err) == (2, refusal(f"{allowed}/../secrets/pagerduty-routing-key", secrets))
    assert mimir.requests == []


def test_a_symlink_does_not_escape_an_allowed_directory(run_cli, mimir, secrets, tmp_path, monkeypatch) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for name in ("pagerduty-routing-key", "slack-webhook-url"):
        (allowed / name).symlink_to(secrets / name)
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(allowed))
    result = obsgen_prod(run_cli, mimir, mimir_spec(tmp_path, f"{allowed}/"), "apply", "--yes")
    assert (result.code, result.err) == (2, refusal(
        f"{allowed}/pagerduty-routing-key", secrets, resolves=f" (which resolves to {secrets}/pagerduty-routing-key)"))
    assert mimir.requests == []


def test_secret_files_under_an_allowed_directory_are_sent_inline(run_cli, mimir, secrets, tmp_path,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", os.pathsep.join([str(tmp_path / "other"), str(secrets)]))
    result = obsgen_prod(run_cli, mimir, mimir_spec(tmp_path, f"{secrets}/"), "apply", "--yes")
    assert result.code == 0, result.err
    config = mimir.alertmanager_config(TENANT)["alertmanager_config"]
    assert ROUTING_KEY in config and WEBHOOK in config


def test_inline_secrets_go_only_to_an_allowed_host_even_without_a_token(run_cli, secrets, tmp_path,
                                                                        monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    with MimirDouble(token=None) as mimir:
        p = port(mimir.url)
        spec = mimir_spec(tmp_path, f"{secrets}/", alertmanager_url=f"http://localhost:{p}")
        prod = ("--env", "prod", "--spec", str(spec), "--only", "alertmanager")
        diff = run_cli("diff", *prod)  # no token, and a diff sends no secret: no allowance needed
        assert (diff.code, diff.err) == (0, "")
        apply = run_cli("apply", *prod, "--yes")
        assert (apply.code, apply.err) == (2, (
            f"obsgen: error: alertmanager (prod): the spec's URL http://localhost:{p} is not an allowed host for "
            f"the config's inline secrets; if it is yours, add localhost:{p} to OBSGEN_ALLOWED_HOSTS (set outside "
            f"the spec), or pass --alertmanager-url\n"))
        assert mimir.writes == 0 and mimir.alertmanager_config(TENANT) is None
        monkeypatch.setenv("OBSGEN_ALLOWED_HOSTS", f"localhost:{p}")
        again = run_cli("apply", *prod, "--yes")
        assert again.code == 0, again.err
        assert ROUTING_KEY in mimir.alertmanager_config(TENANT)["alertmanager_config"]
