"""The HTTP plumbing every live client shares (deploy backends, emit, drill).

requests with timeouts, bounded retries for idempotent reads, and one-line errors that
name the backend; `parallel` bounds how many requests are in flight.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, TypeVar

from obsgen.errors import ObsgenError

TIMEOUT = 10.0  # seconds, connect and read
READ_RETRIES = 3  # idempotent reads only; writes are never retried
READ_WORKERS = 16  # requests in flight per backend, for reads and for writes to independent objects
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


def parallel(fn: Callable[[T], R], items: Iterable[T], workers: int = READ_WORKERS) -> list[R]:
    """fn over items with at most `workers` requests in flight; results in input order, first error raised."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


class Http:
    """requests with timeouts, retries with backoff for reads, and one-line errors naming the backend."""

    def __init__(self, name: str, base_url: str, *, headers: dict[str, str] | None = None,
                 credential_hint: str = "", timeout: float = TIMEOUT):
        import requests

        if not _is_http_url(base_url):  # requests would fail later with MissingSchema / InvalidURL
            raise BackendError(f"{name}: {base_url!r} is not an http(s) URL; write it as http://host:port")
        self.name, self.base_url, self.timeout = name, base_url.rstrip("/"), timeout
        self.credential_hint = credential_hint
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=READ_WORKERS)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(headers or {})

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        import requests

        url = self.base_url + path
        attempts = READ_RETRIES if method in ("GET", "HEAD") else 1
        for attempt in range(attempts):
            try:
                response = self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
            except requests.ConnectionError:
                if attempt + 1 < attempts:
                    time.sleep(0.2 * 2 ** attempt)
                    continue
                raise BackendError(f"cannot reach {self.name} at {self.base_url} (connection refused or "
                                   f"DNS failure)") from None
            except requests.Timeout:
                if attempt + 1 < attempts:
                    continue
                raise BackendError(f"{self.name} at {self.base_url} did not answer {method} {path} within "
                                   f"{self.timeout:g} s") from None
            except requests.RequestException as exc:  # a body cut short, a bad encoding, a redirect loop
                if attempt + 1 < attempts:
                    time.sleep(0.2 * 2 ** attempt)
                    continue
                raise BackendError(f"{self.name} at {self.base_url} broke off its answer to {method} {path} "
                                   f"({type(exc).__name__})") from None
            if response.status_code >= 500 and attempt + 1 < attempts:
                time.sleep(0.2 * 2 ** attempt)
                continue
            return self._check(response, method, path, ok)
        raise AssertionError("unreachable")

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


def _snippet(response: Any) -> str:
    text = (getattr(response, "text", "") or "").strip()
    return repr(text[:60] + ("…" if len(text) > 60 else "")) if text else "an empty body"


def message_of(response: Any) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except ValueError:
        pass
    text = (response.text or "").strip().splitlines()
    return text[0][:200] if text else "(empty body)"
