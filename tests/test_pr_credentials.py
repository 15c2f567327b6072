"""A pull request's spec is data, not a key to the runner (issue 18, item 1): no ambient credentials,
secret files and writable paths only where the operator says.

- requests never reads ~/.netrc (trust_env off): nothing obsgen was not given goes in a request, and
  proxies are honoured from HTTP(S)_PROXY / NO_PROXY explicitly.
- token_file is read only under OBSGEN_SECRET_DIRS; every secret file is a regular file, size-capped,
  one line -- a FIFO does not hang, /dev/zero does not fill memory.
- the spec's rules_dir and config_file are used only under OBSGEN_WRITE_DIRS; a path the operator gives
  (flag or OBSGEN_* variable) is the operator's and used as given.
The servers are real loopback HTTP servers: a recorder keeping every request's headers, and the Grafana double.
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
from doubles.server import ServedDouble

TOKEN = "glsa_pr_credentials_token_0123456789"
DEV_GRAFANA_URL = "http://grafana.dev.example.internal:3000"


class Recorder(ServedDouble):
    """Records (method, path, headers) of every request; answers 404 with a small JSON body."""

    def __init__(self) -> None:
        super().__init__()
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
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer


@pytest.fixture(autouse=True)
def operator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An operator who allowed nothing and overrode nothing, with a HOME of its own."""
    for name in ("OBSGEN_ALLOWED_HOSTS", "OBSGEN_SECRET_DIRS", "OBSGEN_GRAFANA_URL", "OBSGEN_PROMETHEUS_URL",
                 "OBSGEN_ALERTMANAGER_URL", "OBSGEN_PROMETHEUS_RULES_DIR", "OBSGEN_ALERTMANAGER_CONFIG_FILE",
                 "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY",
                 "all_proxy", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def spec_with(tmp_path: Path, edit) -> Path:  # noqa: ANN001 - edit(dict of dev's or prod's env) -> None
    data = yaml.safe_load(REFERENCE_SPEC.read_text())
    for env in data["environments"]:
        edit(env)
    path = tmp_path / "selftest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def grafana_at(tmp_path: Path, url: str, *, token_env: bool = True, token_file: str = "") -> Path:
    def edit(env: dict) -> None:
        if env["name"] == "dev":
            grafana = env["backends"]["grafana"]
            grafana["url"] = url
            if not token_env:
                grafana.pop("token_env")
            if token_file:
                grafana.pop("token_env", None)
                grafana["token_file"] = token_file
    return spec_with(tmp_path, edit)


def diff_grafana(run_cli, spec: Path, *args: str):
    return run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", "grafana", *args)


def netrc(home: Path, host: str) -> None:
    path = home / ".netrc"
    path.write_text(f"machine {host}\n  login netrc-user\n  password netrc-SECRET-password\n")
    path.chmod(0o600)


# --- no ambient credentials ----------------------------------------------------------------------------------

def test_a_netrc_entry_is_never_sent_to_a_spec_url_without_a_token(run_cli, tmp_path) -> None:
    netrc(Path(os.environ["HOME"]), "127.0.0.1")
    with Recorder() as recorder:
        spec = grafana_at(tmp_path, recorder.url, token_env=False)
        diff_grafana(run_cli, spec)  # the recorder is no Grafana: the diff fails, after its requests
        assert recorder.seen, "the spec's URL needs no allowance when there is nothing secret to send"
        assert [h.get("Authorization") for _, _, h in recorder.seen] == [None] * len(recorder.seen)


def test_a_netrc_entry_does_not_replace_the_configured_token(run_cli, tmp_path, monkeypatch) -> None:
    netrc(Path(os.environ["HOME"]), "127.0.0.1")
    with Recorder() as recorder:
        spec = grafana_at(tmp_path, recorder.url)
        monkeypatch.setenv("OBSGEN_ALLOWED_HOSTS", f"127.0.0.1:{port(recorder.url)}")
        diff_grafana(run_cli, spec)
        assert recorder.seen
        assert {h.get("Authorization") for _, _, h in recorder.seen} == {f"Bearer {TOKEN}"}


def test_a_netrc_named_by_the_netrc_variable_is_not_read_either(run_cli, tmp_path, monkeypatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    netrc(elsewhere, "127.0.0.1")
    monkeypatch.setenv("NETRC", str(elsewhere / ".netrc"))
    with Recorder() as recorder:
        diff_grafana(run_cli, grafana_at(tmp_path, recorder.url, token_env=False))
        assert recorder.seen and not any("Authorization" in h for _, _, h in recorder.seen)


def test_http_proxy_is_honoured_explicitly(run_cli, tmp_path, monkeypatch) -> None:
    with Recorder() as proxy, GrafanaDouble(token=TOKEN) as grafana:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        diff_grafana(run_cli, grafana_at(tmp_path, DEV_GRAFANA_URL, token_env=False), "--grafana-url", grafana.url)
        assert proxy.seen, "the request went through the operator's proxy"
        assert all(path.startswith(f"{grafana.url}/api/") for _, path, _ in proxy.seen)
        assert grafana.requests == []


def test_no_proxy_is_honoured_explicitly(run_cli, tmp_path, monkeypatch) -> None:
    with Recorder() as proxy, GrafanaDouble(token=TOKEN) as grafana:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        result = diff_grafana(run_cli, grafana_at(tmp_path, DEV_GRAFANA_URL), "--grafana-url", grafana.url)
        assert (result.code, result.err) == (0, "")
        assert proxy.seen == [] and grafana.requests


# --- token_file: only under OBSGEN_SECRET_DIRS, a regular file, small, one line --------------------------------

def test_a_token_file_outside_the_secret_dirs_is_neither_read_nor_sent(run_cli, tmp_path, monkeypatch) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    (tmp_path / "secrets").mkdir()
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(tmp_path / "secrets"))
    with Recorder() as recorder:
        result = diff_grafana(run_cli, grafana_at(tmp_path, DEV_GRAFANA_URL, token_file=str(token)),
                              "--grafana-url", recorder.url)
        assert recorder.seen == []
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        f"obsgen: error: grafana (dev): the token_file {token} named in the spec is not under a directory listed "
        f"in OBSGEN_SECRET_DIRS; if it is yours, add {tmp_path} to OBSGEN_SECRET_DIRS (set outside the spec)\n")


