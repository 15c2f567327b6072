"""Network, URL and report messages that send the user the right way (issue 20, item 2).

- `obsgen emit` takes its Pushgateway from $OBSGEN_PUSHGATEWAY_URL, as doctor, drill and the demo do;
- an `https://` URL at a plain-http server is a TLS failure with the fix, a name that does not resolve a
  DNS failure, a refused connection keeps its message;
- a URL without a scheme, in the spec or from a flag or variable, gets `write it as http://…`;
- every problem of a report at once, one per line;
- doctor shows "token accepted" as not checked when the backend is unreachable, instead of dropping it.

Exact output and exit codes, as a user runs the commands; the servers are real (the Pushgateway of
tests/stack.py, a plain-http server started here) and the one name that must not resolve is refused by
a stand-in for the resolver, so that no test depends on the machine's DNS.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REFERENCE_SPEC, ROOT, require_tool
from stack import Stack, free_port

from obsgen.run import emit

REPORTS = ROOT / "tests" / "reports"
TOKEN = "glsa_network_messages_test_token"
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def operator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An operator with the dev Grafana token set, no URL override and no proxy; state kept aside."""
    for name in list(os.environ):
        if name.startswith("OBSGEN_") or name.upper() in PROXIES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)


def obsgen(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`obsgen ARGS` in-process from the project root: (exit code, stdout, stderr); a usage error ends
    argument parsing with SystemExit, whose code is the exit code."""
    from obsgen.cli import main

    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, err


# --- emit reads $OBSGEN_PUSHGATEWAY_URL ----------------------------------------------------------------

@pytest.fixture(scope="module")
def gateway() -> Iterator[Stack]:
    require_tool("prometheus-pushgateway")
    with Stack(components=("pushgateway",)) as stack:
        yield stack


@pytest.fixture
def pushgateway(gateway: Stack) -> Iterator[str]:
    gateway.wipe_pushgateway()
    yield gateway.pushgateway_url
    gateway.wipe_pushgateway()


def test_emit_pushes_to_the_pushgateway_named_by_the_variable(capsys, monkeypatch, pushgateway: str) -> None:
    monkeypatch.setenv("OBSGEN_PUSHGATEWAY_URL", pushgateway)
    code, out, _ = obsgen(capsys, "emit", "--env", "dev", "--report", str(REPORTS / "passing.json"))
    assert (code, out) == (0, f"obsgen emit: dev run pass (10 steps, failing: none) -> Pushgateway {pushgateway} "
                              f"(job=selftest, env=dev)\n")
    assert emit.fetch_group(pushgateway, "selftest", {"env": "dev"}) is not None


def test_a_textfile_given_wins_over_the_pushgateway_of_the_variable(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OBSGEN_PUSHGATEWAY_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    target = tmp_path / "selftest.prom"
    code, out, _ = obsgen(capsys, "emit", "--env", "dev", "--report", str(REPORTS / "passing.json"),
                          "--textfile", str(target))
    assert (code, out) == (0, f"obsgen emit: dev run pass (10 steps, failing: none) -> {target}\n")
    assert target.exists()


def test_emit_without_a_pushgateway_or_textfile_says_how_to_give_one(capsys) -> None:
    code, out, err = obsgen(capsys, "emit", "--env", "dev", "--report", str(REPORTS / "passing.json"))
    assert (code, out, err) == (2, "", "obsgen: error: emit needs somewhere to publish the run: pass --pushgateway "
                                       "URL (or set OBSGEN_PUSHGATEWAY_URL) or --textfile PATH\n")


def test_a_pushgateway_variable_without_a_scheme_is_named_with_the_fix(capsys, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_PUSHGATEWAY_URL", "pushgateway:9091")
    code, out, err = obsgen(capsys, "emit", "--env", "dev", "--report", str(REPORTS / "passing.json"))
    assert (code, out, err) == (2, "", "obsgen: error: OBSGEN_PUSHGATEWAY_URL: 'pushgateway:9091' is not a URL: "
                                       "write it as http://pushgateway:9091\n")


# --- why a backend cannot be reached -------------------------------------------------------------------

class _Quiet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 -- http.server's name
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_http() -> Iterator[int]:
    """A plain-http server on loopback (no TLS); its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_https_at_a_plain_http_server_is_a_tls_failure_with_the_fix(capsys, plain_http: int) -> None:
    url = f"https://127.0.0.1:{plain_http}"
    code, out, err = obsgen(capsys, "diff", "--env", "dev", "--only", "grafana", "--grafana-url", url)
    assert (code, out, err) == (2, "", f"obsgen: error: cannot reach Grafana (dev) at {url}: TLS handshake failed "
                                       f"(is the server plain http? write http://127.0.0.1:{plain_http})\n")


def test_a_name_that_does_not_resolve_is_a_dns_failure(capsys, monkeypatch) -> None:
    resolve = socket.getaddrinfo

    def resolver(host: object, *args: object, **kwargs: object) -> object:
        if host == "grafana.nosuch.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    url = "http://grafana.nosuch.invalid:3000"
    code, out, err = obsgen(capsys, "diff", "--env", "dev", "--only", "grafana", "--grafana-url", url)
    assert (code, out, err) == (2, "", f"obsgen: error: cannot reach Grafana (dev) at {url}: DNS lookup of "
                                       f"grafana.nosuch.invalid failed (no such host name?)\n")


def test_a_refused_connection_keeps_its_message(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = obsgen(capsys, "diff", "--env", "dev", "--only", "grafana", "--grafana-url", url)
    assert (code, out, err) == (2, "", f"obsgen: error: cannot reach Grafana (dev) at {url} (connection refused "
                                       f"or DNS failure)\n")


# --- a URL without a scheme ----------------------------------------------------------------------------

def test_a_spec_url_without_a_scheme_gets_the_fix(capsys, tmp_path: Path) -> None:
    text = REFERENCE_SPEC.read_text().replace("url: http://grafana.dev.example.internal:3000",
                                              "url: grafana.example.com:3000")
    spec = tmp_path / "selftest.yaml"
    spec.write_text(text)
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if "url: grafana.example.com:3000" in line)
    col = lines[row].index("grafana.example.com:3000")
    code, out, err = obsgen(capsys, "validate", "--spec", str(spec))
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == (f"{spec}:{row + 1}:{col + 1}: environments[0].backends.grafana.url: "
                                   f"'grafana.example.com:3000' is not an http(s) URL: write it as "
                                   f"http://grafana.example.com:3000")
    assert len(err.splitlines()) == 2  # that problem, then the count


def test_a_spec_url_with_another_scheme_gets_no_http_hint(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "selftest.yaml"
    spec.write_text(REFERENCE_SPEC.read_text().replace("url: http://grafana.dev.example.internal:3000",
                                                       "url: ftp://grafana.example.com"))
    code, _, err = obsgen(capsys, "validate", "--spec", str(spec))
    assert code == 2
    assert err.splitlines()[0].endswith("environments[0].backends.grafana.url: 'ftp://grafana.example.com' is "
                                        "not an http(s) URL")


@pytest.mark.parametrize("variable", [None, "OBSGEN_GRAFANA_URL"])
def test_a_url_override_without_a_scheme_gets_the_fix(capsys, monkeypatch, variable: str | None) -> None:
    args = ["diff", "--env", "dev", "--only", "grafana"]
    if variable:
        monkeypatch.setenv(variable, "grafana.example.com:3000")
    else:
        args += ["--grafana-url", "grafana.example.com:3000"]
    code, out, err = obsgen(capsys, *args)
    assert (code, out, err) == (2, "", f"obsgen: error: {variable or '--grafana-url'}: 'grafana.example.com:3000' "
                                       f"is not a URL: write it as http://grafana.example.com:3000\n")


# --- every problem of a report at once -----------------------------------------------------------------

def test_every_problem_of_a_report_comes_at_once_one_per_line(capsys, tmp_path: Path) -> None:
    report = tmp_path / "run.json"
    report.write_text(json.dumps({
        "version": "2.0",
        "metadata": {"timestamp": "2025-11-30T16:30:00+00:00"},
        "results": [
            {"step_id": "core-checks", "tier": "kernel", "status": "PASS"},  # a missing field
            {"step_id": "skills-governance", "tier": "governance", "status": "PASS", "duration_ms": "84"},  # a type
            {"step_id": "bdd", "tier": "kernal", "status": "PASS", "duration_ms": 5},  # an unknown tier
            {"step_id": "lint-docs", "tier": "governance", "duration_ms": 5},  # an unknown step, no status
        ],
        "summary": {"total": 7},  # four results
    }))
    target = tmp_path / "selftest.prom"
    code, out, err = obsgen(capsys, "emit", "--env", "dev", "--report", str(report), "--textfile", str(target))
    assert (code, out) == (2, "")
    assert err == (f"obsgen: error: {report}: results[0].duration_ms: missing\n"
                   f"{report}: results[1].duration_ms: expected a number >= 0, got string \"84\"\n"
                   f"{report}: results[2].tier: expected one of kernel, governance, optional, got string \"kernal\"\n"
                   f"{report}: results[3].step_id: unknown step lint-docs; the spec has no such step\n"
                   f"{report}: results[3].status: missing\n"
                   f"{report}: summary.total: 7, but results has 4 steps\n")
    assert not target.exists()


def test_summary_counts_are_checked_beside_the_other_problems(capsys, tmp_path: Path) -> None:
    data = json.loads((REPORTS / "passing.json").read_text())
    data["metadata"]["timestamp"] = "yesterday"
    data["summary"]["failed"] = 2  # passing.json: no step failed
    report = tmp_path / "run.json"
    report.write_text(json.dumps(data))
    code, _, err = obsgen(capsys, "emit", "--env", "dev", "--report", str(report), "--textfile",
                          str(tmp_path / "selftest.prom"))
    assert code == 2
    assert err == (f"obsgen: error: {report}: metadata.timestamp: expected an ISO 8601 time with a UTC offset (e.g. "
                   f"2025-11-30T15:30:00+00:00), got string \"yesterday\"\n"
                   f"{report}: summary.failed: 2, but results has 0 failed steps\n")


# --- doctor: a token not checked is said, not dropped --------------------------------------------------

def test_doctor_shows_the_token_of_an_unreachable_backend_as_not_checked(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = obsgen(capsys, "doctor", "--env", "dev", "--only", "grafana", "--grafana-url", url)
    assert (code, err) == (2, "")
    assert out == (f"✓ Grafana (dev): URL: {url} (from --grafana-url)\n"
                   f"✓ Grafana (dev): token: OBSGEN_DEV_GRAFANA_TOKEN is set\n"
                   f"✗ Grafana (dev): reachable: cannot reach Grafana (dev) at {url} (connection refused or DNS "
                   f"failure) — fix: is Grafana running at {url}? fix --grafana-url\n"
                   f"- Grafana (dev): token accepted: not checked: the reachable check failed\n"
                   f"- Grafana (dev): dashboards: not checked: the reachable check failed\n"
                   f"dev: 1 problem (Grafana (dev) reachable); 2 checks passed, 2 not run\n")
