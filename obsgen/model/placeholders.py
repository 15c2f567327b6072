"""Placeholders in user-supplied PromQL: {{env}} (the environment) and {{window}} (a rate window)."""
from __future__ import annotations


def fill(template: str, *, env: str, window: str = "5m") -> str:
    return template.replace("{{env}}", env).replace("{{window}}", window)