def test_without_secret_dirs_no_token_file_is_read(run_cli, tmp_path) -> None:
    result = diff_grafana(run_cli, grafana_at(tmp_path, DEV_GRAFANA_URL, token_file="/proc/self/environ"),
                          "--grafana-url", "http://127.0.0.1:9")
    assert (result.code, result.err) == (2, (
        "obsgen: error: grafana (dev): the token_file /proc/self/environ (which resolves to "
        f"{os.path.realpath('/proc/self/environ')}) named in the spec is not under a directory listed in "
        f"OBSGEN_SECRET_DIRS (not set); if it is yours, add {os.path.dirname(os.path.realpath('/proc/self/environ'))}"
        " to OBSGEN_SECRET_DIRS (set outside the spec)\n"))


def test_a_token_file_under_the_secret_dirs_is_sent_as_the_bearer_token(run_cli, tmp_path, monkeypatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text(TOKEN + "\n")
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    with GrafanaDouble(token=TOKEN) as grafana:
        result = diff_grafana(run_cli, grafana_at(tmp_path, DEV_GRAFANA_URL, token_file=str(secrets / "token")),
                              "--grafana-url", grafana.url)
    assert (result.code, result.err) == (0, "")


def secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "token") -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    return secrets / name


def refused(run_cli, tmp_path: Path, token_file: Path | str) -> str:  # noqa: ANN001
    with Recorder() as recorder:
        result = diff_grafana(run_cli, grafana_at(tmp_path, DEV_GRAFANA_URL, token_file=str(token_file)),
                              "--grafana-url", recorder.url)
        assert recorder.seen == []
    assert (result.code, result.out) == (2, "") and result.err.count("\n") == 1, result
    return result.err.rstrip("\n")


