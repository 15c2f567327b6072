"""The drill's reads of Alertmanager (or Mimir's tenant Alertmanager): alert groups, alerts, the config it
runs, and its notification counters."""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from obsgen.deploy.access import connect
from obsgen.deploy.http import BackendError, Http
from obsgen.model import Environment

MIMIR_PREFIX = "/alertmanager"  # Mimir's -http.alertmanager-http-prefix (its default)
SENT, FAILED = "alertmanager_notifications_total", "alertmanager_notifications_failed_total"
Key = tuple[str | None, str]  # (receiver, or None when the counters are per integration only; integration)


@dataclass
class Am:
    http: Http
    prefix: str  # "" for an Alertmanager, MIMIR_PREFIX for Mimir's
    mimir: bool
    tenant: str

_SAMPLE = re.compile(r"^(\w+)\{(.*)\}\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def notification_counts(text: str) -> dict[Key, list[float]]:
    """[sent, failed] notifications by (receiver, integration) from Alertmanager's /metrics: receiver is
    None unless the counters carry `receiver_name` (0.26+ with --enable-feature=receiver-name-in-metrics).
    Failures of all reasons are added up."""
    counts: dict[Key, list[float]] = {}
    for line in text.splitlines():
        if not line.startswith((SENT + "{", FAILED + "{")):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(2)))
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        key = (labels.get("receiver_name"), labels.get("integration", ""))
        counts.setdefault(key, [0.0, 0.0])[match.group(1) == FAILED] += value
    return counts


def read_notifiers(am: Am) -> dict[str, Counter[str]] | None:
    """Each receiver's notifiers by integration (`pagerduty_configs` of two -> pagerduty: 2) in the config
    Alertmanager runs (/api/v2/status); None when it cannot be read (the drill then assumes every other
    group shares the drill's notifiers)."""
    import yaml

    try:
        status = am.http.json(am.http.request("GET", f"{am.prefix}/api/v2/status"))
        config = yaml.safe_load(str((status.get("config") or {}).get("original") or ""))
    except (BackendError, yaml.YAMLError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("receivers"), list):
        return None
    out: dict[str, Counter[str]] = {}
    for receiver in config["receivers"]:
        if isinstance(receiver, dict) and "name" in receiver:
            out[str(receiver["name"])] = Counter({key.removesuffix("_configs"): len(value)
                                                  for key, value in receiver.items()
                                                  if key.endswith("_configs") and isinstance(value, list) and value})
    return out


def open_alertmanager(env: Environment, url: str | None) -> Am:
    """The environment's Alertmanager; for Mimir, `url` (like the spec's) is Mimir's base URL, as for diff
    and apply, and the tenant's Alertmanager API is under MIMIR_PREFIX."""
    url = url or os.environ.get("OBSGEN_ALERTMANAGER_URL")
    spec, http = connect(env, "alertmanager", "Alertmanager", url)
    mimir = spec.mode == "mimir"
    return Am(http, MIMIR_PREFIX if mimir else "", mimir, (spec.tenant or "") if mimir else "")


def read_groups(am: Am) -> list[dict[str, Any]]:
    response = am.http.request("GET", f"{am.prefix}/api/v2/alerts/groups")
    groups = am.http.json(response, list)
    return [g for g in groups if isinstance(g, dict) and isinstance(g.get("labels"), dict)
            and isinstance(g.get("alerts"), list)
            and all(isinstance(a, dict) and isinstance(a.get("labels"), dict) for a in g["alerts"])]


def read_alerts(am: Am, labels: dict[str, str]) -> list[dict[str, Any]]:
    filters = [f'{k}="{v}"' for k, v in sorted(labels.items())]
    response = am.http.request("GET", f"{am.prefix}/api/v2/alerts", params={"filter": filters})
    alerts = am.http.json(response, list)
    return [a for a in alerts if isinstance(a, dict) and isinstance(a.get("labels"), dict)]


def step_names(alerts: list[dict[str, Any]]) -> str:
    return ", ".join(sorted(str(a["labels"].get("step_id")) for a in alerts))
