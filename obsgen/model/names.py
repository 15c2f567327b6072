"""The few names both the spec checks and the targets derive from raw strings (no model needed).

The spec's semantic checks run before there is a model and may not import the compilers, so the
formulas they share with the compilers and backends live here, at the bottom of the layering.
"""
from __future__ import annotations

import re


def slug(text: str) -> str:
    """Lower case, every run of other characters one `-` (Grafana's slug of a title)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def grafana_dashboard_title(title: str, env: str) -> str:
    """A dashboard's title as deployed: the spec's title and the environment."""
    return f"{title} ({env})"


def grafana_folder_title(service: str, env: str, folder: str = "") -> str:
    """The environment's folder title: the grafana backend's `folder`, else `<service> (<env>)`."""
    return folder or f"{service} ({env})"
