"""Text that ends up inside a Go template (Prometheus alert annotations, Alertmanager notification fields).

Prometheus expands every annotation of an alert rule as a Go text/template when the alert fires, and
Alertmanager does the same with a receiver's templated fields (a Slack channel, for one). A spec's free text
(`remediation`, `description`, `runbook`, a channel name) is not meant as a template: `Run make {{target}}`
would break `promtool check rules`, and `{{ with query "up" }}...` would be run by Prometheus at alert time.
So free text is made literal (`literal`): every `{{` becomes the action `{{ "{{" }}`, which prints `{{`,
and Go renders the text exactly as written. An alert's `summary` is a template by design; `summary_problem`
allows in it only the actions a responder needs (a label, the value, their humanize and printf forms, and obsgen's own
`{{env}}` placeholder) and `validate` rejects anything else (`query`, `with`, `range`, `define`, `template`,
comments, ...), naming the field.
"""
from __future__ import annotations

import re

OPEN_LITERAL = '{{ "{{" }}'  # a Go template action that prints "{{"

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_HUMANIZE = r"humanize(?:1024|Duration|Percentage|Timestamp)?"
_SUBJECT = rf"(?:\$labels\.{_NAME}|\.Labels\.{_NAME}|\$externalLabels\.{_NAME}|\$value|\.Value)"
_PRINTF = r'printf\s+"[^"\\{}]*"'  # a plain format string: printf "%.2f" $value
_ALLOWED = re.compile(rf"(?:{_SUBJECT}(?:\s*\|\s*{_HUMANIZE})?|{_HUMANIZE}\s+{_SUBJECT}|{_PRINTF}\s+{_SUBJECT})")
# an action as Go's lexer reads it: "{{" with an optional "- " trim marker, up to the first "}}"
_ACTION = re.compile(r"\{\{(?:-[ \t\r\n])?\s*(.*?)\s*(?:[ \t\r\n]-)?\}\}", re.DOTALL)

SUMMARY_HELP = ("a summary may use only {{ $labels.<name> }}, {{ $value }} (each optionally | humanize, "
                "humanize1024, humanizeDuration, humanizePercentage or humanizeTimestamp, or as printf \"%.2f\" "
                "$value) and {{env}}")


def literal(text: str) -> str:
    """`text` as a Go template that renders exactly `text`."""
    return text.replace("{{", OPEN_LITERAL)


def unliteral(text: str) -> str:
    """The text `literal` was given (for documents that show it to people, not to Go)."""
    return text.replace(OPEN_LITERAL, "{{")


def summary_problem(text: str) -> str | None:
    """Why `text` is not an allowed summary template, or None when it is."""
    text = text.replace("{{env}}", "")  # obsgen's placeholder, filled in before Prometheus sees the text
    bad = next((m[0] for m in _ACTION.finditer(text) if not _ALLOWED.fullmatch(m[1])), None)
    if bad is None:
        rest = _ACTION.sub("", text)
        if "{{" not in rest:
            return None
        shown, what = rest[rest.index("{{"):][:40], "opens a template action that never closes"
    else:
        shown, what = bad, "is not allowed"
    if len(shown) > 60:
        shown = shown[:60] + "…"
    return f"{shown!r} {what}: {SUMMARY_HELP}; write other text without '{{{{'"
