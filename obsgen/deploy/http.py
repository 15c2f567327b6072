"""The HTTP plumbing every live client shares (deploy backends, emit, drill, doctor).

requests with one overall deadline per request (connect, answer and body, across its retries), a cap
on the size of an answer, bounded retries for idempotent reads, one-line errors that name the backend
(server text in them escaped and cut), and a progress line on a terminal for waits longer than a
couple of seconds; `parallel` bounds how many requests are in flight.

Nothing ambient goes into a request: requests' `trust_env` is off, so ~/.netrc (or $NETRC) is never
read -- a spec's URL gets only the credentials obsgen itself chose to send (see obsgen.deploy.access). The
operator's proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) and CA bundle (REQUESTS_CA_BUNDLE,
CURL_CA_BUNDLE) are honoured explicitly instead.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterable, TypeVar

from obsgen.errors import ObsgenError
from obsgen.deploy.wire import HEAD, adapter, proxies, shown, socket_of, unreachable

TIMEOUT = 10.0  # seconds: one request's overall deadline -- connect, read and every retry together
READ_RETRIES = 3  # attempts for idempotent reads, all within that deadline; writes are never retried
READ_WORKERS = 16  # requests in flight per backend, for reads and for writes to independent objects
PROGRESS_AFTER = 2.0  # seconds a wait lasts before a terminal shows its progress
MAX_ANSWER = 32 << 20  # bytes: the largest answer body read; a larger one is refused, never half-read
CHUNK = 64 << 10  # bytes read at a time, the deadline checked between reads
T, R = TypeVar("T"), TypeVar("R")


class BackendError(ObsgenError):
    """A backend refused, failed or could not be reached; the message names which and why."""


class ConflictError(BackendError):
    """Someone changed an object since it was read (Grafana 412/409)."""


DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_http_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in DEFAULT_PORTS and bool(parts.hostname) and parts.port != 0
    except ValueError:
        return False


def parallel(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> list[R]:
    """fn over items with at most `workers` (default READ_WORKERS) in flight; results in input order.

    The first error (in input order) is raised once the calls in flight have ended; calls not yet
    started when an error is seen never start, so a failure costs at most one deadline, not one per item."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers or READ_WORKERS, len(items))) as pool:
        futures = [pool.submit(fn, item) for item in items]
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except BaseException:
                for other in futures:
                    other.cancel()
                raise
        return results


@dataclass(frozen=True)
class Deadline:
    """One overall deadline: `seconds` long, ending at `end` on the monotonic clock."""

    seconds: float
    end: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(seconds, time.monotonic() + seconds)

    def left(self) -> float:
        return max(self.end - time.monotonic(), 0.0)


