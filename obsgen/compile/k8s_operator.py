"""The Alertmanager configuration the Prometheus Operator builds from one AlertmanagerConfig.

On Kubernetes, obsgen's routing ships as an AlertmanagerConfig resource
(monitoring.coreos.com/v1alpha1) and the Operator, not obsgen, turns it into
Alertmanager configuration inside a root config that other teams own. To test
the routing as it will run, `merge` repeats that conversion offline, as the
Operator documents and implements it (pkg/alertmanager/amcfg.go, default
matcher strategy `OnNamespace`, Alertmanager >= 0.22):

- the resource's top route gets the matcher `namespace="<its namespace>"`
  appended and `continue: true`, and goes under the root route *before* the
  root's own routes (so every AlertmanagerConfig sees an alert first);
- every receiver name is prefixed `<namespace>/<name>/`, in the receivers
  list and wherever a route refers to one;
- matchers [{name, value, matchType}] become Alertmanager matcher strings
  (`name="value"`, with the deprecated `regex: true` read as `=~`);
- each inhibit rule gets the namespace matcher on its source and its target
  side (unless it already has it), so it only mutes alerts of that namespace;
- Secret key references {name, key} become the values `secrets` holds for
  them (tests pass placeholders: this module never reads a cluster).

Receivers convert field by field (camelCase to Alertmanager's snake_case,
PagerDuty links and images, key/value lists to maps, `urlSecret` to `url`).
What the conversion would need more than that for -- `httpConfig`, time
intervals -- is refused with a clear error rather than converted loosely.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Iterator, Mapping

from obsgen.errors import ObsgenError

NAMESPACE_LABEL = "namespace"
Secrets = Mapping[tuple[str, str], "str | None"]

_ROUTE_KEYS = {"receiver": "receiver", "groupBy": "group_by", "groupWait": "group_wait",
               "groupInterval": "group_interval", "repeatInterval": "repeat_interval", "continue": "continue",
               "matchers": "matchers", "routes": "routes"}
# receiver fields whose Alertmanager name is not their snake_case spelling, by receiver type
_RENAMED = {"urlSecret": "url", "pagerDutyLinkConfigs": "links", "pagerDutyImageConfigs": "images"}
_RENAMED_IN = {"discordConfigs": {"apiURL": "webhook_url"}}
_KEY_VALUE_LISTS = {"details", "customFields", "headers"}  # [{key, value}] in the resource, maps in Alertmanager
_UNSUPPORTED = {"httpConfig", "muteTimeIntervals", "activeTimeIntervals"}


def merge(root_config: Mapping[str, Any], amc: Mapping[str, Any], secrets: Secrets) -> dict[str, Any]:
    """`root_config` (left unchanged) with `amc` converted into it as the Operator does."""
    namespace, name = _identity(amc)
    spec = amc.get("spec") or {}
    where = f"AlertmanagerConfig {namespace}/{name}"
    unsupported = sorted(set(spec) & _UNSUPPORTED)
    if unsupported:
        raise ObsgenError(f"{where}: spec.{unsupported[0]} is not supported by obsgen's conversion")
    merged = copy.deepcopy(dict(root_config))
    if not isinstance(merged.get("route"), dict):
        raise ObsgenError("the root Alertmanager config has no route to put the AlertmanagerConfig under")
    ns_matcher = matcher({"name": NAMESPACE_LABEL, "value": namespace, "matchType": "="})
    for i, rule in enumerate(spec.get("inhibitRules") or []):
        merged.setdefault("inhibit_rules", []).append(
            _inhibit_rule(rule, ns_matcher, f"{where}: spec.inhibitRules[{i}]"))
    if spec.get("route"):
        top = _route(spec["route"], namespace, name, f"{where}: spec.route")
        top["matchers"] = [*top.get("matchers", []), ns_matcher]
        top["continue"] = True
        merged["route"]["routes"] = [top, *(merged["route"].get("routes") or [])]
        for i, receiver in enumerate(spec.get("receivers") or []):
            merged.setdefault("receivers", []).append(
                _receiver(receiver, namespace, name, secrets, f"{where}: spec.receivers[{i}]"))
    return merged


def receiver_name(amc: Mapping[str, Any], receiver: str) -> str:
    """The name the Operator gives the resource's receiver `receiver` in Alertmanager."""
    namespace, name = _identity(amc)
    return f"{namespace}/{name}/{receiver}"


