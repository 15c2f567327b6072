"""OpenSLO v1: one multi-document YAML file per SLO and environment.

Each file holds, in this order: the `SLO` (with its SLI inline as `indicator`),
then for every burn window of `conventions.BURN_WINDOWS` an `AlertPolicy`
followed by its `AlertCondition`, then the `AlertNotificationTarget`s of the
page and ticket channels.

The OpenSLO v1 schema allows exactly one condition per AlertPolicy
(`conditions: maxItems: 1`), so the two page windows and the two ticket
windows become four policies, each labelled `slo_alert: page|ticket`.

Every `metadata.name` is an RFC 1123 label (lower case, at most 63
characters) prefixed with the environment and the SLO id, unique across all
documents of one environment.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from fractions import Fraction
from typing import Any

from obsgen.compile import conventions as c
from obsgen.model import durations
from obsgen.compile import queries
from obsgen.model.artifact import Artifact
from obsgen.model import SLO, Environment, Model
from obsgen.compile.render import to_yaml

API_VERSION = "openslo/v1"
MAX_NAME = 63
MAX_DESCRIPTION = 1050  # parts/description.schema.json
BUDGETING_METHOD = "Occurrences"
METRIC_SOURCE = "Prometheus"

_RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION = re.compile(r"^[1-9][0-9]*[mhdwMQY]$")
_LABEL_VALUE_BAD = re.compile(r"[^a-zA-Z0-9._-]+")


# --- naming -----------------------------------------------------------------


def is_rfc1123_label(name: str) -> bool:
    """True if `name` is a DNS label: lower-case alphanumerics and '-', at most 63 characters."""
    return len(name) <= MAX_NAME and bool(_RFC1123_LABEL.match(name))


def shorten(name: str, key: str = "") -> str:
    """`name` cut to 63 characters with an 8-hex digest of `key` (default: the name) at the end."""
    digest = hashlib.sha256((key or name).encode()).hexdigest()[:8]
    return name[: MAX_NAME - len(digest) - 1].rstrip("-") + "-" + digest


def resource_name(*parts: str) -> str:
    """An RFC 1123 label from name parts: slugged, joined by '-', hash-shortened past 63 characters."""
    name = "-".join(p for p in (c.slug(part) for part in parts) if p)
    if not name:
        raise ValueError(f"no name can be made from {parts!r}")
    return name if len(name) <= MAX_NAME else shorten(name)


def policy_key(slo: SLO, severity: str, long: str) -> tuple[str, ...]:
    return ("AlertPolicy", slo.id, severity, long)


def condition_key(slo: SLO, severity: str, long: str) -> tuple[str, ...]:
    return ("AlertCondition", slo.id, severity, long)


def target_key(slo: SLO, channel: str) -> tuple[str, ...]:
    return ("AlertNotificationTarget", slo.id, channel)


def slo_key(slo: SLO) -> tuple[str, ...]:
    return ("SLO", slo.id)


def sli_key(slo: SLO) -> tuple[str, ...]:
    return ("SLI", slo.id)


def alert_channels(model: Model) -> tuple[str, ...]:
    """The page and ticket channels, once each (they may be the same channel)."""
    a = model.slo_alerting
    return tuple(dict.fromkeys((a.page_channel, a.ticket_channel)))


def resource_names(model: Model, env: Environment) -> dict[tuple[str, ...], str]:
    """The metadata.name of every OpenSLO document of `env`, by (kind, slo id, ...) key.

    Names read `<env>-<slo>-<role>`. Should two keys still produce the same
    name (say SLOs `a` and `a-sli`, or ids that differ only in case), every
    one of them gets a digest of its key appended, so names stay unique.
    """
    candidates: dict[tuple[str, ...], str] = {}
    for slo in model.slos:
        candidates[slo_key(slo)] = resource_name(env.name, slo.id)
        candidates[sli_key(slo)] = resource_name(env.name, slo.id, "sli")
        for severity, long, short, _share in c.BURN_WINDOWS:
            candidates[policy_key(slo, severity, long)] = resource_name(env.name, slo.id, severity, long)
            candidates[condition_key(slo, severity, long)] = resource_name(env.name, slo.id, "burn", long, short)
        for channel in alert_channels(model):
            candidates[target_key(slo, channel)] = resource_name(env.name, slo.id, channel)
    counts = Counter(candidates.values())
    names = {
        key: name if counts[name] == 1 else shorten(name, "\0".join((env.name, *key)))
        for key, name in candidates.items()
    }
    if len(set(names.values())) != len(names):  # a digest collision: never seen, but never silent
        raise ValueError(f"OpenSLO names of environment {env.name!r} are not unique")
    return names


# --- values -----------------------------------------------------------------


def openslo_duration(text: str) -> str:
    """A duration as OpenSLO's shorthand (`^[1-9][0-9]*[mhdwMQY]$`): "28d" stays, "1h30m" -> "90m".

    Raises ValueError for durations that are not a whole number of minutes.
    """
    if _DURATION.match(text):
        return text  # m, h, d, w mean the same in obsgen and OpenSLO
    total = int(durations.seconds(text))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total > 0 and total % size == 0:
            return f"{total // size}{unit}"
    raise ValueError(f"duration {text!r} cannot be written in OpenSLO (whole minutes, hours or days)")


def label_value(text: str) -> str:
    """`text` made a valid OpenSLO label value (at most 63 of [a-zA-Z0-9._-], alphanumeric first); "" if none."""
    value = _LABEL_VALUE_BAD.sub("-", text).strip("._-")
    return value[:MAX_NAME].rstrip("._-")


def description(*sentences: str) -> str:
    text = " ".join(s.strip() for s in sentences if s and s.strip())
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1].rstrip() + "…"


def percent(value: Fraction) -> str:
    text = c.fmt_number(value * 100)
    return f"{text}%" if len(text) <= 8 else f"{float(value * 100):.4g}%"


# --- documents --------------------------------------------------------------


def _metadata(name: str, labels: dict[str, str], display_name: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    clean = {k: v for k, v in ((k, label_value(v)) for k, v in labels.items()) if v}
    if clean:
        meta["labels"] = clean
    if display_name:
        meta["displayName"] = display_name
    return meta


def _document(kind: str, metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def _metric(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": METRIC_SOURCE, "spec": {"query": query}}}


def _indicator(model: Model, env: Environment, slo: SLO, name: str, labels: dict[str, str]) -> dict[str, Any]:
    kind, events, total, counter = queries.sli_good_total(model, env, slo)  # kind: good | bad
    return {
        "metadata": _metadata(name, labels),
        "spec": {"ratioMetric": {"counter": counter, kind: _metric(events), "total": _metric(total)}},
    }


def slo_documents(model: Model, env: Environment, slo: SLO, names: dict[tuple[str, ...], str]) -> list[dict[str, Any]]:
    """The OpenSLO documents of one SLO in one environment, in file order."""
    labels = {
        c.LABEL_SERVICE: model.service.name,
        "env": env.name,
        "owner": model.service.owner,
        c.LABEL_SLO: slo.id,
    }
    period = openslo_duration(slo.period)
    runbook = model.service.runbook_url(slo.runbook)
    # names and order: the workbook's; windows and thresholds: fitted to the cadence; no page unless it pages
    pairs = [(w, used) for w, used in zip(c.BURN_WINDOWS, c.burn_windows(slo, env))
             if c.burns(slo, env) and (slo.page or w[0] != "page")]
    slo_doc = _document(
        "SLO",
        _metadata(names[slo_key(slo)], labels, f"{model.service.name} {slo.id} ({env.name})"),
        {
            "service": c.slug(model.service.name),
            "indicator": _indicator(model, env, slo, names[sli_key(slo)], labels),
            "timeWindow": [{"duration": period, "isRolling": True}],
            "budgetingMethod": BUDGETING_METHOD,
            "objectives": [{"displayName": f"{percent(slo.objective)} over {period}", "target": float(slo.objective)}],
            "alertPolicies": [names[policy_key(slo, sev, long)] for (sev, long, _s, _b), _u in pairs],
        },
    )
    if slo.description.strip():
        slo_doc["spec"]["description"] = description(slo.description)
    docs = [slo_doc]
    channels = {"page": model.slo_alerting.page_channel, "ticket": model.slo_alerting.ticket_channel}
    for (severity, long, _short, _share), used in pairs:
        factor, share = used.factor, used.share
        alert_labels = {**labels, c.LABEL_SLO_ALERT: severity}
        summary = (
            f"The {slo.id} SLO ({percent(slo.objective)} over {period}) burns its error budget at "
            f"{float(factor):.4g} times the sustainable rate or faster over both {used.long} and {used.short} "
            f"({percent(share)} of the budget in {used.long})."
        )
        if used.changed:
            long0, short0, share0 = used.workbook
            summary += (f" Fitted to runs {env.cadence.describe()} from the workbook's {long0} and {short0} "
                        f"({percent(share0)}).")
        docs.append(
            _document(
                "AlertPolicy",
                _metadata(names[policy_key(slo, severity, long)], alert_labels),
                {
                    "description": description(summary, slo.remediation, f"Runbook: {runbook}"),
                    "alertWhenBreaching": True,
                    "alertWhenResolved": True,
                    "alertWhenNoData": False,
                    "conditions": [{"conditionRef": names[condition_key(slo, severity, long)]}],
                    "notificationTargets": [{"targetRef": names[target_key(slo, channels[severity])]}],
                },
            )
        )
        docs.append(
            _document(
                "AlertCondition",
                _metadata(names[condition_key(slo, severity, long)], alert_labels),
                {
                    "description": description(summary),
                    "severity": severity,
                    "condition": {
                        "kind": "burnrate",
                        "op": "gte",
                        "threshold": float(factor),
                        "lookbackWindow": openslo_duration(used.long),
                        "alertAfter": openslo_duration(used.short),
                    },
                },
            )
        )
    for channel_id in dict.fromkeys(channels[severity] for (severity, _l, _s, _b), _u in pairs):
        channel = model.channel(channel_id)
        try:
            where = env.target(channel_id).slack_channel
        except KeyError:
            where = ""
        spec = {"target": channel.type}
        text = description(channel.description, f"Slack channel {where}." if where else "")
        if text:
            spec["description"] = text
        docs.append(
            _document(
                "AlertNotificationTarget",
                _metadata(names[target_key(slo, channel_id)], labels, channel_id),
                spec,
            )
        )
    return docs


def slo_path(env: Environment, slo: SLO) -> str:
    return f"{c.env_dir(env)}/slo/{slo.id}.yaml"


def compile_openslo(model: Model, env: Environment) -> list[Artifact]:
    """One OpenSLO v1 multi-document YAML file per SLO of `model`, for `env`."""
    names = resource_names(model, env)
    return [
        Artifact(slo_path(env, slo), to_yaml(slo_documents(model, env, slo, names), model.source, documents=True))
        for slo in model.slos
    ]
