"""Publishing a run: a node-exporter textfile written atomically, or a Pushgateway group (prometheus_client's
protocol, sent through obsgen's own HTTP client: its timeouts and one-line errors).
"""
from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from obsgen.compile import conventions as c
from obsgen.compile import queries as q
from obsgen.run.emit.exposition import (COUNTED, LABEL_NAME, LABEL_RUN, Emitted, _text, place, registry, run_id,
                                    run_registry, run_when)
from obsgen.run.emit.report import Report
from obsgen.errors import ObsgenError
from obsgen.deploy.http import TIMEOUT, BackendError, Http
from obsgen.model import Model

DRILL_GROUPING = {q.DRILL_LABEL: "true"}
RUN_GROUP_KEEP = c.RUN_GROUP_KEEP
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


# --- publishing: node-exporter textfile collector -------------------------------------------------

def read_textfile(path: str) -> str | None:
    """The textfile's current exposition, or None when there is none yet."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ObsgenError(f"{path}: cannot read the previous metrics: "
                          f"{getattr(exc, 'strerror', None) or 'not UTF-8 text'}") from None


def check_textfile(path: str) -> None:
    """A path node-exporter's textfile collector reads: *.prom."""
    if Path(path).suffix != ".prom":
        raise ObsgenError(f"{path}: node-exporter's textfile collector reads only *.prom files")


def write_textfile(path: str, reg: Any) -> None:
    """Replace the textfile atomically with the registry's metrics (prometheus_client's write_to_textfile:
    a temporary file beside it, renamed over it): the collector reads the old file or the new one, never half."""
    from prometheus_client import write_to_textfile

    check_textfile(path)
    try:
        write_to_textfile(path, reg)
        os.chmod(path, 0o644)  # node-exporter may run as another user; the file was created under our umask
    except OSError as exc:
        raise ObsgenError(f"{path}: cannot write the metrics: {exc.strerror or exc}") from None


def emit_to_textfile(model: Model, env_name: str, report: Report, path: str, now: float | None = None,
                     extra_labels: Mapping[str, str] | None = None) -> Emitted:
    """Add this run to the textfile's metrics and write them back, unless the file has counted it already."""
    check_textfile(path)
    with _locked(path):  # two emits on one host read, add and write in turn: neither run is lost
        previous = read_textfile(path)
        status, last = place(model, env_name, report, previous)
        if status != COUNTED:
            return Emitted(previous or "", status, last)
        reg = registry(model, env_name, report, previous, now, extra_labels)
        write_textfile(path, reg)
    return Emitted(_text(reg), COUNTED, last)


