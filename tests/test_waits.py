"""Every backend wait has one overall deadline, stated truthfully, with progress on a terminal (issue 12, item 2).

A server that accepts the connection and never answers must be reported within the deadline the
message names -- connect, read and retries together -- not after one deadline per retry. Waits
longer than a couple of seconds show `waiting for … N s of D s` on stderr when it is a terminal, and
nothing when it is not. The hung server here is a real socket in this process that accepts and never
answers. No assertion depends on how fast the machine is: the only clock bound is a generous 3x.
"""
from __future__ import annotations

import io
import re
import socket
import time

import pytest
from hung import HungServer

from obsgen.deploy import http
from obsgen.deploy.http import BackendError, Deadline, Http, Progress


@pytest.fixture
def hung():
    server = HungServer()
    yield server
    server.close()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- one overall deadline ------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_hung_server_is_reported_within_the_deadline_the_message_names(hung: HungServer, method: str) -> None:
    client = Http("Hung (test)", hung.url, timeout=1.5)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        client.request(method, "/api/health")
    took = time.monotonic() - started
    assert str(caught.value) == f"Hung (test) at {hung.url} did not answer {method} /api/health within 1.5 s"
    assert took < 3 * 1.5  # one deadline for connect, read and retries, not one per attempt (was 3 x 10 s)
    assert len(hung.connections) == 1  # the deadline was spent on the first attempt: no retry past it


def test_the_default_deadline_is_the_modules_and_is_what_the_message_states(hung, monkeypatch) -> None:
    monkeypatch.setattr(http, "TIMEOUT", 1.0)
    with pytest.raises(BackendError, match=r"did not answer GET /x within 1 s$"):
        Http("Hung (test)", hung.url).request("GET", "/x")


def test_one_deadline_spans_the_requests_of_one_wait(hung: HungServer) -> None:
    """A caller waiting through several requests (Prometheus confirming a reload) passes its deadline:
    once it is spent, the next request fails at once, naming the whole wait."""
    client = Http("Hung (test)", hung.url, timeout=30)
    wait = Deadline.after(1.0)
    for _ in range(2):
        with pytest.raises(BackendError) as caught:
            client.request("GET", "/api/v1/rules", deadline=wait)
        assert str(caught.value) == f"Hung (test) at {hung.url} did not answer GET /api/v1/rules within 1 s"
    assert len(hung.connections) == 1
    assert wait.left() == 0


def test_a_refused_connection_is_retried_within_the_deadline_and_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        with pytest.raises(BackendError) as caught:
            Http("Closed (test)", url, timeout=5).request("GET", "/")
    assert str(caught.value) == f"cannot reach Closed (test) at {url} (connection refused or DNS failure)"


def test_the_cli_states_the_deadline_and_stays_quiet_when_stderr_is_not_a_terminal(hung, run_cli, monkeypatch) -> None:
    monkeypatch.setattr(http, "TIMEOUT", 1.0)
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", "token")
    result = run_cli("diff", "--env", "dev", "--only", "grafana", "--grafana-url", hung.url)
    assert result.code == 2 and result.out == ""
    assert re.fullmatch(rf"obsgen: error: Grafana \(dev\) at {re.escape(hung.url)} did not answer GET /api/\S+ "
                        rf"within 1 s\n", result.err), result.err  # one line: no progress written to a pipe


# --- progress ------------------------------------------------------------------------------------------

def test_progress_shows_the_oldest_wait_once_it_is_older_than_the_threshold() -> None:
    clock, terminal = FakeClock(), FakeTerminal()
    progress = Progress(terminal, after=2.0, clock=clock)
    first = progress.begin("Grafana (dev) at http://grafana:3000", 10)
    clock.now += 1.9
    progress.tick()
    assert terminal.getvalue() == ""  # a short wait shows nothing
    second = progress.begin("Grafana (dev) at http://grafana:3000", 10)
    clock.now += 2.3
    progress.tick()
    assert terminal.getvalue() == ("\rwaiting for Grafana (dev) at http://grafana:3000 \u2026 4 s of 10 s "
                                   "(and 1 more request)\x1b[K")
    progress.end(first)
    progress.tick()  # the second wait is 2.3 s old
    assert terminal.getvalue().endswith("\rwaiting for Grafana (dev) at http://grafana:3000 \u2026 2 s of 10 s\x1b[K")
    progress.end(second)
    assert terminal.getvalue().endswith("\r\x1b[K")  # the line is cleared when the last wait ends


def test_progress_writes_nothing_and_starts_no_thread_when_the_stream_is_not_a_terminal() -> None:
    clock, pipe = FakeClock(), io.StringIO()
    progress = Progress(pipe, after=0.0, clock=clock)
    token = progress.begin("Prometheus (dev) at http://prometheus:9090", 10)
    clock.now += 5
    progress.tick()
    progress.end(token)
    assert pipe.getvalue() == ""
    assert progress._thread is None


def test_a_hung_request_shows_progress_on_a_terminal_and_clears_it(hung: HungServer, monkeypatch) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(http, "PROGRESS", Progress(terminal, after=0.2, every=0.1))
    with pytest.raises(BackendError, match="within 1.5 s$"):
        Http("Hung (test)", hung.url, timeout=1.5).request("GET", "/api/health")
    shown = terminal.getvalue()
    assert f"\rwaiting for Hung (test) at {hung.url} \u2026 " in shown
    assert re.search(r" \d s of 1\.5 s\x1b\[K", shown)
    assert shown.endswith("\r\x1b[K")
