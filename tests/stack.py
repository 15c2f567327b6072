"""A live Prometheus + Alertmanager + Pushgateway stack on loopback, for tests.

    from stack import Stack, Sink

    with Sink() as sink, Stack(sink=sink) as stack:      # start() runs on __enter__
        stack.push("job", "my_metric 1\\n", {"instance": "a"})
        stack.wait_until(lambda: stack.query("my_metric"), 30, "my_metric in Prometheus")

Everything binds 127.0.0.1 on ports picked per run, lives in one temp dir that stop() removes,
and every wait is bounded. Only the Debian binaries are needed: `prometheus`,
`prometheus-alertmanager`, `prometheus-pushgateway` (Debian packages, which `make test` installs).

Dependencies: the standard library, requests and PyYAML only.
"""
from __future__ import annotations

import atexit
import base64
import ctypes
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote

import requests
import yaml

__all__ = ["free_port", "wait_until", "Record", "Sink", "Stack", "StackError", "ProcessDied", "COMPONENTS", "BINARIES"]

T = TypeVar("T")

#: The components a Stack can run, in start order (Prometheus needs the other two's ports).
COMPONENTS = ("pushgateway", "alertmanager", "prometheus")
BINARIES = {"pushgateway": "prometheus-pushgateway",
            "alertmanager": "prometheus-alertmanager",
            "prometheus": "prometheus"}

HTTP_TIMEOUT = 5.0        # every single HTTP request
READY_TIMEOUT = 30.0      # one process answering /-/ready
DISCOVERY_TIMEOUT = 30.0  # Prometheus seeing its targets up and its Alertmanager (about 5 s here)
STOP_TIMEOUT = 10.0       # SIGTERM -> exit, before SIGKILL
PORT_ATTEMPTS = 3         # a freshly picked port can be taken by someone else before we bind it
POLL = 0.15


class StackError(RuntimeError):
    """A backend process did not start, died, or did not become ready in time."""


class ProcessDied(StackError):
    """One of the stack's processes exited while we were waiting on it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fn: Callable[[], T], timeout: float, what: str, interval: float = POLL,
               fatal: tuple[type[BaseException], ...] = ()) -> T:
    """Call `fn` every `interval` seconds until it returns something truthy, and return that.

    Exceptions raised by `fn` count as "not yet" (a backend may still be coming up), except those
    in `fatal`, which propagate at once. After `timeout` seconds raise AssertionError naming
    `what`, with the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = fn()
            last_exc = None
            if last:
                return last
        except fatal:
            raise
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            last_exc = exc
        if time.monotonic() >= deadline:
            seen = f"last error: {last_exc!r}" if last_exc is not None else f"last value: {last!r}"
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} ({seen})"[:4000])
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Sink: the stand-in for PagerDuty, Slack and webhook receivers
# --------------------------------------------------------------------------------------------

class Record(NamedTuple):
    """One POST the sink received: the request path and its body (parsed JSON, else text)."""
    path: str
    body: Any


class _SinkHandler(BaseHTTPRequestHandler):
    server: "_SinkServer"

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        raw = self._read_body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.server.sink._record(Record(self.path, body))
        if self.path.startswith("/v2/enqueue"):     # what PagerDuty Events v2 answers
            status, reply = 202, {"status": "success", "message": "Event processed",
                                  "dedup_key": (body or {}).get("dedup_key") if isinstance(body, dict) else None}
        else:
            status, reply = 200, {"ok": True}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_PUT = do_POST

    def do_GET(self) -> None:  # noqa: N802 - a health check for curious humans
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, sink: "Sink") -> None:
        self.sink = sink
        super().__init__(("127.0.0.1", 0), _SinkHandler)


