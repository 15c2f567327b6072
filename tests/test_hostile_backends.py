"""A backend that answers slowly, hugely, in the wrong shape or with terminal escapes (issue 18, items 1 and 5).

Every answer is bounded: one deadline per request that includes reading the body, a cap on its size and
on the pages of a Grafana search. Every malformed answer is one line naming the backend, exit 2 --
never "internal error". Server text obsgen prints or records has its control characters escaped and is
cut to a sane length. The servers are small loopback HTTP servers in this module: each plays one fault.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest
import yaml
from conftest import REFERENCE_SPEC
from doubles.server import ServedDouble

from obsgen.deploy import http
from obsgen.deploy.backends import grafana as grafana_backend
from obsgen.deploy.http import BackendError, Http

Answer = tuple[int, dict[str, str], "bytes | Iterable[bytes]"]
GRAFANA_TOKEN = "glsa_hostile_test_token_0123456789"
MIMIR_TOKEN = "mimir_hostile_test_token_0123456789"
ESCAPES = "\x1b[2K\r\x1b[32m✓ applied: no changes\x1b[0m\b"


class Fault(ServedDouble):
    """Answers every request with `answer(method, path)`: a status, headers and a body (bytes, or chunks
    written one by one with a flush, so a generator can trickle). Records (method, path)."""

    def __init__(self, answer: Callable[[str, str], Answer]) -> None:
        super().__init__()
        self.answer = answer
        self.seen: list[tuple[str, str]] = []
        self.address = ""

    def start(self) -> "Fault":
        super().start()
        self.address = super().url
        return self

    @property
    def url(self) -> str:  # still known once stopped, for the assertions after a `with`
        return self.address

    class handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            double: Fault = self.server.double  # type: ignore[attr-defined]
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            double.seen.append((self.command, self.path))
            status, headers, body = double.answer(self.command, self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if isinstance(body, bytes):
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for chunk in [body] if isinstance(body, bytes) else body:
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:  # the client gave up: what these tests want
                pass
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _answer


def json_answer(body: Any, status: int = 200) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def trickle(first: bytes = b"[", every: float = 0.2, for_seconds: float = 30.0) -> Iterable[bytes]:
    """One byte now, then one byte every `every` seconds: an answer that never ends in time."""
    yield first
    end = time.monotonic() + for_seconds
    while time.monotonic() < end:
        time.sleep(every)
        yield b" "


@pytest.fixture(autouse=True)
def operator(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OBSGEN_ALLOWED_HOSTS", "OBSGEN_SECRET_DIRS", "OBSGEN_GRAFANA_URL", "OBSGEN_PROMETHEUS_URL",
                 "OBSGEN_ALERTMANAGER_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", GRAFANA_TOKEN)
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", MIMIR_TOKEN)


def grafana_diff(run_cli, url: str, *args: str):
    return run_cli("diff", "--env", "dev", "--only", "grafana", "--grafana-url", url, *args)


def one_error_line(result) -> str:  # noqa: ANN001 - conftest.Result
    assert (result.code, result.out) == (2, ""), result
    assert result.err.startswith("obsgen: error: ") and result.err.count("\n") == 1, result.err
    assert "internal error" not in result.err and "this is a bug" not in result.err
    return result.err.removeprefix("obsgen: error: ").rstrip("\n")


# --- one deadline per request, body included ----------------------------------------------------------------

def test_an_answer_trickled_one_byte_at_a_time_ends_at_the_deadline(monkeypatch) -> None:
    with Fault(lambda method, path: (200, {"Content-Type": "application/json", "Content-Length": "1000"},
                                     trickle())) as server:
        client = Http("Grafana (dev)", server.url, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(BackendError) as error:
            client.request("GET", "/api/search")
        assert time.monotonic() - started < 6  # 1 s deadline; generous margin for a loaded machine
    assert str(error.value) == f"Grafana (dev) at {server.url} did not answer GET /api/search within 1 s"


def test_an_answer_head_trickled_one_byte_at_a_time_ends_at_the_deadline() -> None:
    """Each read of the socket is bounded by urllib3; their sum, while the status line and headers trickle in,
    must be bounded too."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 150:
                if stop.is_set():
                    return
                try:
                    conn.send(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    started = time.monotonic()
    try:
        with pytest.raises(BackendError) as error:
            Http("Grafana (dev)", url, timeout=1.0).request("POST", "/api/dashboards/db", json={})
        assert time.monotonic() - started < 6  # not the 30 s the head takes to trickle in
    finally:
        stop.set()
        listener.close()
    assert str(error.value) == f"Grafana (dev) at {url} did not answer POST /api/dashboards/db within 1 s"


def test_a_trickled_chunked_answer_ends_a_diff_at_the_deadline_with_one_line(run_cli, monkeypatch) -> None:
    monkeypatch.setattr(http, "TIMEOUT", 1.0)
    with Fault(lambda method, path: (200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                                     (b"%x\r\n%s\r\n" % (len(c), c) for c in trickle()))) as server:
        started = time.monotonic()
        result = grafana_diff(run_cli, server.url)
        assert time.monotonic() - started < 8
    line = one_error_line(result)
    assert line.startswith(f"Grafana (dev) at {server.url} did not answer GET /api/") and line.endswith(" within 1 s")


# --- a cap on answer size -----------------------------------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True])
def test_an_answer_larger_than_the_cap_is_refused_by_size_not_called_empty(monkeypatch, chunked: bool) -> None:
    monkeypatch.setattr(http, "MAX_ANSWER", 1 << 20)  # 1 MiB; the default is 32 MiB
    piece = b"[" + b" " * (64 * 1024 - 1)

    def huge(method: str, path: str) -> Answer:
        chunks = [piece] * 48  # 3 MiB
        if chunked:
            return 200, {"Transfer-Encoding": "chunked"}, [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks] + [b"0\r\n\r\n"]
        return 200, {"Content-Length": str(len(piece) * 48)}, chunks

    with Fault(huge) as server:
        with pytest.raises(BackendError) as error:
            Http("Grafana (dev)", server.url).request("GET", "/api/search")
    assert str(error.value) == (f"Grafana (dev) at {server.url} answered GET /api/search with more than 1 MiB; is "
                                f"{server.url} really this backend?")


def test_an_answer_within_the_cap_is_read_whole() -> None:
    body = json.dumps([{"uid": f"d{i}"} for i in range(20000)]).encode()  # ~300 KiB, in many reads
    with Fault(lambda method, path: (200, {"Content-Type": "application/json"}, body)) as server:
        client = Http("Grafana (dev)", server.url)
        assert client.json(client.request("GET", "/api/search"), list) == json.loads(body)


# --- Grafana search paging is bounded -----------------------------------------------------------------------

def grafana_searches(pages: Callable[[int], list[dict[str, Any]]]) -> Callable[[str, str], Answer]:
    def answer(method: str, path: str) -> Answer:
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(path)
        if parts.path == "/api/search":
            return json_answer(pages(int(parse_qs(parts.query).get("page", ["1"])[0])))
        return json_answer({"message": "Not found"}, 404)
    return answer


def test_a_grafana_that_ignores_page_is_not_paged_for_ever(run_cli, monkeypatch) -> None:
    monkeypatch.setattr(grafana_backend, "SEARCH_LIMIT", 2)
    same = [{"uid": "a", "type": "dash-db"}, {"uid": "b", "type": "dash-db"}]
    with Fault(grafana_searches(lambda page: same)) as server:
        result = grafana_diff(run_cli, server.url)
        searches = [p for m, p in server.seen if p.startswith("/api/search")]
    assert one_error_line(result) == (
        f"Grafana (dev) answered page 2 of GET /api/search with the same dashboards as page 1: it ignores `page`, "
        f"so obsgen cannot read every dashboard; is {server.url} really Grafana?")
    assert len(searches) <= 2 * 4  # two pages for each of the (at most 4) searches


def test_a_search_that_never_ends_stops_after_a_bound(run_cli, monkeypatch) -> None:
    monkeypatch.setattr(grafana_backend, "SEARCH_LIMIT", 2)
    monkeypatch.setattr(grafana_backend, "MAX_PAGES", 5)
    endless = lambda page: [{"uid": f"p{page}-{i}", "type": "dash-db"} for i in range(2)]  # noqa: E731
    with Fault(grafana_searches(endless)) as server:
        result = grafana_diff(run_cli, server.url)
    assert one_error_line(result) == (
        f"Grafana (dev) answered GET /api/search with more than 5 pages of 2 dashboards; obsgen stops there: "
        f"is {server.url} really Grafana?")


@pytest.mark.parametrize(("path", "body", "what"), [
    ("/api/search", {"not": "a list"}, "its body as an object where a list was expected"),
    ("/api/search", [["a"]], "a search hit as a list where an object was expected"),
    ("/api/folders/", ["x"], "its body as a list where an object was expected"),
    ("/api/folders/", {"title": 5}, "the folder's title as a number where a string was expected"),
])
def test_grafana_answers_of_the_wrong_shape_are_one_line_naming_grafana(run_cli, path: str, body: Any,
                                                                        what: str) -> None:
    def answer(method: str, request_path: str) -> Answer:
        if request_path.startswith(path):
            return json_answer(body)
        return json_answer([] if request_path.startswith("/api/search") else {"message": "Not found"},
                           200 if request_path.startswith("/api/search") else 404)

    with Fault(answer) as server:
        line = one_error_line(grafana_diff(run_cli, server.url))
    assert line.startswith("Grafana (dev) answered GET ") and f"(HTTP 200) with {what}; is {server.url} " \
        f"really this backend?" in line


def test_a_dashboard_answer_of_the_wrong_shape_is_one_line(run_cli) -> None:
    from obsgen.compile import conventions as c
    from obsgen.spec import load_spec

    model = load_spec(str(REFERENCE_SPEC))
    uid = c.grafana_folder_uid(model, model.environment("dev"))

    def answer(method: str, path: str) -> Answer:
        if path.startswith("/api/search"):
            return json_answer([{"uid": "d1"}] if "folderUIDs" in path else [])
        if path.startswith("/api/dashboards/uid/d1"):
            return json_answer({"dashboard": {"uid": "d1", "tags": "obsgen"}, "meta": {"folderUid": uid}})
        return json_answer({"message": "Not found"}, 404)

    with Fault(answer) as server:
        line = one_error_line(grafana_diff(run_cli, server.url))
    assert line == (f"Grafana (dev) answered GET /api/dashboards/uid/d1 (HTTP 200) with its tags as a string where a "
                    f"list was expected; is {server.url} really this backend?")


# --- server text shown safely --------------------------------------------------------------------------------

def test_control_characters_in_an_error_body_are_escaped_and_cut(run_cli) -> None:
    message = ESCAPES + "x" * 5000
    with Fault(lambda method, path: json_answer({"message": message}, 500)) as server:
        result = grafana_diff(run_cli, server.url)
    line = one_error_line(result)
    assert not any(ch in result.err for ch in "\x1b\r\b")
    assert "\\x1b[2K\\r\\x1b[32m✓ applied: no changes\\x1b[0m\\x08" in line
    assert len(line) < 600  # cut to a sane length, not 5000 characters of it


def test_a_plain_text_error_body_with_escapes_is_escaped() -> None:
    with Fault(lambda method, path: (400, {"Content-Type": "text/plain; charset=utf-8"},
                                     ESCAPES.encode())) as server:
        with pytest.raises(BackendError) as error:
            Http("Grafana (dev)", server.url).request("GET", "/api/search")
    assert str(error.value) == ("Grafana (dev) answered HTTP 400 to GET /api/search: "
                                "\\x1b[2K\\r\\x1b[32m✓ applied: no changes\\x1b[0m\\x08")


def test_an_obsgen_error_line_never_carries_a_control_character(run_cli, monkeypatch) -> None:
    """The last line of defence: whatever an error's text holds, `obsgen: error:` is one escaped line."""
    from obsgen.deploy import ledger
    from obsgen.errors import ObsgenError

    def unreadable(*args: object, **kwargs: object) -> None:
        raise ObsgenError(f"the ledger said {ESCAPES}" + "y" * 5000)

    monkeypatch.setattr(ledger, "history", unreadable)
    line = one_error_line(run_cli("history"))
    assert line.startswith("the ledger said \\x1b[2K\\r\\x1b[32m✓ applied: no changes\\x1b[0m\\x08yyy")
    assert len(line) < 2100  # cut to a sane length


def test_history_prints_recorded_server_text_escaped(run_cli, tmp_path, monkeypatch) -> None:
    from obsgen.deploy import ledger, state

    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    ledger.record(state.ledger_path(), env="dev", spec_sha256="0" * 64, mode="apply", summary=f"plan {ESCAPES}",
                  planned=[], changes=[], result="failed", error=f"Grafana said {ESCAPES}")
    result = run_cli("history")
    assert result.code == 0
    assert not any(ch in result.out for ch in "\x1b\r\b")
    assert "plan \\x1b[2K\\r" in result.out and "error: Grafana said \\x1b[2K\\r" in result.out


# --- malformed answers: one line naming the backend ---------------------------------------------------------

def mimir_spec(tmp_path: Path) -> Path:
    path = tmp_path / "selftest.yaml"
    path.write_text(REFERENCE_SPEC.read_text())
    return path


@pytest.mark.parametrize(("rule", "what"), [
    ({"alert": "A"}, "a rule without `expr`"),
    ({"alert": "A", "expr": 5}, "a rule whose `expr` is not a string"),
    ("just text", "a rule that is not a mapping"),
    ({"record": "r", "expr": "up", "labels": ["x"]}, "a rule whose `labels` is not a mapping"),
    ({"alert": "A", "expr": "up", "for": "soon"}, "a rule whose `for` is not a duration"),
])
def test_mimir_rules_of_the_wrong_shape_are_one_line_naming_the_ruler(run_cli, tmp_path, rule: Any,
                                                                      what: str) -> None:
    tenant = {"obsgen/selftest-prod/selftest": [{"name": "g", "rules": [rule]}]}
    with Fault(lambda method, path: (200, {"Content-Type": "application/yaml"},
                                     yaml.safe_dump(tenant).encode())) as server:
        result = run_cli("diff", "--env", "prod", "--spec", str(mimir_spec(tmp_path)), "--only", "prometheus",
                         "--prometheus-url", server.url)
    assert one_error_line(result) == (
        f"Mimir ruler (prod) answered GET /prometheus/config/v1/rules (HTTP 200) with {what} in group "
        f"obsgen/selftest-prod/selftest/g; is {server.url} really this backend?")


def alertmanager_status(status: dict[str, Any]) -> Callable[[str, str], Answer]:
    return lambda method, path: json_answer(status if path.startswith("/api/v2/status") else {})


@pytest.mark.parametrize(("status", "detail"), [
    ({"versionInfo": "x", "config": {"original": "route: {}\n"}},
     "its versionInfo as a string where an object was expected"),
    ({"versionInfo": {"version": "0.25.0"}, "config": "x"}, "its config as a string where an object was expected"),
])
def test_doctor_on_a_malformed_alertmanager_status_fails_that_check_in_one_line(run_cli, status, detail) -> None:
    with Fault(alertmanager_status(status)) as server:
        result = run_cli("doctor", "--env", "dev", "--only", "alertmanager", "--alertmanager-url", server.url)
    assert result.code == 2 and "internal error" not in result.err + result.out, result
    lines = [line for line in result.out.splitlines() if line.startswith("✗ Alertmanager (dev): status API")]
    assert lines == [f"✗ Alertmanager (dev): status API: Alertmanager (dev) answered GET /api/v2/status (HTTP 200) "
                     f"with {detail}; is {server.url} really this backend? — fix: is {server.url} really "
                     f"Alertmanager?"]


def test_doctor_shows_a_mimir_tenant_answer_escaped(run_cli, tmp_path) -> None:
    with Fault(lambda method, path: (500, {"Content-Type": "text/plain; charset=utf-8"},
                                     ESCAPES.encode())) as server:
        result = run_cli("doctor", "--env", "prod", "--spec", str(mimir_spec(tmp_path)), "--only", "prometheus",
                         "--prometheus-url", server.url)
    assert result.code == 2
    assert not any(ch in result.out + result.err for ch in "\x1b\r\b")
    assert "\\x1b[2K\\r" in result.out


@pytest.mark.parametrize("token", ["tökenЖ", "token with space", "token\r\nX-Evil: 1"])
def test_a_token_that_cannot_go_in_a_header_is_refused_before_sending(run_cli, monkeypatch, token: str) -> None:
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", token)
    with Fault(lambda method, path: json_answer([])) as server:
        result = grafana_diff(run_cli, server.url)
        assert server.seen == []
    assert one_error_line(result) == (
        "grafana (dev): the token in OBSGEN_DEV_GRAFANA_TOKEN holds a character an HTTP header cannot carry (only "
        "printable ASCII without spaces can be sent); check the token")


def test_doctor_names_a_token_that_cannot_go_in_a_header(run_cli, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", "tökenЖ")
    with Fault(lambda method, path: json_answer([])) as server:
        result = run_cli("doctor", "--env", "dev", "--only", "grafana", "--grafana-url", server.url)
        assert server.seen == []
    assert result.code == 2 and "internal error" not in result.out + result.err
    assert ("✗ Grafana (dev): token: the token in OBSGEN_DEV_GRAFANA_TOKEN holds a character an HTTP header cannot "
            "carry (only printable ASCII without spaces can be sent)") in result.out
