"""Validate OpenSLO v1 documents against the JSON Schema packaged with obsgen.

The schema (obsgen/schemas/openslo/v1/, see its NOTICE) refers to its parts by
absolute `https://openslo.com/schemas/v1/...` URLs; a `referencing.Registry`
maps each of them to the packaged file, so validation never touches the
network. jsonschema and referencing are imported on first use only.
"""
from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

ROOT_ID = "https://openslo.com/schemas/v1/openslo.schema.json"
PACKAGED = ("schemas", "openslo", "v1")


def _schema_files(directory: Any) -> Iterator[Any]:
    """Every *.json under `directory` (a Path or an importlib Traversable), sorted by name."""
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _schema_files(entry)
        elif entry.name.endswith(".json"):
            yield entry


@functools.lru_cache(maxsize=4)
def _validator(schema_dir: str | None) -> Any:
    from jsonschema import Draft7Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT7

    directory: Any = Path(schema_dir) if schema_dir else resources.files("obsgen").joinpath(*PACKAGED)
    registry: Registry = Registry()
    for entry in _schema_files(directory):
        contents = json.loads(entry.read_text(encoding="utf-8"))
        registry = registry.with_resource(contents["$id"], DRAFT7.create_resource(contents))
    registry = registry.crawl()
    root = registry.contents(ROOT_ID)
    return Draft7Validator(root, registry=registry)


def _leaves(error: Any) -> list[Any]:
    """The specific causes of an error.

    A oneOf/anyOf error on its own only says "not valid under any of the given
    schemas", and the whole document is a oneOf over kinds. Report the errors of
    the branch that fits best instead: one whose `const` discriminators (kind)
    match, with the fewest errors. If no branch's discriminator matches, the
    error itself is the cause (e.g. an unknown kind, reported by its enum too).
    """
    if not error.context:
        return [error]
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branch = sub.relative_schema_path[0] if sub.relative_schema_path else None
        branches.setdefault(branch, []).extend(_leaves(sub))
    fitting = [leaves for leaves in branches.values() if not any(e.validator == "const" for e in leaves)]
    if not fitting:
        return [error]
    return min(fitting, key=len)


def _message(error: Any) -> str:
    """jsonschema's message, with the combinators that repeat the whole instance said briefly."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "oneOf" and not error.context:
        names = [", ".join(alt.get("required", ())) for alt in schema.get("oneOf", ()) if isinstance(alt, dict)]
        if names and all(names):
            return "must set exactly one of: " + " | ".join(names)
    if error.validator == "not":
        required = error.validator_value.get("required") if isinstance(error.validator_value, dict) else None
        if required:
            return "must not set all of: " + ", ".join(required)
    if error.validator in ("oneOf", "anyOf"):
        return "is not valid under any of the alternatives"
    message = error.message
    return message if len(message) <= 300 else message[:297] + "..."


def validate_openslo(documents: list[dict[str, Any]], *, schema_dir: str | Path | None = None) -> list[str]:
    """Problems of `documents` against the OpenSLO v1 schema, sorted; [] when all are valid.

    Each reads `document N (Kind name): $.path: message` with N counted from 1.
    `schema_dir` validates against another copy of the schema; by default the
    packaged copy is used.
    """
    validator = _validator(str(schema_dir) if schema_dir else None)
    problems: list[str] = []
    for index, doc in enumerate(documents, start=1):
        kind = doc.get("kind", "?") if isinstance(doc, dict) else "?"
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        name = meta.get("name", "?") if isinstance(meta, dict) else "?"
        found = {
            f"document {index} ({kind} {name}): {leaf.json_path}: {_message(leaf)}"
            for error in validator.iter_errors(doc)
            for leaf in _leaves(error)
        }
        problems.extend(sorted(found))
    return problems
