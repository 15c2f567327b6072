"""The backend interface and the HTTP plumbing every client shares."""
from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Iterable, TypeVar

from obsgen.artifact import Artifact
from obsgen.errors import ObsgenError
from obsgen.model import Backend as BackendSpec
from obsgen.model import Environment
from obsgen.plan import Change, Obj

TIMEOUT = 10.0  # seconds, connect and read
READ_RETRIES = 3  # idempotent reads only; writes are never retried
READ_WORKERS = 16  # bounded parallel reads (one write per changed object stays sequential)
T, R = TypeVar("T"), TypeVar("R")


class BackendError(ObsgenError):
    """A backend refused, failed or could not be reached; the message names which and why."""


class ConflictError(BackendError):
    """Someone changed an object since it was read (Grafana 412/409)."""


class Backend(ABC):
    name: str

    @abstractmethod
    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        """The objects the build says should exist, normalised like `read`'s."""

    @abstractmethod
    def read(self, desired: list[Obj]) -> list[Obj]:
        """The live objects: every owned one, and any unowned one sharing a desired key."""

    @abstractmethod
    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        """Apply changes in order; returns those applied so far even when it raises (see `applied`)."""

    @abstractmethod
    def restore(self, applied: list[Change]) -> None:
        """Put back the live state captured before `applied` were made, in reverse order."""


def credential(spec: BackendSpec, env_name: str) -> str | None:
    """The token named by token_env or token_file; None when the spec names none."""
    if spec.token_env:
        value = os.environ.get(spec.token_env)
        if not value:
            raise BackendError(f"{spec.kind} ({env_name}): environment variable {spec.token_env} is not set")
        return value.strip()
    if spec.token_file:
        try:
            with open(spec.token_file, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise BackendError(f"{spec.kind} ({env_name}): cannot read token_file {spec.token_file}: "
                               f"{exc.strerror}") from None
    return None


def connect(env: Environment, kind: str, label: str, url: str | None, mode: str | None = None
            ) -> tuple[BackendSpec, "Http"]:
    """The spec of one backend of an environment and an authenticated Http client for it."""
    spec = env.backend(kind)
    if spec is None:
        raise BackendError(f"environment {env.name} has no {kind} backend in the spec")
    if mode is not None and spec.mode != mode:
        raise BackendError(f"{kind} ({env.name}): mode {spec.mode!r} is not supported by this client")
    token = credential(spec, env.name)
    ref = spec.token_env or spec.token_file
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if spec.tenant:
        headers["X-Scope-OrgID"] = spec.tenant
    http = Http(f"{label} ({env.name})", url or spec.url, credential_hint=f": check {ref}" if ref else "",
                headers=headers)
    return spec, http


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

        self.name, self.base_url, self.timeout = name, base_url.rstrip("/"), timeout
        self.credential_hint = credential_hint
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=READ_WORKERS)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(headers or {})
        self.writes = 0

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        import requests

        url = self.base_url + path
        attempts = READ_RETRIES if method in ("GET", "HEAD") else 1
        if method not in ("GET", "HEAD"):
            self.writes += 1
        for attempt in range(attempts):
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
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


def message_of(response: Any) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except ValueError:
        pass
    text = (response.text or "").strip().splitlines()
    return text[0][:200] if text else "(empty body)"
