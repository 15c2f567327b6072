"""Normal forms for comparing what obsgen generates with what a server gives back.

Servers re-format PromQL, fill in defaults, add ids and versions and mask
secrets; comparing raw text would report drift that is not there.
"""
from __future__ import annotations

import re
from typing import Any

# Fields Grafana owns on a stored dashboard.
GRAFANA_SERVER_FIELDS = ("id", "version", "iteration", "created", "updated", "meta")


def promql(expr: str) -> str:
    """One canonical text per PromQL AST: `sum(rate(x[5m]))by(a)` == `sum by (a) (rate(x[5m]))`."""
    import promql_parser

    try:
        return promql_parser.parse(expr).prettify()
    except (ValueError, TypeError):
        return re.sub(r"\s+", " ", expr).strip()


def dashboard(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in GRAFANA_SERVER_FIELDS}


def rule_group(group: dict[str, Any]) -> dict[str, Any]:
    """A Prometheus rule group in rulefmt shape with canonical PromQL and durations."""
    from obsgen import durations

    def dur(value: Any) -> str:
        if isinstance(value, (int, float)):
            return durations.format_seconds(value)
        return durations.format_seconds(durations.seconds(value)) if value else "0s"

    rules = []
    for rule in group.get("rules", []):
        out: dict[str, Any] = {"expr": promql(rule["expr"])}
        for key in ("alert", "record"):
            if rule.get(key):
                out[key] = rule[key]
        if rule.get("alert"):
            out["for"] = dur(rule.get("for", 0))
            out["annotations"] = dict(sorted((rule.get("annotations") or {}).items()))
        out["labels"] = dict(sorted((rule.get("labels") or {}).items()))
        rules.append(out)
    return {"name": group["name"], "interval": dur(group.get("interval", 0)), "rules": rules}
