"""Structural validation of a spec document against the packaged JSON Schema."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from obsgen.errors import Problem
from obsgen.spec.source import Located

_DURATION_PATTERN = "^([0-9]+(ms|s|m|h|d|w|y))+$"
_FRIENDLY_PATTERNS = {
    _DURATION_PATTERN: "not a duration: {value!r} (expected e.g. 30s, 5m, 1h, 28d)",
    "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$": "{value!r} is not a valid id (lower case letters, digits and '-', at most 63)",
    "^https?://": "{value!r} is not an http(s) URL",
    "^[A-Za-z_][A-Za-z0-9_]*$": "{value!r} is not a valid name (letters, digits and '_')",
}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(resources.files("obsgen.spec").joinpath("schema.json").read_text())


def validate(doc: Located) -> list[Problem]:
    import jsonschema

    validator = jsonschema.Draft7Validator(schema())
    problems = []
    for err in validator.iter_errors(doc.data):
        path = tuple(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            for key in sorted(set(err.instance) - allowed):
                hint = ", ".join(sorted(allowed))
                problems.append(doc.problem(path + (key,), f"unknown key {key!r} (allowed: {hint})", at_key=True))
            continue
        problems.append(doc.problem(path, _message(err)))
    return problems


def _message(err: Any) -> str:
    if err.validator == "pattern" and err.validator_value in _FRIENDLY_PATTERNS:
        return _FRIENDLY_PATTERNS[err.validator_value].format(value=err.instance)
    if err.validator == "enum":
        return f"{err.instance!r} is not one of: {', '.join(map(str, err.validator_value))}"
    if err.validator == "const":
        return f"must be {err.validator_value!r}, not {err.instance!r}"
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return f"missing required key {missing!r}"
    if err.validator == "type":
        return f"expected {err.validator_value}, got {type(err.instance).__name__} {err.instance!r}"
    return err.message