def secret_refs(amc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (Secret name, key) the resource's receivers refer to, sorted, each once."""
    return sorted({ref for receiver in (amc.get("spec") or {}).get("receivers") or []
                   for ref in _refs(receiver)})


def placeholders(amc: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """A stand-in value for each Secret reference: a URL, which every secret field accepts (Slack's and
    webhooks' URLs must parse as one), naming the reference so a test can see which was used."""
    return {(secret, key): f"https://secret.invalid/{secret}/{key}" for secret, key in secret_refs(amc)}


def matcher(m: Mapping[str, Any]) -> str:
    """A resource matcher {name, value, matchType | regex} as the Operator writes it: name, operator, and the
    value in double quotes with backslash, quote and newline escaped (OpenMetrics escaping)."""
    op = m.get("matchType") or ("=~" if m.get("regex") else "=")
    value = str(m.get("value", "")).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'{m["name"]}{op}"{value}"'


def _identity(amc: Mapping[str, Any]) -> tuple[str, str]:
    meta = amc.get("metadata") or {}
    if amc.get("kind") != "AlertmanagerConfig" or not meta.get("name") or not meta.get("namespace"):
        raise ObsgenError("not an AlertmanagerConfig with a metadata.name and metadata.namespace")
    return str(meta["namespace"]), str(meta["name"])


def _route(route: Mapping[str, Any], namespace: str, name: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in route.items():
        if key not in _ROUTE_KEYS:
            raise ObsgenError(f"{where}: {key} is not supported by obsgen's conversion")
        if key == "receiver":
            if value:
                out["receiver"] = f"{namespace}/{name}/{value}"
        elif key == "matchers":
            if value:
                out["matchers"] = [matcher(m) for m in value]
        elif key == "routes":
            if value:
                out["routes"] = [_route(child, namespace, name, f"{where}.routes[{i}]")
                                 for i, child in enumerate(value)]
        elif key == "continue":
            if value:
                out["continue"] = True
        elif value not in (None, "", []):
            out[_ROUTE_KEYS[key]] = copy.deepcopy(value)
    return out


def _inhibit_rule(rule: Mapping[str, Any], ns_matcher: str, where: str) -> dict[str, Any]:
    unknown = set(rule) - {"sourceMatch", "targetMatch", "equal"}
    if unknown:
        raise ObsgenError(f"{where}: {sorted(unknown)[0]} is not supported by obsgen's conversion")
    out: dict[str, Any] = {}
    for side in ("source", "target"):
        matchers = [matcher(m) for m in rule.get(f"{side}Match") or []]
        if not any(_bare(m) == _bare(ns_matcher) for m in matchers):
            matchers.append(ns_matcher)
        out[f"{side}_matchers"] = matchers
    if rule.get("equal"):
        out["equal"] = list(rule["equal"])
    return out


def _bare(matcher_text: str) -> str:
    return matcher_text.replace(" ", "")  # the Operator compares matchers ignoring spaces


def _receiver(receiver: Mapping[str, Any], namespace: str, name: str, secrets: Secrets,
              where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f"{namespace}/{name}/{receiver['name']}"}
    for kind, configs in receiver.items():
        if kind == "name" or not configs:
            continue
        out[_snake(kind)] = [_fields(config, secrets, f"{where}.{kind}[{i}]", _RENAMED_IN.get(kind))
                             for i, config in enumerate(configs)]
    return out


def _fields(config: Mapping[str, Any], secrets: Secrets, where: str,
            renamed: Mapping[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in _UNSUPPORTED:
            raise ObsgenError(f"{where}: {key} is not supported by obsgen's conversion")
        target = (renamed or {}).get(key) or _RENAMED.get(key) or _snake(key)
        if _is_ref(value):
            out[target] = _secret(value, secrets, f"{where}.{key}")
        elif key in _KEY_VALUE_LISTS and isinstance(value, list):
            out[target] = {str(item["key"]): item.get("value", "") for item in value}
        elif key == "pagerDutyLinkConfigs":
            out[target] = [{("text" if k == "alt" else k): v for k, v in link.items()} for link in value]
        elif isinstance(value, dict):
            out[target] = _fields(value, secrets, f"{where}.{key}")
        elif isinstance(value, list):
            out[target] = [_fields(v, secrets, f"{where}.{key}[{i}]") if isinstance(v, dict) else v
                           for i, v in enumerate(value)]
        else:
            out[target] = value
    return out


def _is_ref(value: Any) -> bool:
    """A Secret key reference: {name, key} (and perhaps `optional`), nothing else."""
    return isinstance(value, dict) and {"name", "key"} <= set(value) <= {"name", "key", "optional"}


def _secret(ref: Mapping[str, Any], secrets: Secrets, where: str) -> str:
    value = secrets.get((str(ref["name"]), str(ref["key"])))
    if value is None:
        raise ObsgenError(f"{where}: Secret {ref['name']!r} has no key {ref['key']!r}")
    return value


def _refs(value: Any) -> Iterator[tuple[str, str]]:
    if _is_ref(value):
        yield str(value["name"]), str(value["key"])
    elif isinstance(value, dict):
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _snake(camel: str) -> str:
    """apiURL -> api_url, sendResolved -> send_resolved, callbackId -> callback_id, tokenID -> token_id."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", camel)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", spaced).lower()
