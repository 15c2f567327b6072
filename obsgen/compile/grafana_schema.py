"""Bring grafanalib's dashboard JSON up to the current Grafana dashboard model.

grafanalib 0.7 writes schemaVersion 12: datasources as plain strings, legacy
keys (rows, style, hideControls, span, ...), gauge options inside fieldConfig
and threshold steps carrying "null" strings. `modernise` maps that onto the
model checked by obsgen/schemas/grafana/dashboard.jsonschema.json.

Pure functions over plain JSON values: each builds a new value and never
mutates its input. Keys the current model does not know are dropped.
"""
from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 39

_DASHBOARD_KEYS = (
    "uid", "title", "description", "tags", "timezone", "editable", "graphTooltip",
    "time", "refresh", "weekStart", "fiscalYearStartMonth", "liveNow",
)  # dropped: id, version, gnetId, __inputs, rows, style, hideControls, sharedCrosshair
_PANEL_KEYS = (
    "type", "id", "title", "description", "transparent", "gridPos", "links", "repeat",
    "maxPerRow", "maxDataPoints", "transformations", "interval", "timeFrom", "timeShift",
    "hideTimeOverride", "cacheTimeout", "options",
)  # dropped: editable, error, height, span, minSpan, and the table's columns, fontSize, color
_FIELD_KEYS = (
    "displayName", "description", "unit", "decimals", "min", "max", "mappings",
    "thresholds", "color", "links", "noValue", "custom",
)
_TARGET_KEYS = ("expr", "refId", "legendFormat", "instant", "format", "interval", "hide")
_VARIABLE_KEYS = (
    "type", "name", "label", "description", "hide", "skipUrlSync", "query", "datasource",
    "multi", "includeAll", "allValue", "options", "refresh", "sort", "regex",
)
_INTERVAL_KEYS = ("auto", "auto_min", "auto_count")
_ANNOTATION_KEYS = (
    "name", "datasource", "enable", "hide", "iconColor", "target", "type", "builtIn",
    "expr", "titleFormat", "textFormat", "tagKeys", "step", "useValueForTime",
)
_LINK_DEFAULTS: dict[str, Any] = {
    "title": "", "type": "link", "icon": "external link", "tooltip": "", "tags": [],
    "asDropdown": False, "targetBlank": False, "includeVars": False, "keepTime": False,
}


def modernise(raw: dict[str, Any], datasource_type: str = "prometheus") -> dict[str, Any]:
    """The current-model form of grafanalib's `to_json_data()` output (decoded to plain JSON).

    String datasources become `{"type": datasource_type, "uid": <string>}`.
    """
    out = pick(raw, _DASHBOARD_KEYS)
    out["schemaVersion"] = SCHEMA_VERSION
    out["panels"] = [modernise_panel(p, datasource_type) for p in raw.get("panels") or []]
    out["templating"] = {
        "list": [modernise_variable(v, datasource_type) for v in (raw.get("templating") or {}).get("list", [])]
    }
    out["annotations"] = {
        "list": [modernise_annotation(a, datasource_type) for a in (raw.get("annotations") or {}).get("list", [])]
    }
    out["links"] = [modernise_link(link) for link in raw.get("links") or []]
    if raw.get("timepicker"):
        out["timepicker"] = pick(raw["timepicker"], ("hidden", "refresh_intervals", "nowDelay"))
    return out