class _locked:
    """An exclusive flock on `<path>.lock` (node-exporter reads only *.prom), held for a read-modify-write."""

    def __init__(self, path: str):
        self.path = path + ".lock"
        self.fd = -1

    def __enter__(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise ObsgenError(f"{self.path}: cannot lock the metrics file: {exc.strerror or exc}") from None

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


# --- publishing: Pushgateway ----------------------------------------------------------------------

def check_grouping(job: str, grouping: Mapping[str, str] | None = None) -> None:
    """A job and grouping labels a Pushgateway group may have (prometheus_client encodes the path)."""
    if not job:
        raise ObsgenError("the Pushgateway job name is empty")
    for name in sorted(grouping or {}):
        if not LABEL_NAME.fullmatch(name) or name.startswith("__") or name == "job":
            raise ObsgenError(f"grouping label {name!r}: not a label name a Pushgateway group may have")


def push(url: str, job: str, reg: Any, grouping: Mapping[str, str] | None = None) -> None:
    """PUT the registry's metrics as the whole group job/<job>/<grouping...> (replacing what it held)."""
    from prometheus_client import push_to_gateway

    check_grouping(job, grouping)
    handler = _handler(_pushgateway(url))
    push_to_gateway(url, job, reg, grouping_key={k: str(v) for k, v in (grouping or {}).items()},
                    timeout=TIMEOUT, handler=handler)


def delete_group(url: str, job: str, grouping: Mapping[str, str] | None = None) -> None:
    """DELETE the group (Prometheus drops its series at the next scrape); deleting none is not an error."""
    from prometheus_client import delete_from_gateway

    check_grouping(job, grouping)
    handler = _handler(_pushgateway(url))
    delete_from_gateway(url, job, grouping_key={k: str(v) for k, v in (grouping or {}).items()},
                        timeout=TIMEOUT, handler=handler)


def fetch_group(url: str, job: str, grouping: Mapping[str, str] | None = None,
                groups: list[Any] | None = None) -> str | None:
    """The group's current metrics as a text exposition (from GET /api/v1/metrics, or `groups` read from
    it already), None if no such group."""
    want = {k: str(v) for k, v in {"job": job, **(grouping or {})}.items() if str(v) != ""}
    for group in _groups(url) if groups is None else groups:
        labels = group.get("labels") if isinstance(group, dict) else None
        if isinstance(labels, dict) and {k: v for k, v in labels.items() if v != ""} == want:
            return _group_text(group)
    return None


def _groups(url: str) -> list[Any]:
    response = _pushgateway(url).request("GET", "/api/v1/metrics")
    try:
        groups = response.json()["data"]
        if not isinstance(groups, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BackendError(f"Pushgateway at {url}: GET /api/v1/metrics did not answer the JSON of "
                           f"Pushgateway 1.x") from None
    return groups


def _stale_run_groups(groups: list[Any], job: str, key: Mapping[str, str], keep: str, before: float) -> list[dict]:
    """Grouping keys of this job's and environment's run groups (`key` plus a run label) other than `keep`,
    pushed before `before`."""
    want = {"job": job, **{k: str(v) for k, v in key.items()}}
    stale = []
    for group in groups:
        labels = group.get("labels") if isinstance(group, dict) else None
        if not isinstance(labels, dict) or LABEL_RUN not in labels or labels[LABEL_RUN] == keep:
            continue
        if {k: v for k, v in labels.items() if k != LABEL_RUN and v != ""} != want:
            continue
        try:
            pushed = float(group["push_time_seconds"]["metrics"][0]["value"])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if pushed < before:
            stale.append({k: v for k, v in labels.items() if k != "job"})
    return stale


def emit_to_pushgateway(model: Model, env_name: str, report: Report, url: str, job: str | None = None,
                        grouping: Mapping[str, str] | None = None, now: float | None = None,
                        extra_labels: Mapping[str, str] | None = None, accumulate: bool = True) -> Emitted:
    """Push this run to the group job=<job, default the service name>, <env_label>=<env>, plus `grouping`,
    on top of what the group holds, unless the group has counted this run already or a newer one (`place`:
    then nothing is pushed). The run's own series go first to a group of their own (the same key plus
    run=<its time>), which no other emit rewrites: concurrent emits, a restarted Pushgateway or a restored
    older persistence file can neither lose nor invent a run, since Prometheus counts runs by their series.
    Run groups of this key pushed more than RUN_GROUP_KEEP seconds ago are deleted (best effort). A fire
    drill passes grouping=DRILL_GROUPING and accumulate=False: one group holds its run and steps, its
    per-step failure counter stays 0, and `delete_group` removes it afterwards."""
    env_label = model.metrics.env_label
    key = {env_label: env_name, **(grouping or {})}
    if key[env_label] != env_name:
        raise ObsgenError(f"grouping label {env_label}={key[env_label]!r} contradicts the environment "
                          f"{env_name!r}: the Pushgateway would relabel every series")
    job = job or model.service.name
    check_grouping(job, key)
    if not accumulate:
        reg = registry(model, env_name, report, None, now, extra_labels, count_step_failures=False)
        push(url, job, reg, key)
        return Emitted(_text(reg), COUNTED, None)
    groups = _groups(url)
    previous = fetch_group(url, job, key, groups)
    status, last = place(model, env_name, report, previous)
    if status != COUNTED:
        return Emitted(previous or "", status, last)
    run = run_id(run_when(report, now))
    push(url, job, run_registry(model, env_name, report, now, extra_labels), {**key, LABEL_RUN: run})
    reg = registry(model, env_name, report, previous, now, extra_labels, runs=False)
    push(url, job, reg, key)
    for stale in _stale_run_groups(groups, job, key, run, time.time() - RUN_GROUP_KEEP):
        try:
            delete_group(url, job, stale)
        except BackendError:
            break  # the next emit tries again; a run group left over costs nothing but memory
    return Emitted(_text(reg), COUNTED, last)


def _pushgateway(url: str) -> Http:
    return Http("Pushgateway", url)


def _handler(client: Http) -> Callable[..., Callable[[], None]]:
    """A prometheus_client push handler that sends through obsgen's HTTP client: its timeout, no redirects,
    and one-line errors naming the Pushgateway, the call and its answer."""

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                data: bytes) -> Callable[[], None]:
        if not url.startswith(client.base_url):
            raise BackendError(f"Pushgateway: prometheus_client built {url!r}, outside {client.base_url}")
        path = url[len(client.base_url):]

        def send() -> None:
            client.request(method, path, ok=(200, 202), data=data or None, headers=dict(headers))
        return send
    return handler


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    pairs = (f'{k}="{v.translate(_ESCAPES)}"' for k, v in sorted(labels.items()))
    return "{" + ",".join(pairs) + "}"


def _group_text(group: dict[str, Any]) -> str:
    """A group of Pushgateway's JSON API as text, for `_previous` (prometheus_client reads no Pushgateway)."""
    lines = []
    for name in sorted(group):
        family = group[name]
        if name in ("push_time_seconds", "push_failure_time_seconds") or not isinstance(family, dict) \
                or "type" not in family:
            continue
        lines.append(f"# TYPE {name} {str(family.get('type', 'untyped')).lower()}")
        for metric in family.get("metrics", []):
            labels = metric.get("labels", {})
            if "buckets" in metric:
                lines += [f"{name}_bucket{_labels({**labels, 'le': le})} {v}" for le, v in metric["buckets"].items()]
                lines += [f"{name}_{part}{_labels(labels)} {metric[part]}" for part in ("sum", "count")]
            elif "value" in metric:
                lines.append(f"{name}{_labels(labels)} {metric['value']}")
    return "\n".join(lines) + "\n"
