"""Rule files obsgen deploys into a directory it shares: their names, the ownership marker, parse and render.

A deployed file is named `<service>-<env>-<generated file name>` and carries, in the comment lines
at its top (after the generated header), the marker `# obsgen: service=<service> env=<env>`. A file
is obsgen's for a service and environment only when it has both; everything else in the directory
belongs to someone else. Nothing here does I/O.
"""
from __future__ import annotations

from typing import Any


def file_prefix(service: str, env: str) -> str:
    return f"{service}-{env}-"


def marker(service: str, env: str) -> str:
    return f"# obsgen: service={service} env={env}"


def head(content: bytes) -> bytes:
    """The comment lines (and blank lines) at the top of a file, up to its first line of YAML."""
    lines = content.splitlines(keepends=True)
    end = 0
    while end < len(lines) and (lines[end].lstrip().startswith(b"#") or not lines[end].strip()):
        end += 1
    return b"".join(lines[:end])


def is_owned(content: bytes, mark: str) -> bool:
    """The marker is one of the file's leading comment lines, exactly."""
    return mark.encode() in (line.strip() for line in head(content).splitlines())


def with_marker(generated: bytes, mark: str) -> bytes:
    """The generated file with the marker line added after its header (the first line, a comment)."""
    first, newline, rest = generated.partition(b"\n")
    if first.startswith(b"#") and newline:
        return first + b"\n" + mark.encode() + b"\n" + rest
    return mark.encode() + b"\n" + generated


def groups_of(content: bytes) -> list[dict[str, Any]]:
    """The rule groups of a rule file; ValueError saying what is wrong when it is not one."""
    import yaml

    from obsgen.compile import render

    try:
        document = render.load_yaml(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"is not valid YAML{where}") from None
    if document is None:
        return []
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("name"), str)
                                               for g in groups):
        raise ValueError("is not a rule file (a `groups:` list of named groups)")
    return groups


def render_file(top: bytes, groups: list[dict[str, Any]]) -> bytes:
    """`top` (the header and marker lines) followed by the groups, in the order given."""
    from obsgen.compile import render

    return top + render.to_yaml({"groups": groups})
