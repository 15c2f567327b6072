"""Alertmanager routing and inhibition, evaluated offline on a parsed config.

`receivers_for` answers "which receivers get this label set" by walking the
route tree the way Alertmanager's dispatcher does; `inhibited` answers "is
this alert muted while these others fire" the way its inhibitor does. Both
read a config as a plain dict (the parsed `alertmanager.yaml`), so generated
routing can be checked and documented without running Alertmanager.

Matchers follow Alertmanager 0.25: `name="value"`, `!=`, `=~`, `!~`, values
quoted or bare, several per string separated by commas, optional braces;
regexes are anchored at both ends; a label that is absent has the value "".
The legacy `match` / `match_re` (routes) and `source_match[_re]` /
`target_match[_re]` (inhibit rules) maps are honoured too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping

Labels = Mapping[str, str]
OPERATORS = ("=", "!=", "=~", "!~")
_MATCHER = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL)


@lru_cache(maxsize=None)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?:{pattern})")  # used with fullmatch: ^(?:pattern)$ as Alertmanager compiles it


@dataclass(frozen=True)
class Matcher:
    """One label matcher; `matches` reads an absent label as the empty string."""

    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown matcher operator {self.op!r} (expected one of {', '.join(OPERATORS)})")
        if self.op in ("=~", "!~"):
            try:
                _regex(self.value)
            except re.error as err:
                raise ValueError(f"invalid regex in matcher {self}: {err}") from None

    def matches(self, labels: Labels) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = _regex(self.value).fullmatch(value) is not None  # anchored, as ^(?:re)$ in Go
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """One matcher such as `tier="kernel"` or `severity=~warning|critical`."""
    found = _MATCHER.match(text)
    if not found:
        raise ValueError(f"bad matcher format: {text}")
    name, op, raw = found.groups()
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    value, escaped, closed = [], False, False
    for i, ch in enumerate(raw):
        if escaped:  # \n, \" and \\ are escapes; any other backslash is literal
            escaped = False
            value.append("\n" if ch == "n" else ch if ch in '"\\' else "\\" + ch)
        elif ch == "\\" and i < len(raw) - 1:
            escaped = True
        elif ch == '"':
            if not quoted or i < len(raw) - 1:
                raise ValueError(f"matcher value contains unescaped double quote: {text}")
            closed = True
        else:
            value.append(ch)
    if quoted and not closed:
        raise ValueError(f"matcher value contains unescaped double quote: {text}")
    return Matcher(name, op, "".join(value))


def parse_matchers(text: str) -> list[Matcher]:
    """Comma-separated matchers, optionally in braces: `{tier="kernel", severity=~"critical|warning"}`."""
    text = text.strip()
    text = text[1:] if text.startswith("{") else text
    text = text[:-1] if text.endswith("}") else text
    tokens, token, quoted, escaped = [], "", False, False
    for ch in text:
        if ch == "," and not quoted:
            tokens.append(token)
            token = ""
            continue
        if ch == '"':
            quoted = quoted if escaped else not quoted
            escaped = False
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        token += ch
    if token.strip():
        tokens.append(token)
    return [parse_matcher(t) for t in tokens]


def _collect(matchers: Iterable[str] | None, match: Mapping[str, Any] | None,
             match_re: Mapping[str, Any] | None) -> list[Matcher]:
    out = [Matcher(str(k), "=", str(v)) for k, v in sorted((match or {}).items())]
    out += [Matcher(str(k), "=~", str(v)) for k, v in sorted((match_re or {}).items())]
    for text in matchers or ():
        out += parse_matchers(text)
    return out


def route_matchers(route: Mapping[str, Any]) -> list[Matcher]:
    """Every matcher of one route: `match`, `match_re` and `matchers`."""
    return _collect(route.get("matchers"), route.get("match"), route.get("match_re"))


def matches_all(matchers: Iterable[Matcher], labels: Labels) -> bool:
    return all(m.matches(labels) for m in matchers)


def matching_routes(route: Mapping[str, Any], labels: Labels, receiver: str = "",
                    path: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], str]]:
    """(path of child indexes, effective receiver) of every route an alert ends on, in order.

    Alertmanager's `Route.Match`: a route that matches tries its children in order,
    stopping after the first that matches unless that child has `continue: true`;
    when no child matches, the route itself is the match. A route without a
    receiver inherits its parent's.
    """
    if not matches_all(route_matchers(route), labels):
        return []
    receiver = route.get("receiver") or receiver
    found: list[tuple[tuple[int, ...], str]] = []
    for i, child in enumerate(route.get("routes") or ()):
        hits = matching_routes(child, labels, receiver, path + (i,))
        found += hits
        if hits and not child.get("continue", False):
            break
    return found or [(path, receiver)]


def receivers_for(config: Mapping[str, Any], labels: Labels) -> list[str]:
    """The receivers an alert with `labels` is sent to, in Alertmanager's order (as `amtool config
    routes test` prints them; a receiver reached by two routes is listed twice)."""
    root = {k: v for k, v in config["route"].items() if k not in ("matchers", "match", "match_re")}
    return [receiver for _, receiver in matching_routes(root, labels)]


def inhibit_sides(rule: Mapping[str, Any]) -> tuple[list[Matcher], list[Matcher]]:
    """(source matchers, target matchers) of one inhibit rule, legacy fields included."""
    return (_collect(rule.get("source_matchers"), rule.get("source_match"), rule.get("source_match_re")),
            _collect(rule.get("target_matchers"), rule.get("target_match"), rule.get("target_match_re")))


def inhibiting_rules(config: Mapping[str, Any], alert_labels: Labels,
                     firing: Iterable[Labels]) -> list[int]:
    """Indexes of the inhibit rules that mute `alert_labels` while the `firing` alerts fire."""
    firing = list(firing)
    hits = []
    for index, rule in enumerate(config.get("inhibit_rules") or ()):
        source, target = inhibit_sides(rule)
        if not matches_all(target, alert_labels):
            continue
        two_sided = matches_all(source, alert_labels)
        for other in firing:
            if not matches_all(source, other):
                continue
            if any(other.get(n, "") != alert_labels.get(n, "") for n in rule.get("equal") or ()):
                continue  # a label absent on both sides counts as equal
            if two_sided and matches_all(target, other):
                continue  # an alert matching both sides never mutes another such alert (nor itself)
            hits.append(index)
            break
    return hits


def inhibited(config: Mapping[str, Any], alert_labels: Labels, firing: Iterable[Labels]) -> bool:
    """Whether Alertmanager mutes `alert_labels` while the `firing` alerts (resolved ones
    excluded by the caller) fire: some other alert matches a rule's source side, this one its
    target side, and every `equal` label has the same value on both."""
    return bool(inhibiting_rules(config, alert_labels, firing))