class Sink:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) that records every POST.

    Point receivers at it: PagerDuty `url: {sink.url}/v2/enqueue`, Slack `api_url: {sink.url}/slack`,
    webhooks `url: {sink.url}/webhook`. Starts in the constructor; `close()` or `with` stops it.
    """

    def __init__(self) -> None:
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self._server = _SinkServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"sink-{self.port}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:41234."""
        return f"http://127.0.0.1:{self.port}"

    def _record(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)

    def received(self, path_prefix: str | None = None) -> list[Record]:
        """A copy of the POSTs so far, in arrival order, optionally only those under `path_prefix`."""
        with self._lock:
            records = list(self._records)
        return [r for r in records if path_prefix is None or r.path.startswith(path_prefix)]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def wait_for(self, predicate: Callable[[Record], bool], timeout: float = 30.0, *,
                 path_prefix: str | None = None, count: int = 1) -> list[Record]:
        """Poll until at least `count` received records satisfy `predicate`; return all that do.

        `predicate` gets one Record (a `(path, body)` tuple with `.path` and `.body`); a predicate
        that raises (e.g. KeyError on a body of another shape) counts as "no match". On timeout
        raise AssertionError listing what did arrive.
        """
        deadline = time.monotonic() + timeout
        errors: list[str] = []
        while True:
            matching = []
            for record in self.received(path_prefix):
                try:
                    ok = predicate(record)
                except Exception as exc:  # noqa: BLE001 - reported on timeout
                    ok = False
                    errors.append(f"{type(exc).__name__}: {exc}")
                if ok:
                    matching.append(record)
            if len(matching) >= count:
                return matching
            if time.monotonic() >= deadline:
                got = self.received()
                shown = json.dumps([list(r) for r in got], indent=1, default=str)
                raise AssertionError(
                    f"sink {self.url}: wanted {count} matching record(s) under {path_prefix or '/'} within "
                    f"{timeout:g}s, {len(matching)} matched; got {len(got)} POST(s): {shown[:6000]}"
                    + (f"; predicate errors (last): {errors[-1]}" if errors else ""))
            errors.clear()
            time.sleep(POLL)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sink({self.url}, {len(self.received())} received)"


# --------------------------------------------------------------------------------------------
# Stack
# --------------------------------------------------------------------------------------------

