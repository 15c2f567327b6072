"""The shape an Alertmanager config must have before obsgen looks for its part in it.

A config comes from a file other teams edit, from Alertmanager's `/api/v2/status` or from Mimir's
config API. Alertmanager itself refuses a config whose `receivers` is a number or whose route is a
list, so such a shape is never a config obsgen should merge into: it is a broken file, or an answer
from something that is not Alertmanager. Checked here, once, it becomes one clear error naming where
it came from, instead of a TypeError deep in the merge ("internal error") -- and an answer that holds
no config at all is never read as an empty one.
"""
from __future__ import annotations

from typing import Any

MATCHER_LISTS = ("matchers", "source_matchers", "target_matchers")
MATCH_MAPS = ("match", "match_re", "source_match", "source_match_re", "target_match", "target_match_re")
LISTS = ("receivers", "inhibit_rules", "templates", "time_intervals", "mute_time_intervals")
MAX_DEPTH = 64  # nested routes; Alertmanager configs are a handful deep, a hostile one could be thousands

_KIND = {bool: "a boolean", dict: "a mapping", list: "a list", str: "a string", int: "a number",
         float: "a number", type(None): "empty"}


def kind(value: Any) -> str:
    for known, name in _KIND.items():
        if isinstance(value, known):
            return name
    return type(value).__name__


def problem(config: Any) -> str | None:
    """What makes `config` (a parsed document) no Alertmanager config obsgen can merge into; None when fine."""
    if not isinstance(config, dict):
        return f"it is {kind(config)}, not a mapping"
    for key in LISTS:
        value = config.get(key)
        if value is not None and not isinstance(value, list):
            return f"`{key}` is {kind(value)}, not a list"
    for index, receiver in enumerate(config.get("receivers") or ()):
        if not isinstance(receiver, dict):
            return f"receiver {index + 1} is {kind(receiver)}, not a mapping"
        if not isinstance(receiver.get("name"), str):
            return f"receiver {index + 1} has no name"
    for index, rule in enumerate(config.get("inhibit_rules") or ()):
        found = _matchers(rule, f"inhibit rule {index + 1}")
        if found:
            return found
    for index, template in enumerate(config.get("templates") or ()):
        if not isinstance(template, str):
            return f"template {index + 1} is {kind(template)}, not a string"
    route = config.get("route")
    return _route(route, "`route`", 0) if route is not None else None


def _route(route: Any, where: str, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"routes are nested more than {MAX_DEPTH} deep"
    found = _matchers(route, where)
    if found:
        return found
    children = route.get("routes")
    if children is None:
        return None
    if not isinstance(children, list):
        return f"the `routes` of {where} is {kind(children)}, not a list"
    for index, child in enumerate(children):
        found = _route(child, f"route {index + 1} under {where}" if depth else f"route {index + 1} under the root",
                       depth + 1)
        if found:
            return found
    return None


def _matchers(item: Any, where: str) -> str | None:
    """The matchers of a route or inhibit rule: lists of strings and mappings, as Alertmanager reads them."""
    if not isinstance(item, dict):
        return f"{where} is {kind(item)}, not a mapping"
    for key in MATCHER_LISTS:
        value = item.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"the `{key}` of {where} is {kind(value)}, not a list of strings"
    for key in MATCH_MAPS:
        value = item.get(key)
        if value is not None and not isinstance(value, dict):
            return f"the `{key}` of {where} is {kind(value)}, not a mapping"
    return None
