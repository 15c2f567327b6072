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
    from obsgen.model import durations

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


# Inline secrets in an Alertmanager config: the keys Alertmanager prints as <secret> (and webhook URLs,
# which carry tokens). obsgen writes none of them (its receivers name `*_file` secrets); a value found
# live -- a hand edit inside obsgen's receiver -- is shown only as HIDDEN, unless it is exactly the
# value the spec itself asks for (a PagerDuty `url` written in the spec is no secret).
HIDDEN = "<secret>"
SECRET_KEYS = frozenset({
    "routing_key", "service_key", "api_url", "url", "webhook_url", "api_key", "user_key", "token", "bot_token",
    "api_secret", "secret_key", "auth_password", "auth_secret", "password", "credentials", "bearer_token",
    "client_secret", "slack_api_url", "opsgenie_api_key", "victorops_api_key", "smtp_auth_password",
    "smtp_auth_secret", "wechat_api_secret", "telegram_api_url", "webex_api_url"})


def mask_secrets(live: Any, shape: Any = None) -> Any:
    """`live` with every inline secret value replaced by HIDDEN, except where it equals `shape`'s (the
    desired value at the same place)."""
    if isinstance(live, dict):
        shape = shape if isinstance(shape, dict) else {}
        return {k: (v if v == shape.get(k) else HIDDEN) if k in SECRET_KEYS and not isinstance(v, (dict, list))
                else mask_secrets(v, shape.get(k)) for k, v in live.items()}
    if isinstance(live, list):
        shapes = shape if isinstance(shape, list) else []
        return [mask_secrets(v, shapes[i] if i < len(shapes) else None) for i, v in enumerate(live)]
    return live


def secret_values(config: Any) -> set[str]:
    """Every inline secret value in a config (anyone's), to scrub from text a server or tool answers."""
    found: set[str] = set()
    if isinstance(config, dict):
        for key, value in config.items():
            if key in SECRET_KEYS and isinstance(value, str) and value.strip():
                found.add(value)
            else:
                found |= secret_values(value)
    elif isinstance(config, list):
        for value in config:
            found |= secret_values(value)
    return found


def scrub(text: str, secrets: Any) -> str:
    """`text` with each secret replaced by HIDDEN, as written and as Go quotes or URL-escapes it in an
    error (`parse "https://x y": invalid character ...`). Very short values (under 4 characters) are
    left: replacing them would garble the text and they protect nothing."""
    import json
    from urllib.parse import quote

    for secret in sorted({str(s).strip() for s in secrets if s}, key=len, reverse=True):
        if len(secret) < 4:
            continue
        for form in {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote(secret, safe=":/")}:
            text = text.replace(form, HIDDEN)
    return text
