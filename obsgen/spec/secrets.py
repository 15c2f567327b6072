"""Inline secrets are refused: a spec names where a secret lives, never the secret."""
from __future__ import annotations

import re
from typing import Any, Iterator

from obsgen.errors import Problem
from obsgen.spec.source import Located

# key -> what to use instead
_SECRET_KEYS = {
    "routing_key": "routing_key_file (a path Alertmanager reads)",
    "service_key": "routing_key_file (a path Alertmanager reads)",
    "api_url": "api_url_file (a path Alertmanager reads)",
    "webhook_url": "api_url_file (a path Alertmanager reads)",
    "token": "token_env (an environment variable name) or token_file",
    "password": "token_env (an environment variable name) or token_file",
}
_SLACK_WEBHOOK = re.compile(r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/", re.I)
_PAGERDUTY_KEY = re.compile(r"^(?:R0[0-9A-Z]{30}|[0-9a-f]{32})$")
_TOKEN_LIKE = re.compile(r"^(?:glsa_[A-Za-z0-9_]{20,}|eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]+|xox[abpr]-[A-Za-z0-9-]{10,})")


def check(doc: Located) -> list[Problem]:
    problems = []
    for path, key, value in _walk(doc.data, ()):
        if key in _SECRET_KEYS and value not in (None, ""):
            problems.append(doc.problem(path, f"inline secret in {key!r}: secrets never go in the spec; "
                                              f"use {_SECRET_KEYS[key]}"))
        elif isinstance(value, str) and _SLACK_WEBHOOK.search(value):
            problems.append(doc.problem(path, "inline Slack webhook URL: put it in a file and reference it "
                                              "with api_url_file"))
        elif isinstance(value, str) and (_PAGERDUTY_KEY.match(value) or _TOKEN_LIKE.match(value)):
            problems.append(doc.problem(path, "value looks like an inline key or token: reference it with a "
                                              "*_file path or an environment variable (*_env)"))
    return problems


def _walk(node: Any, path: tuple) -> Iterator[tuple[tuple, Any, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + (k,), k, v
            yield from _walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield path + (i,), None, v
            yield from _walk(v, path + (i,))