def _die_with_parent() -> Callable[[], None] | None:
    """preexec_fn: have the kernel SIGTERM the child if the thread that started it dies, so a
    killed pytest does not leave backends behind (Linux prctl PR_SET_PDEATHSIG). Note that it is
    tied to the starting *thread*: start a Stack from a thread that outlives it (e.g. the main one)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    PR_SET_PDEATHSIG = 1

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return preexec


_PREEXEC = _die_with_parent()
_LIVE: "weakref.WeakSet[Stack]" = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for stack in list(_LIVE):
        stack.stop()


def default_alertmanager_config(sink: Sink | None) -> str:
    """Everything to one receiver: a webhook to `{sink.url}/webhook` (send_resolved), or, without
    a sink, a receiver with no integrations. group_wait/group_interval 1s, grouped by alertname."""
    receiver: dict[str, Any] = {"name": "sink" if sink else "blackhole"}
    if sink:
        receiver["webhook_configs"] = [{"url": f"{sink.url}/webhook", "send_resolved": True}]
    return yaml.safe_dump({
        "route": {"receiver": receiver["name"], "group_by": ["alertname"],
                  "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [receiver],
    }, sort_keys=False)


class _Proc:
    def __init__(self, name: str, port: int, popen: subprocess.Popen[bytes], log: Path, argv: list[str]) -> None:
        self.name, self.port, self.popen, self.log, self.argv = name, port, popen, log, argv

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Stack:
    """Real Pushgateway, Alertmanager and Prometheus on loopback, in a temp dir.

    The temp dir (`tmp`, with `rules_dir` inside) exists from construction, so files can be written
    before `start()`. Prometheus loads `rules_dir/*.yaml`, scrapes the Pushgateway (honor_labels),
    itself and the Alertmanager, and sends alerts to the Alertmanager.

    `resend_delay` (Prometheus --rules.alert.resend-delay; 3s here instead of 1m): every reload
    of Prometheus 2.42 forgets its Alertmanagers for up to ~5 s (the notifier's discovery restarts
    and is throttled to 5 s). An alert that fires in that gap is dropped, and with the default 1m
    it would not be sent again for a minute; with 3s it arrives a few seconds after the gap.
    Not lower than 3s: Prometheus sends alerts valid for 4 x resend_delay, and a firing alert
    whose validity ran out during the gap would be resolved by Alertmanager (a spurious
    "resolved" notification) -- 12 s of validity covers the 5 s gap with room to spare.

    Odd Prometheus set-ups, for clients that must cope with them: `relative_config=True` starts
    Prometheus with a relative `--config.file` and the glob `rules/*.yaml`, so /api/v1/rules reports
    rule files as `rules/<name>` (relative to Prometheus's working directory, not the client's);
    `lifecycle=False` leaves out --web.enable-lifecycle, so /-/reload answers 403. Prometheus keeps
    `retention` (30d: the reference spec's SLO periods fit); `retention=None` leaves Prometheus's default (15d).
    """

    def __init__(self, alertmanager_config: str | None = None, sink: Sink | None = None,
                 scrape_interval: str = "1s", evaluation_interval: str | None = None,
                 components: Iterable[str] = COMPONENTS, resend_delay: str = "3s",
                 relative_config: bool = False, lifecycle: bool = True, retention: str | None = "30d",
                 discover: bool = True) -> None:
        components = tuple(components)
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown components {sorted(unknown)}; choose from {COMPONENTS}")
        self.components = tuple(c for c in COMPONENTS if c in components)
        self.sink = sink
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.resend_delay = resend_delay
        self.relative_config, self.lifecycle, self.retention = relative_config, lifecycle, retention
        self.discover = discover  # `with Stack(...)` waits for discovery (~5 s in Prometheus 2.42) only if set
        self._am_config = alertmanager_config if alertmanager_config is not None else default_alertmanager_config(sink)
        self._tmp = Path(tempfile.mkdtemp(prefix="obsgen-stack-"))
        self._rules_dir = self._tmp / "rules"
        self._rules_dir.mkdir()
        (self._tmp / "logs").mkdir()
        self._procs: dict[str, _Proc] = {}
        self._final_logs: dict[str, str] = {}
        self._stopped = False
        self._http = requests.Session()
        _LIVE.add(self)

    # ---- paths and URLs -----------------------------------------------------------------
    @property
    def tmp(self) -> Path:
        return self._tmp

    @property
    def rules_dir(self) -> Path:
        """Prometheus loads `rules_dir/*.yaml` (after start() or reload_prometheus())."""
        return self._rules_dir

    @property
    def alertmanager_config_file(self) -> Path:
        return self._tmp / "alertmanager.yaml"

    @property
    def prometheus_config_file(self) -> Path:
        return self._tmp / "prometheus.yaml"

    def _url(self, name: str) -> str:
        if name not in self._procs:
            raise StackError(f"{name} is not running (components={self.components}, "
                             f"started={sorted(self._procs)})")
        return self._procs[name].url

    @property
    def prometheus_url(self) -> str:
        return self._url("prometheus")

    @property
    def alertmanager_url(self) -> str:
        return self._url("alertmanager")

    @property
    def pushgateway_url(self) -> str:
        return self._url("pushgateway")

    @property
    def pids(self) -> dict[str, int]:
        """PIDs of the processes this stack started, by component."""
        return {name: p.popen.pid for name, p in self._procs.items()}

    def logs(self, name: str) -> str:
        """Combined stdout+stderr of a component (still readable after stop())."""
        if name in self._final_logs:
            return self._final_logs[name]
        path = self._tmp / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _tail(self, name: str, lines: int = 30) -> str:
        return "\n".join(self.logs(name).splitlines()[-lines:])

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self, wait_for_targets: bool = True) -> "Stack":
        """Start the components, wait for each /-/ready, then (by default) until Prometheus has its
        targets up and its Alertmanager. On any failure, stop what was started and raise StackError."""
        if self._stopped:
            raise StackError("a stopped Stack cannot be restarted; make a new one")
        if self._procs:
            raise StackError("already started")
        for name in self.components:
            if not shutil.which(BINARIES[name]):
                raise StackError(f"{BINARIES[name]} is not installed (Debian package "
                                 f"{'prometheus' if name == 'prometheus' else 'prometheus-' + name})")
        try:
            for name in self.components:
                self._start_component(name)
            if wait_for_targets and "prometheus" in self._procs:
                self.wait_for_discovery()
        except BaseException:
            self.stop()
            raise
        return self

    def _argv(self, name: str, port: int) -> list[str]:
        addr, url = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}/"
        if name == "pushgateway":
            return [BINARIES[name], f"--web.listen-address={addr}", "--persistence.file=",
                    "--web.enable-admin-api", "--web.enable-lifecycle", f"--web.external-url={url}"]
        if name == "alertmanager":
            self.alertmanager_config_file.write_text(self._am_config)
            return [BINARIES[name], f"--config.file={self.alertmanager_config_file}",
                    f"--storage.path={self._tmp / 'alertmanager-data'}", f"--web.listen-address={addr}",
                    "--cluster.listen-address=", f"--web.external-url={url}"]
        self.prometheus_config_file.write_text(self._prometheus_config(port))
        config = self.prometheus_config_file.name if self.relative_config else self.prometheus_config_file
        return [BINARIES[name], f"--config.file={config}",
                f"--storage.tsdb.path={self._tmp / 'prometheus-data'}", f"--web.listen-address={addr}",
                *(["--web.enable-lifecycle"] if self.lifecycle else []), f"--web.external-url={url}",
                *([f"--storage.tsdb.retention.time={self.retention}"] if self.retention else []),
                f"--rules.alert.resend-delay={self.resend_delay}"]

    def _prometheus_config(self, port: int) -> str:
        scrape = [{"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]
        if "pushgateway" in self._procs:
            scrape.append({"job_name": "pushgateway", "honor_labels": True,
                           "static_configs": [{"targets": [f"127.0.0.1:{self._procs['pushgateway'].port}"]}]})
        if "alertmanager" in self._procs:
            scrape.append({"job_name": "alertmanager",
                           "static_configs": [{"targets": [f"127.0.0.1:{self._procs['alertmanager'].port}"]}]})
        config: dict[str, Any] = {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval,
                       "evaluation_interval": self.evaluation_interval},
            "rule_files": [f"{self._rules_dir.name}/*.yaml" if self.relative_config else str(self._rules_dir / "*.yaml")],
            "scrape_configs": scrape,
        }
        if "alertmanager" in self._procs:
            config["alerting"] = {"alertmanagers": [{
                "api_version": "v2", "timeout": "5s",
                "static_configs": [{"targets": [f"127.0.0.1:{self._procs['alertmanager'].port}"]}]}]}
        return yaml.safe_dump(config, sort_keys=False)

    def _start_component(self, name: str) -> None:
        log_path = self._tmp / "logs" / f"{name}.log"
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            argv = self._argv(name, port)
            with open(log_path, "ab") as log:
                log.write(f"=== attempt {attempt}: {' '.join(argv)}\n".encode())
                log.flush()
                popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self._tmp, start_new_session=True, preexec_fn=_PREEXEC)
            proc = self._procs[name] = _Proc(name, port, popen, log_path, argv)
            try:
                self._wait_ready(proc)
                return
            except StackError:
                self._terminate([proc])
                del self._procs[name]
                # Someone took the port between free_port() and the bind: pick another one.
                if "address already in use" in self._tail(name, 10).lower() and attempt < PORT_ATTEMPTS:
                    continue
                raise

    def _wait_ready(self, proc: _Proc, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            rc = proc.popen.poll()
            if rc is not None:
                raise StackError(f"{proc.name} exited with code {rc} before it was ready\n"
                                 f"command: {' '.join(proc.argv)}\nlast lines of {proc.log}:\n{self._tail(proc.name)}")
            try:
                r = self._http.get(f"{proc.url}/-/ready", timeout=min(HTTP_TIMEOUT, max(deadline - time.monotonic(), 0.1)))
                if r.status_code == 200:
                    # Guard against answering for a stranger's server on a port we failed to bind.
                    time.sleep(0.05)
                    if proc.popen.poll() is None:
                        return
                    continue
                last = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            if time.monotonic() >= deadline:
                raise StackError(f"{proc.name} not ready on {proc.url}/-/ready after {timeout:g}s ({last})\n"
                                 f"command: {' '.join(proc.argv)}\nlast lines of {proc.log}:\n{self._tail(proc.name)}")
            time.sleep(0.05)

    def wait_for_discovery(self, timeout: float = DISCOVERY_TIMEOUT) -> None:
        """Wait until Prometheus has every scrape job's target up and (if running) its Alertmanager."""
        jobs = {"prometheus"} | {c for c in ("pushgateway", "alertmanager") if c in self._procs}

        def targets_up() -> bool:
            self._check_alive()
            active = self._get_json(f"{self.prometheus_url}/api/v1/targets", params={"state": "active"})["activeTargets"]
            up = {t["labels"].get("job") for t in active if t.get("health") == "up"}
            return jobs <= up and all(t.get("health") == "up" for t in active)

        def am_found() -> bool:
            self._check_alive()
            return bool(self._get_json(f"{self.prometheus_url}/api/v1/alertmanagers")["activeAlertmanagers"])

        deadline = time.monotonic() + timeout
        try:
            self._wait_alive(targets_up, timeout, f"Prometheus to see targets {sorted(jobs)} up")
            if "alertmanager" in self._procs:
                self._wait_alive(am_found, max(deadline - time.monotonic(), 1.0),
                                 "Prometheus to discover its Alertmanager")
        except AssertionError as exc:
            raise StackError(f"{exc}\nlast lines of the prometheus log:\n{self._tail('prometheus')}") from None

    def _check_alive(self) -> None:
        for proc in self._procs.values():
            rc = proc.popen.poll()
            if rc is not None:
                raise ProcessDied(f"{proc.name} died with code {rc}\nlast lines of {proc.log}:\n{self._tail(proc.name)}")

    def _wait_alive(self, fn: Callable[[], T], timeout: float, what: str) -> T:
        """wait_until, but a dead process (ProcessDied from _check_alive) ends the wait at once."""
        return wait_until(fn, timeout, what, fatal=(ProcessDied,))

    def stop(self) -> None:
        """SIGTERM the processes this stack started (by PID), wait, SIGKILL stragglers, remove the
        temp dir. Logs stay readable through logs(). Safe to call twice."""
        procs = list(self._procs.values())
        self._terminate(procs)
        if not self._stopped:
            for name in self.components:
                self._final_logs[name] = self.logs(name)
        self._procs.clear()
        self._http.close()
        if not self._stopped:
            self._stopped = True
            shutil.rmtree(self._tmp, ignore_errors=True)
            _LIVE.discard(self)

    @staticmethod
    def _terminate(procs: list[_Proc]) -> None:
        running = [p for p in procs if p.popen.poll() is None]
        for p in running:
            try:
                p.popen.terminate()
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in running:
            try:
                p.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> "Stack":
        return self.start(wait_for_targets=self.discover)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        if getattr(self, "_procs", None):
            try:
                self.stop()
            except Exception:  # noqa: BLE001 - best effort at interpreter shutdown
                pass

    def __repr__(self) -> str:
        urls = {name: p.url for name, p in self._procs.items()}
        return f"Stack({urls or 'not running'}, tmp={self._tmp})"

    # ---- HTTP helpers -------------------------------------------------------------------
    def _get_json(self, url: str, **kwargs: Any) -> Any:
        r = self._http.get(url, timeout=HTTP_TIMEOUT, **kwargs)
        r.raise_for_status()
        body = r.json()
        if isinstance(body, dict) and "status" in body and "data" in body:   # Prometheus API envelope
            if body["status"] != "success":
                raise StackError(f"GET {url}: {body}")
            return body["data"]
        return body

    def wait_until(self, fn: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
        """Poll `fn` until truthy (returned); AssertionError naming `what` on timeout. Stops early
        with StackError (and the log tail) if one of the stack's processes has died."""
        def step() -> T:
            self._check_alive()
            return fn()
        return self._wait_alive(step, timeout, what)

    # ---- Prometheus ---------------------------------------------------------------------
    def reload_prometheus(self, wait_for_alertmanager: bool = False) -> int:
        """POST /-/reload; 200 on success, 500 on a bad config or rule file (the old one stays), 403
        when the stack was made with lifecycle=False.

        A reload makes Prometheus forget its Alertmanagers for ~5 s (alerts are re-sent after
        `resend_delay`, so delivery is only later, not lost); wait_for_alertmanager=True waits
        until Prometheus has rediscovered it (bounded by DISCOVERY_TIMEOUT)."""
        status = self._http.post(f"{self.prometheus_url}/-/reload", timeout=HTTP_TIMEOUT * 2).status_code
        if status == 200 and wait_for_alertmanager and "alertmanager" in self._procs:
            self.wait_until(lambda: self._get_json(f"{self.prometheus_url}/api/v1/alertmanagers")["activeAlertmanagers"],
                            DISCOVERY_TIMEOUT, "Prometheus to rediscover its Alertmanager after the reload")
        return status

    def write_rules(self, name: str, rules: str | Mapping[str, Any]) -> Path:
        """Write `rules_dir/<name>.yaml` (YAML text, or a mapping dumped as YAML). Reload to apply."""
        path = self._rules_dir / (name if name.endswith(".yaml") else f"{name}.yaml")
        path.write_text(rules if isinstance(rules, str) else yaml.safe_dump(dict(rules), sort_keys=False))
        return path

    def query(self, promql: str, time: float | None = None) -> list[dict[str, Any]]:  # noqa: A002
        """Instant query; the `result` list (for a vector: [{"metric": {...}, "value": [ts, "v"]}])."""
        params: dict[str, Any] = {"query": promql}
        if time is not None:
            params["time"] = time
        data = self._get_json(f"{self.prometheus_url}/api/v1/query", params=params)
        result = data["result"]
        return result if isinstance(result, list) else [result]

    def rule_groups(self) -> list[dict[str, Any]]:
        """GET /api/v1/rules -> the loaded groups (queries come back re-formatted)."""
        return self._get_json(f"{self.prometheus_url}/api/v1/rules")["groups"]

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        """GET /api/v1/alerts -> pending and firing alerts as Prometheus sees them."""
        return self._get_json(f"{self.prometheus_url}/api/v1/alerts")["alerts"]

    # ---- Alertmanager -------------------------------------------------------------------
    def write_alertmanager_config(self, text: str) -> Path:
        """Replace the Alertmanager config file; call reload_alertmanager() to apply."""
        self.alertmanager_config_file.write_text(text)
        return self.alertmanager_config_file

    def reload_alertmanager(self) -> int:
        """POST /-/reload; 200 on success, 500 on a bad config (the old one stays loaded)."""
        return self._http.post(f"{self.alertmanager_url}/-/reload", timeout=HTTP_TIMEOUT * 2).status_code

    def alerts(self, **params: Any) -> list[dict[str, Any]]:
        """GET Alertmanager /api/v2/alerts (params e.g. filter=['alertname="X"'], active=True)."""
        params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}
        return self._get_json(f"{self.alertmanager_url}/api/v2/alerts", params=params)

    def alertmanager_status(self) -> dict[str, Any]:
        """GET /api/v2/status; `["config"]["original"]` is the loaded config, re-marshalled."""
        return self._get_json(f"{self.alertmanager_url}/api/v2/status")

    def alertmanager_loaded_config(self) -> dict[str, Any]:
        """The loaded Alertmanager config, parsed from /api/v2/status (defaults filled in)."""
        return yaml.safe_load(self.alertmanager_status()["config"]["original"])

    def post_alerts(self, alerts: list[dict[str, Any]]) -> int:
        """POST straight to Alertmanager /api/v2/alerts ([{"labels": {...}, "annotations": {...}}])."""
        r = self._http.post(f"{self.alertmanager_url}/api/v2/alerts", json=alerts, timeout=HTTP_TIMEOUT)
        r.raise_for_status()
        return r.status_code

    # ---- Pushgateway --------------------------------------------------------------------
    def push(self, job: str, metrics_text: str, grouping: Mapping[str, str] | None = None,
             replace: bool = True) -> int:
        """Push text-format metrics to the group job/<job>/<k>/<v>...: PUT (replace the whole group)
        by default, POST (replace same-named metrics only) with replace=False. Raises on non-2xx."""
        url = f"{self.pushgateway_url}/metrics/{_path_label('job', job)}"
        for key, value in (grouping or {}).items():
            url += "/" + _path_label(key, str(value))
        if not metrics_text.endswith("\n"):
            metrics_text += "\n"
        r = self._http.request("PUT" if replace else "POST", url, data=metrics_text.encode(),
                               headers={"Content-Type": "text/plain; version=0.0.4"}, timeout=HTTP_TIMEOUT)
        if not r.ok:
            raise StackError(f"push to {url} failed: HTTP {r.status_code}: {r.text[:1000]}")
        return r.status_code

    def wipe_pushgateway(self) -> int:
        """PUT /api/v1/admin/wipe: delete every group (Prometheus drops the series on its next scrape)."""
        r = self._http.put(f"{self.pushgateway_url}/api/v1/admin/wipe", timeout=HTTP_TIMEOUT)
        r.raise_for_status()
        return r.status_code


def _path_label(name: str, value: str) -> str:
    """One grouping-key path pair; values with '/' (or empty) go base64url-encoded (`name@base64`)."""
    if value == "" or "/" in value:
        return f"{name}@base64/{base64.urlsafe_b64encode(value.encode()).decode() or '='}"
    return f"{name}/{quote(value, safe='')}"