class Progress:
    """The waits in progress, shown as one line on a terminal while the oldest is older than `after`.

    `waiting(what, seconds)` marks a wait; a ticker thread rewrites one line on the stream (stderr
    unless given) every `every` seconds -- `waiting for Grafana (dev) at http://… … 4 s of 10 s` --
    and clears it when the last wait ends. Nothing is written, and no thread runs, when the stream is
    not a terminal."""

    def __init__(self, stream: IO[str] | None = None, after: float = PROGRESS_AFTER, every: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream, self.after, self.every, self.clock = stream, after, every, clock
        self._lock = threading.Lock()
        self._waits: dict[int, tuple[str, float, float]] = {}  # id -> (what, started, seconds)
        self._next = 0
        self._shown = False
        self._thread: threading.Thread | None = None

    @property
    def stream(self) -> IO[str]:
        return self._stream or sys.stderr

    def _tty(self) -> bool:
        try:
            return bool(self.stream.isatty())
        except (AttributeError, ValueError):  # a closed or odd stream
            return False

    def begin(self, what: str, seconds: float) -> int:
        with self._lock:
            self._next += 1
            self._waits[self._next] = (what, self.clock(), seconds)
            if self._thread is None and self._tty():
                self._thread = threading.Thread(target=self._tick_until_idle, name="obsgen-progress", daemon=True)
                self._thread.start()
            return self._next

    def end(self, token: int) -> None:
        with self._lock:
            self._waits.pop(token, None)
            if not self._waits:
                self._clear()

    def waiting(self, what: str, seconds: float) -> "_Waiting":
        """A context manager marking one wait of at most `seconds` for `what`."""
        return _Waiting(self, what, seconds)

    def _line(self) -> str | None:
        """The progress line now: the oldest wait, once it is older than `after`; None when there is none."""
        if not self._waits:
            return None
        now = self.clock()
        what, started, seconds = min(self._waits.values(), key=lambda w: w[1])
        if now - started < self.after:
            return None
        others = len(self._waits) - 1
        more = f" (and {others} more request{'s' if others > 1 else ''})" if others else ""
        return f"waiting for {what} \u2026 {int(now - started)} s of {seconds:g} s{more}"

    def tick(self) -> None:
        """Show the line now (on a terminal only)."""
        with self._lock:
            line = self._line()
            if line is not None and self._tty():
                self._write(f"\r{line}\x1b[K")
                self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream, a broken pipe: progress is never worth an error
            pass

    def _tick_until_idle(self) -> None:
        while True:
            time.sleep(self.every)
            with self._lock:
                if not self._waits:
                    self._clear()
                    self._thread = None
                    return
            self.tick()


class _Waiting:
    def __init__(self, progress: Progress, what: str, seconds: float) -> None:
        self.progress, self.what, self.seconds = progress, what, seconds

    def __enter__(self) -> "_Waiting":
        self.token = self.progress.begin(self.what, self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.end(self.token)


PROGRESS = Progress()  # the process's progress line; tests replace it


def waiting(what: str, seconds: float) -> _Waiting:
    """Mark a wait of at most `seconds` for `what` (a backend, a condition) on the progress line."""
    return PROGRESS.waiting(what, seconds)


class Http:
    """requests with one deadline per request, retries with backoff for reads, and one-line errors naming
    the backend. `timeout` (default TIMEOUT) is each request's overall deadline."""

    def __init__(self, name: str, base_url: str, *, headers: dict[str, str] | None = None,
                 credential_hint: str = "", timeout: float | None = None):
        import requests

        if not _is_http_url(base_url):  # requests would fail later with MissingSchema / InvalidURL
            raise BackendError(f"{name}: {base_url!r} is not an http(s) URL; write it as http://host:port")
        self.name, self.base_url = name, base_url.rstrip("/")
        self.timeout = TIMEOUT if timeout is None else timeout
        self.credential_hint = credential_hint
        self.session = requests.Session()
        self.session.trust_env = False  # no ~/.netrc, no environment read behind obsgen's back ...
        self.session.proxies = proxies(self.base_url)  # ... but the operator's proxy and CA bundle, explicitly
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        watched = adapter()(pool_maxsize=READ_WORKERS)
        self.session.mount("http://", watched)
        self.session.mount("https://", watched)
        self.session.headers.update(headers or {})

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), deadline: Deadline | None = None,
                **kwargs: Any) -> Any:
        """One request, retried (reads only) within one overall deadline: `deadline` when the caller's wait
        spans several requests, else `timeout` seconds from now. The error says which deadline ran out."""
        deadline = deadline or Deadline.after(self.timeout)
        with waiting(f"{self.name} at {self.base_url}", deadline.seconds):
            return self._attempts(method, path, ok, deadline, kwargs)

    def _attempts(self, method: str, path: str, ok: tuple[int, ...], deadline: Deadline,
                  kwargs: dict[str, Any]) -> Any:
        import http.client

        import requests
        import urllib3
        from urllib3.util import Timeout

        url = self.base_url + path
        attempts = READ_RETRIES if method in ("GET", "HEAD") else 1
        for attempt in range(attempts):
            last = attempt + 1 >= attempts
            left = deadline.left()
            if left <= 0:
                raise self._late(method, path, deadline)
            try:
                # total: connect and the answer's head never outlast what is left of the deadline; the body
                # is streamed and read under the same deadline (`_read_body`)
                HEAD.end = deadline.end  # the answer's head, however slowly it comes, ends at the deadline
                try:
                    response = self.session.request(method, url, timeout=Timeout(total=left),
                                                    allow_redirects=False, stream=True, **kwargs)
                finally:
                    HEAD.end = None
                self._read_body(response, method, path, deadline)
            except _Overdue:
                raise self._late(method, path, deadline) from None
            except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
                    OSError) as exc:
                if deadline.left() <= 0 or isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError,
                                                            TimeoutError)):
                    raise self._late(method, path, deadline) from None
                if not last and self._backoff(attempt, deadline):
                    continue
                if isinstance(exc, requests.ConnectionError):  # refused, no such name, TLS to plain http
                    raise BackendError(f"cannot reach {self.name} at {self.base_url}"
                                       f"{unreachable(exc, self.base_url)}") from None
                # a body cut short, a bad encoding, a redirect loop
                raise BackendError(f"{self.name} at {self.base_url} broke off its answer to {method} {path} "
                                   f"({type(exc).__name__})") from None
            if response.status_code >= 500 and not last and self._backoff(attempt, deadline):
                continue
            return self._check(response, method, path, ok)
        raise AssertionError("unreachable")

    def _read_body(self, response: Any, method: str, path: str, deadline: Deadline) -> None:
        """Read the whole body of a streamed answer into `response` (so .json() and .text work), within
        the deadline and at most MAX_ANSWER bytes (after decompression); a server trickling its answer
        ends at the deadline, a huge one at the cap, each with its own error -- never "an empty body".
        Each read waits at most what is left of the deadline, and the deadline is checked between reads."""
        raw = response.raw
        try:
            length = int(response.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        try:
            if length > MAX_ANSWER:
                raise self._too_big(method, path)
            chunks, size = [], 0
            while True:
                left = deadline.left()
                if left <= 0:
                    raise _Overdue()
                sock = socket_of(raw)
                if sock is not None:
                    sock.settimeout(left)
                chunk = raw.read1(CHUNK, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_ANSWER:
                    raise self._too_big(method, path)
                chunks.append(chunk)
        except BaseException:
            response.close()  # the connection is not reused: what is left of the answer is never read
            raise
        response._content, response._content_consumed = b"".join(chunks), True
        raw.release_conn()

    def _too_big(self, method: str, path: str) -> BackendError:
        return BackendError(f"{self.name} at {self.base_url} answered {method} {path} with more than "
                            f"{_size(MAX_ANSWER)}; is {self.base_url} really this backend?")

    @staticmethod
    def _backoff(attempt: int, deadline: Deadline) -> bool:
        """Sleep before the next attempt when the deadline leaves room for it; False when it does not."""
        pause = 0.2 * 2 ** attempt
        if deadline.left() <= pause:
            return False
        time.sleep(pause)
        return True

    def _late(self, method: str, path: str, deadline: Deadline) -> BackendError:
        return BackendError(f"{self.name} at {self.base_url} did not answer {method} {path} within "
                            f"{deadline.seconds:g} s")

    def _check(self, response: Any, method: str, path: str, ok: tuple[int, ...]) -> Any:
        status = response.status_code
        if status in ok:
            return response
        if status == 401:
            raise BackendError(f"{self.name} rejected the credentials (HTTP 401){self.credential_hint}")
        if status == 403:
            raise BackendError(f"{self.name} denied {method} {path} (HTTP 403): the credentials lack "
                               f"permission{self.credential_hint}")
        raise BackendError(f"{self.name} answered HTTP {status} to {method} {path}: {message_of(response)}")


    # --- answers, checked for shape ----------------------------------------------------------------

    def json(self, response: Any, expect: type | tuple[type, ...] = dict) -> Any:
        """The JSON body of an answer, checked to be of type `expect`; else a BackendError naming the call."""
        try:
            body = response.json()
        except ValueError:
            raise self.malformed(response, f"something that is not JSON ({_snippet(response)})") from None
        return self.expect(response, body, expect)

    def yaml(self, response: Any, expect: type | tuple[type, ...] = dict, empty: Any = None) -> Any:
        """The YAML body of an answer (Mimir's APIs), checked like `json`; an empty body gives `empty`."""
        import yaml

        try:
            body = yaml.safe_load(response.text)
        except yaml.YAMLError:
            raise self.malformed(response, f"something that is not YAML ({_snippet(response)})") from None
        if body is None and empty is not None:
            return empty
        return self.expect(response, body, expect)

    def expect(self, response: Any, value: Any, expect: type | tuple[type, ...], what: str = "its body") -> Any:
        """`value` when it is of type `expect`; else a BackendError saying which part of which answer is off."""
        if isinstance(value, expect):
            return value
        wanted = " or ".join(_KIND.get(t, t.__name__) for t in (expect if isinstance(expect, tuple) else (expect,)))
        raise self.malformed(response, f"{what} as {_KIND.get(type(value), type(value).__name__)} where "
                                       f"{wanted} was expected")

    def malformed(self, response: Any, what: str) -> BackendError:
        request = getattr(response, "request", None)
        call = f"{request.method} {request.path_url}" if request is not None else "a request"
        return BackendError(f"{self.name} answered {call} (HTTP {response.status_code}) with {what}; "
                            f"is {self.base_url} really this backend?")


_KIND = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
         bool: "a boolean", type(None): "nothing"}


class _Overdue(Exception):
    """The deadline passed while an answer's body was still coming."""


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n % (1 << 20) else f"{n} bytes"


def _snippet(response: Any) -> str:
    text = (getattr(response, "text", "") or "").strip()
    return repr(text[:60] + ("…" if len(text) > 60 else "")) if text else "an empty body"


def message_of(response: Any) -> str:
    """What an error answer says: its JSON `message`, else its first line of text; escaped and cut."""
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("message"):
            return shown(str(body["message"]))
    except ValueError:
        pass
    text = [line for line in (response.text or "").strip().split("\n") if line.strip()]
    return shown(text[0].strip(), 200) if text else "(empty body)"
