"""Helpers for the shared Alertmanager config file: the copy amtool checks, and what changed in the file.

Pure functions (no I/O): the file backend (alertmanager.py) does the reading and writing.
"""
from __future__ import annotations

import os
from pathlib import Path

from obsgen.deploy.backends import am_yaml


def absolute_templates(content: bytes, base: Path, indent: tuple[int, int, int] | None) -> bytes:
    """The config with its relative `templates` globs joined to `base` (Alertmanager's rule), for a copy
    checked elsewhere; the bytes as they are when there is none."""
    document = am_yaml.yaml().load(content.decode("utf-8", errors="replace")) if content.strip() else None
    templates = document.get("templates") if isinstance(document, dict) else None
    if not isinstance(templates, list) or all(not isinstance(t, str) or os.path.isabs(t) for t in templates):
        return content
    for index, template in enumerate(templates):
        if isinstance(template, str) and not os.path.isabs(template):
            templates[index] = os.path.join(base, template)
    return am_yaml.dump(document, indent)


def changed(written: bytes, current: bytes | None) -> str:
    """What happened to a file since obsgen wrote `written` into it, in a few words."""
    if current is None:
        return "the file was removed"
    old, new = written.splitlines(), current.splitlines()
    line = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    return f"the file changed (first at line {line + 1})"
