"""Structural validation of a spec document against the packaged JSON Schema."""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from obsgen.errors import Problem
from obsgen.spec.bounds import shown
from obsgen.spec.source import Located
from obsgen.errors import did_you_mean

_DURATION_PATTERN = "^([0-9]+(ms|s|m|h|d|w|y))+$"


class _UrlMessage(str):
    """The message of a URL that is not http(s): with `write it as http://…` when only the scheme is missing
    (`url: grafana.example.com:3000`, a host and port written as they are said)."""

    def format(self, *args: object, **kwargs: object) -> str:
        value = str(kwargs.get("value", ""))
        message = super().format(*args, **kwargs)
        bare = value[1:-1] if len(value) > 2 and value[0] == value[-1] == "'" else ""  # shown's repr quotes
        if bare and "://" not in bare and "\\" not in bare and not any(c.isspace() for c in bare) \
                and not bare.endswith("\u2026"):
            return f"{message}: write it as http://{bare.lstrip(':/')}"
        return message


_FRIENDLY_PATTERNS = {  # {value} is the value as bounds.shown quotes it
    _DURATION_PATTERN: "not a duration: {value} (expected e.g. 30s, 5m, 1h, 28d)",
    "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$": "{value} is not a valid id (lower case letters, digits and '-', at most 63)",
    "^https?://": _UrlMessage("{value} is not an http(s) URL"),
    "^[A-Za-z_][A-Za-z0-9_]*$": "{value} is not a valid name (letters, digits and '_')",
}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(resources.files("obsgen.spec").joinpath("schema.json").read_text())


def validate(doc: Located) -> list[Problem]:
    validator = _validator_class()(schema())
    problems = []
    for err in validator.iter_errors(doc.data):
        path = tuple(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            for key in sorted(set(err.instance) - allowed):
                hint = ", ".join(sorted(allowed))
                problems.append(doc.problem(path + (key,), f"unknown key {shown(key)}{did_you_mean(str(key), allowed)} "
                                                           f"(allowed: {hint})", at_key=True))
            continue
        problems.append(doc.problem(path, _message(err)))
    return problems


@lru_cache(maxsize=1)
def _validator_class() -> Any:
    """Draft 7, except that a pattern ending in `$` must match up to the very end of the string.

    JSON Schema patterns are searched with Python's `re`, where `$` also matches before a trailing
    newline: `name: "dev\\n"` would pass `^[a-z0-9-]+$` and then break promtool. Here `$` means `\\Z`.
    """
    import jsonschema

    def pattern(validator: Any, value: str, instance: Any, _schema: Any) -> Any:
        if validator.is_type(instance, "string") and not _anchored(value).search(instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {value!r}")

    return jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": pattern})


@lru_cache(maxsize=None)
def _anchored(value: str) -> "re.Pattern[str]":
    if value.endswith("$") and not value.endswith("\\$"):
        value = value[:-1] + r"\Z"
    return re.compile(value)


def path_is_cadence(err: Any) -> bool:
    return bool(err.absolute_path) and err.absolute_path[-1] == "cadence"


def _message(err: Any) -> str:
    if err.validator == "pattern" and err.validator_value in _FRIENDLY_PATTERNS:
        return _FRIENDLY_PATTERNS[err.validator_value].format(value=shown(err.instance))
    if err.validator in ("maxProperties", "minProperties") and path_is_cadence(err):
        return "give one of `every` (a regular schedule) or `at_least_every` (irregular runs), not both or none"
    if err.validator == "enum":
        known = [str(v) for v in err.validator_value]
        hint = did_you_mean(err.instance, known) if isinstance(err.instance, str) else ""
        if hint:
            return f"{shown(err.instance)} is not allowed{hint} (one of: {', '.join(known)})"
        return f"{shown(err.instance)} is not one of: {', '.join(known)}"
    if err.validator == "const":
        return f"must be {err.validator_value!r}, not {shown(err.instance)}"
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return f"missing required key {missing!r}"
    if err.validator == "type":
        return f"expected {err.validator_value}, got {type(err.instance).__name__} {shown(err.instance)}"
    return err.message