def pick(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The entries of `obj` named in `keys` whose value is not None."""
    return {k: obj[k] for k in keys if obj.get(k) is not None}


def datasource_ref(value: Any, datasource_type: str) -> dict[str, str] | None:
    """A datasource reference object from grafanalib's string (a name or a ${variable})."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return {"type": datasource_type, "uid": value}
    return pick(value, ("type", "uid"))


def modernise_panel(raw: dict[str, Any], datasource_type: str) -> dict[str, Any]:
    if raw.get("type") in ("row", "graph", "singlestat", "bargauge"):
        raise ValueError(f"panel type {raw.get('type')!r} has no current-model mapping here")
    panel = pick(raw, _PANEL_KEYS)
    if "repeat" not in panel:
        panel.pop("maxPerRow", None)
    else:
        panel["repeatDirection"] = raw.get("repeatDirection") or "h"
    ds = datasource_ref(raw.get("datasource"), datasource_type)
    if ds:
        panel["datasource"] = ds
    panel["targets"] = [modernise_target(t, ds, datasource_type) for t in raw.get("targets") or []]
    field_config = raw.get("fieldConfig") or {}
    defaults = dict(field_config.get("defaults") or {})
    if raw.get("type") == "gauge":  # grafanalib puts the gauge's options into fieldConfig
        panel["options"] = {
            "orientation": "auto",
            "reduceOptions": {"calcs": defaults.get("calcs") or ["lastNotNull"], "fields": "", "values": bool(defaults.get("values"))},
            "showThresholdLabels": bool(field_config.get("showThresholdLabels")),
            "showThresholdMarkers": field_config.get("showThresholdMarkers", True),
        }
        if defaults.get("title"):
            defaults["displayName"] = defaults["title"]
    if raw.get("type") == "table" and raw.get("mappings"):  # grafanalib puts them at the top
        defaults["mappings"] = raw["mappings"]
    panel["fieldConfig"] = {
        "defaults": modernise_field_config(defaults),
        "overrides": list(field_config.get("overrides") or []),
    }
    return panel


def modernise_target(raw: dict[str, Any], panel_ds: dict[str, str] | None, datasource_type: str) -> dict[str, Any]:
    """A Prometheus query: no legacy query/target/metric/step/intervalFactor keys."""
    target = {k: v for k, v in pick(raw, _TARGET_KEYS).items() if v != ""}
    if not target.get("hide"):
        target.pop("hide", None)
    ds = datasource_ref(raw.get("datasource"), datasource_type) or panel_ds
    if ds:
        target["datasource"] = ds
    target["instant"] = bool(raw.get("instant"))
    target["range"] = not target["instant"]
    target["editorMode"] = "code"
    return target


def modernise_field_config(defaults: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in pick(defaults, _FIELD_KEYS).items() if v != ""}
    if isinstance(out.get("custom"), dict):
        out["custom"] = {k: v for k, v in out["custom"].items() if v is not None}
    if not out.get("mappings"):
        out.pop("mappings", None)
    else:
        out["mappings"] = [modernise_mapping(m) for m in out["mappings"]]
    steps = (out.get("thresholds") or {}).get("steps") if isinstance(out.get("thresholds"), dict) else None
    if isinstance(steps, list) and steps:
        out["thresholds"] = {
            "mode": out["thresholds"].get("mode") or "absolute",
            "steps": [modernise_threshold(s) for s in steps],
        }
    else:  # grafanalib writes "" or [] when there are none; Grafana applies its default
        out.pop("thresholds", None)
    return out


def modernise_threshold(step: dict[str, Any]) -> dict[str, Any]:
    """grafanalib writes the base step's value as the string "null"."""
    value = step.get("value")
    return {"color": step["color"], "value": None if value in (None, "null") or step.get("index") == 0 else value}


def modernise_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
    """Current value mappings pass through without their null entries; legacy (numeric type) ones cannot."""
    kind = mapping.get("type")
    options = mapping.get("options") or {}
    if kind == "value":
        return {"type": "value", "options": {k: pick(v, ("text", "color", "icon", "index")) for k, v in options.items()}}
    if kind == "range":
        result = pick(options.get("result") or {}, ("text", "color", "icon", "index"))
        return {"type": "range", "options": {"from": options.get("from"), "to": options.get("to"), "result": result}}
    if kind in ("regex", "special"):
        return {"type": kind, "options": dict(options)}
    raise ValueError(f"legacy value mapping {mapping!r} is not supported; use StatValueMappings/StatRangeMappings")


def modernise_variable(raw: dict[str, Any], datasource_type: str) -> dict[str, Any]:
    keys = _VARIABLE_KEYS + (_INTERVAL_KEYS if raw.get("type") == "interval" else ())
    variable = pick(raw, keys)
    _set_datasource(variable, datasource_type)
    variable["options"] = [pick(o, ("selected", "text", "value")) for o in raw.get("options") or []]
    current = raw.get("current") or {}
    if current.get("text") is not None and current.get("value") is not None:
        variable["current"] = pick(current, ("selected", "text", "value"))
    return variable


def modernise_annotation(raw: dict[str, Any], datasource_type: str) -> dict[str, Any]:
    annotation = pick(raw, _ANNOTATION_KEYS)
    annotation.setdefault("enable", True)
    annotation.setdefault("iconColor", "rgba(0, 211, 255, 1)")
    _set_datasource(annotation, datasource_type)
    return annotation


def _set_datasource(obj: dict[str, Any], datasource_type: str) -> None:
    """Replace obj's datasource, on a dict this module has just built, by its reference object."""
    ref = datasource_ref(obj.pop("datasource", None), datasource_type)
    if ref:
        obj["datasource"] = ref


def modernise_link(raw: dict[str, Any]) -> dict[str, Any]:
    """Dashboard links need every field in the current model; ExternalLink omits most."""
    link = {**_LINK_DEFAULTS, **pick(raw, tuple(_LINK_DEFAULTS) + ("url",))}
    if link["type"] != "link":
        link.pop("url", None)
    return link