def test_a_fifo_token_file_is_refused_without_hanging(run_cli, tmp_path, monkeypatch) -> None:
    fifo = secret(tmp_path, monkeypatch)
    os.mkfifo(fifo)
    unblock = threading.Timer(20, lambda: os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)))  # a hang ends
    unblock.daemon = True
    unblock.start()
    try:
        line = refused(run_cli, tmp_path, fifo)
    finally:
        unblock.cancel()
    assert line == (f"obsgen: error: grafana (dev): token_file {fifo} is not a regular file; write the token to a "
                    f"file under OBSGEN_SECRET_DIRS")


def test_dev_zero_is_refused_not_read_until_memory_runs_out(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", "/dev")
    assert refused(run_cli, tmp_path, "/dev/zero") == (
        "obsgen: error: grafana (dev): token_file /dev/zero is not a regular file; write the token to a file under "
        "OBSGEN_SECRET_DIRS")


def test_a_huge_token_file_is_refused_by_size(run_cli, tmp_path, monkeypatch) -> None:
    big = secret(tmp_path, monkeypatch)
    big.write_bytes(b"a" * (1 << 20))
    assert refused(run_cli, tmp_path, big) == (
        f"obsgen: error: grafana (dev): token_file {big} is larger than 64 KiB; a token is one short line")


def test_a_token_file_of_several_lines_is_refused(run_cli, tmp_path, monkeypatch) -> None:
    several = secret(tmp_path, monkeypatch)
    several.write_text("FOO=bar\nSECRET=token\n")
    assert refused(run_cli, tmp_path, several) == (
        f"obsgen: error: grafana (dev): token_file {several} holds more than one line; a token is one line")


def test_an_empty_token_file_is_refused(run_cli, tmp_path, monkeypatch) -> None:
    empty = secret(tmp_path, monkeypatch)
    empty.write_text("\n")
    assert refused(run_cli, tmp_path, empty) == f"obsgen: error: grafana (dev): token_file {empty} is empty"


def test_doctor_names_a_token_file_outside_the_secret_dirs(run_cli, tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with Recorder() as recorder:
        result = run_cli("doctor", "--env", "dev", "--spec", str(grafana_at(tmp_path, DEV_GRAFANA_URL,
                                                                            token_file=str(token))),
                         "--only", "grafana", "--grafana-url", recorder.url)
        assert recorder.seen == []
    assert result.code == 2
    assert (f"✗ Grafana (dev): token: the token_file {token} named in the spec is not under a directory listed in "
            f"OBSGEN_SECRET_DIRS (not set) — fix: if it is yours, add {tmp_path} to OBSGEN_SECRET_DIRS (set outside "
            f"the spec)") in result.out.splitlines()


def test_a_mimir_secret_file_that_is_a_fifo_is_refused_without_hanging(run_cli, tmp_path, monkeypatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pagerduty-routing-key").write_text("pd-key\n")
    os.mkfifo(secrets / "slack-webhook-url")
    unblock = threading.Timer(20, lambda: os.close(os.open(secrets / "slack-webhook-url",
                                                           os.O_WRONLY | os.O_NONBLOCK)))
    unblock.daemon = True
    unblock.start()
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", "mimir-token")
    spec = tmp_path / "selftest.yaml"
    spec.write_text(REFERENCE_SPEC.read_text().replace("/etc/alertmanager/secrets/prod/", f"{secrets}/"))
    from doubles.mimir import MimirDouble

    try:
        with MimirDouble(token="mimir-token") as mimir:
            result = run_cli("diff", "--env", "prod", "--spec", str(spec), "--only", "alertmanager",
                             "--alertmanager-url", mimir.url)
    finally:
        unblock.cancel()
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"obsgen: error: Mimir Alertmanager (prod): secret file {secrets / 'slack-webhook-url'} is "
                          f"not a regular file; write the secret to a file under OBSGEN_SECRET_DIRS\n")


def test_a_mimir_secret_file_of_several_lines_is_refused_never_sent(run_cli, tmp_path, monkeypatch) -> None:
    """A secret is one line: a file of several (a key file, a config) is refused before any request."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pagerduty-routing-key").write_text("pd-key\nsecond line\n")
    (secrets / "slack-webhook-url").write_text("https://hooks.slack.example/x\n")
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", "mimir-token")
    spec = tmp_path / "selftest.yaml"
    spec.write_text(REFERENCE_SPEC.read_text().replace("/etc/alertmanager/secrets/prod/", f"{secrets}/"))
    from doubles.mimir import MimirDouble

    with MimirDouble(token="mimir-token") as mimir:
        result = run_cli("apply", "--env", "prod", "--spec", str(spec), "--only", "alertmanager",
                         "--alertmanager-url", mimir.url, "--yes")
    assert result.code == 2
    assert "pagerduty-routing-key" in result.err and "line" in result.err
    assert "pd-key" not in result.err and "second line" not in result.err
    assert "pd-key" not in result.out
    assert [line for line in result.err.splitlines() if line.startswith("obsgen: error:")] == \
        [result.err.splitlines()[-1]]


# --- writable paths: only under OBSGEN_WRITE_DIRS, unless the operator gave them -------------------------------

def paths_at(tmp_path: Path, rules_dir: Path, config_file: Path) -> Path:
    def edit(env: dict) -> None:
        if env["name"] == "dev":
            env["backends"]["prometheus"]["rules_dir"] = str(rules_dir)
            env["backends"]["alertmanager"]["config_file"] = str(config_file)
    return spec_with(tmp_path, edit)


@pytest.fixture
def write_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    allowed = tmp_path / "allowed"
    (allowed / "rules").mkdir(parents=True)
    monkeypatch.setenv("OBSGEN_WRITE_DIRS", str(allowed))
    return allowed


@pytest.mark.parametrize(("kind", "field", "flag"), [("prometheus", "rules_dir", "--prometheus-rules-dir"),
                                                     ("alertmanager", "config_file", "--alertmanager-config-file")])
def test_a_spec_path_outside_the_write_dirs_is_refused_before_any_read(run_cli, tmp_path, write_dirs, kind, field,
                                                                       flag) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "rules" if field == "rules_dir" else outside / "alertmanager.yml"
    ok = write_dirs / "rules" if field == "rules_dir" else write_dirs / "alertmanager.yml"
    spec = paths_at(tmp_path, target if field == "rules_dir" else ok, target if field == "config_file" else ok)
    label = {"prometheus": "Prometheus", "alertmanager": "Alertmanager"}[kind]
    with Recorder() as recorder:
        result = run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", kind, f"--{kind}-url", recorder.url)
        assert recorder.seen == []
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        f"obsgen: error: {label} (dev): the {field} {target} named in the spec is not under a directory listed in "
        f"OBSGEN_WRITE_DIRS; if it is yours, add {target.parent if field == 'config_file' else target} to "
        f"OBSGEN_WRITE_DIRS (set outside the spec), or pass {flag}\n")


def test_without_write_dirs_no_spec_path_is_used(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OBSGEN_WRITE_DIRS", raising=False)
    with Recorder() as recorder:
        result = run_cli("diff", "--env", "dev", "--only", "prometheus", "--prometheus-url", recorder.url)
        assert recorder.seen == []
    assert result.err == (
        "obsgen: error: Prometheus (dev): the rules_dir /etc/prometheus/rules/obsgen named in the spec is not under a "
        "directory listed in OBSGEN_WRITE_DIRS (not set); if it is yours, add /etc/prometheus/rules/obsgen to "
        "OBSGEN_WRITE_DIRS (set outside the spec), or pass --prometheus-rules-dir\n")


@pytest.mark.parametrize("escape", ["dotdot", "symlink"])
def test_dot_dot_and_symlinks_do_not_escape_the_write_dirs(run_cli, tmp_path, write_dirs, escape: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    if escape == "dotdot":
        named = Path(f"{write_dirs}/../outside")
    else:
        named = write_dirs / "link"
        named.symlink_to(outside)
    spec = paths_at(tmp_path, named, write_dirs / "alertmanager.yml")
    with Recorder() as recorder:
        result = run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", "prometheus", "--prometheus-url",
                         recorder.url)
        assert recorder.seen == []
    assert result.code == 2
    resolves = f" (which resolves to {outside})" if escape == "symlink" else ""  # `..` is plain to see
    assert result.err.startswith(f"obsgen: error: Prometheus (dev): the rules_dir {named}{resolves} named in the spec "
                                 f"is not under a directory listed in OBSGEN_WRITE_DIRS; if it is yours, add {outside} "
                                 f"to OBSGEN_WRITE_DIRS")


def test_a_spec_path_under_the_write_dirs_is_used(run_cli, tmp_path, write_dirs) -> None:
    spec = paths_at(tmp_path, write_dirs / "rules", write_dirs / "alertmanager.yml")
    with Recorder() as recorder:
        result = run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", "prometheus", "--prometheus-url",
                         recorder.url)
        assert recorder.seen, "past the path check, the diff reads Prometheus"
    assert "OBSGEN_WRITE_DIRS" not in result.err


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_an_operator_path_is_used_as_given(run_cli, tmp_path, write_dirs, monkeypatch, how: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    spec = paths_at(tmp_path, tmp_path / "nowhere", write_dirs / "alertmanager.yml")  # the spec's is not used
    args = ["--prometheus-rules-dir", str(outside)] if how == "flag" else []
    if how == "environment":
        monkeypatch.setenv("OBSGEN_PROMETHEUS_RULES_DIR", str(outside))
    with Recorder() as recorder:
        result = run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", "prometheus", "--prometheus-url",
                         recorder.url, *args)
        assert recorder.seen
    assert "OBSGEN_WRITE_DIRS" not in result.err


def test_doctor_names_a_spec_path_outside_the_write_dirs(run_cli, tmp_path, write_dirs) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    spec = paths_at(tmp_path, outside, outside / "alertmanager.yml")
    (outside / "alertmanager.yml").write_text("route: {receiver: x}\nreceivers: [{name: x}]\n")
    with Recorder() as recorder:
        result = run_cli("doctor", "--env", "dev", "--spec", str(spec), "--only", "prometheus", "--only",
                         "alertmanager", "--prometheus-url", recorder.url, "--alertmanager-url", recorder.url)
    lines = result.out.splitlines()
    assert (f"✗ Prometheus (dev): rules_dir: the rules_dir {outside} named in the spec is not under a directory listed "
            f"in OBSGEN_WRITE_DIRS — fix: if it is yours, add {outside} to OBSGEN_WRITE_DIRS (set outside the spec), "
            f"or pass --prometheus-rules-dir") in lines
    assert (f"✗ Alertmanager (dev): config_file: the config_file {outside / 'alertmanager.yml'} named in the spec is "
            f"not under a directory listed in OBSGEN_WRITE_DIRS — fix: if it is yours, add {outside} to "
            f"OBSGEN_WRITE_DIRS (set outside the spec), or pass --alertmanager-config-file") in lines
    assert result.code == 2


def test_doctor_does_not_read_a_config_file_that_is_not_a_regular_file(run_cli, tmp_path, write_dirs) -> None:
    fifo = write_dirs / "alertmanager.yml"
    os.mkfifo(fifo)
    unblock = threading.Timer(20, lambda: os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)))
    unblock.daemon = True
    unblock.start()
    try:
        with Recorder() as recorder:
            result = run_cli("doctor", "--env", "dev", "--spec", str(paths_at(tmp_path, write_dirs / "rules", fifo)),
                             "--only", "alertmanager", "--alertmanager-url", recorder.url)
    finally:
        unblock.cancel()
    assert [line for line in result.out.splitlines() if ": config_file: " in line] == [
        f"✗ Alertmanager (dev): config_file: {fifo} is not a regular file — fix: point the spec's config_file (or "
        f"--alertmanager-config-file) at the file Alertmanager runs with (its --config.file)"]
