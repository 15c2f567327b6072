"""obsgen's part of a shared Alertmanager config: find it, normalise it, put it in place.

An Alertmanager config is usually shared by many teams. In it, obsgen owns for
one service and environment (the `Owner`) exactly:

- the route directly under the root whose matchers include `service="<service>"`
  and `<env label>="<env>"` (its child routes come with it);
- the receivers whose names start with `<service>/<env>/` (`/` is in no service, environment or
  channel name, so one environment's receivers never look like another's, as the Prometheus Operator
  names an AlertmanagerConfig's);
- the inhibit rules whose source and target matchers both include those two
  matchers (so they can only ever mute this service's alerts in this environment).

Everything else -- `global`, the root route's own settings, other routes and
their order, other receivers and inhibit rules, `templates`, `time_intervals`,
`mute_time_intervals` -- belongs to someone else and is left exactly as it is.

Everything here works on parsed configs (plain mappings and lists, or any
dict/list subclass such as a comment-keeping YAML document) and does no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, MutableMapping

from obsgen import durations
from obsgen.routing import Matcher, inhibit_sides, parse_matchers, route_matchers

FIRST, LAST = "first", "last"
DURATION_KEYS = ("group_wait", "group_interval", "repeat_interval", "resolve_timeout")
MATCHER_KEYS = ("matchers", "source_matchers", "target_matchers")


class OwnershipError(ValueError):
    """The live config makes obsgen's part ambiguous (e.g. two routes select the same service and env)."""


@dataclass(frozen=True)
class Owner:
    service: str
    env: str
    env_label: str = "env"

    @property
    def matchers(self) -> tuple[str, str]:
        return (f'service="{self.service}"', f'{self.env_label}="{self.env}"')

    @property
    def prefix(self) -> str:
        return f"{self.service}/{self.env}/"

    @property
    def key(self) -> str:
        return f"{self.service}/{self.env}"

    def receiver(self, channel: str) -> str:
        return self.prefix + channel

    def selects(self, matchers: Iterable[Matcher]) -> bool:
        have = {(m.name, m.op, m.value) for m in matchers}
        return {("service", "=", self.service), (self.env_label, "=", self.env)} <= have


@dataclass
class Parts:
    """obsgen's part of one config: its route (and where it hangs), receivers and inhibit rules."""

    route: dict[str, Any] | None = None
    position: str = ""  # first | last | "<n> of <m>" (1-based) among the root's routes
    receivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    inhibit_rules: list[dict[str, Any]] = field(default_factory=list)


def _is_route_of(route: Any, owner: Owner) -> bool:
    try:
        return isinstance(route, dict) and owner.selects(route_matchers(route))
    except ValueError:
        return False  # someone else's route with a matcher we cannot read is not ours


def _is_inhibit_of(rule: Any, owner: Owner) -> bool:
    try:
        source, target = inhibit_sides(rule) if isinstance(rule, dict) else ([], [])
    except ValueError:
        return False
    return owner.selects(source) and owner.selects(target)


def _position(index: int, count: int) -> str:
    if index == 0:
        return FIRST
    return LAST if index == count - 1 else f"{index + 1} of {count}"


def extract(config: Any, owner: Owner) -> Parts:
    """obsgen's parts of a parsed config (an empty or missing config has none)."""
    config = config if isinstance(config, dict) else {}
    root = config.get("route") if isinstance(config.get("route"), dict) else {}
    routes = root.get("routes") if isinstance(root.get("routes"), list) else []
    mine = [i for i, r in enumerate(routes) if _is_route_of(r, owner)]
    if len(mine) > 1:
        raise OwnershipError(f"{len(mine)} routes under the root select {', '.join(owner.matchers)} (routes "
                             f"{', '.join(str(i + 1) for i in mine)}); obsgen owns one, so remove the others")
    parts = Parts()
    if mine:
        parts.route, parts.position = routes[mine[0]], _position(mine[0], len(routes))
    for receiver in config.get("receivers") or ():
        if isinstance(receiver, dict) and str(receiver.get("name", "")).startswith(owner.prefix):
            parts.receivers[str(receiver["name"])] = receiver
    parts.inhibit_rules = [r for r in config.get("inhibit_rules") or () if _is_inhibit_of(r, owner)]
    return parts


def normal(value: Any, key: str = "") -> Any:
    """A comparable form: durations by value (`90m` == `1h30m`), matchers in one spelling and order,
    `continue: false` dropped (it is the default), plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): normal(v, str(k)) for k, v in value.items() if not (k == "continue" and v is False)}
    if isinstance(value, list):
        if key in MATCHER_KEYS and all(isinstance(v, str) for v in value):
            try:
                return sorted(str(m) for text in value for m in parse_matchers(text))
            except ValueError:
                return sorted(value)
        return [normal(v) for v in value]
    if key in DURATION_KEYS and isinstance(value, str) and durations.is_duration(value):
        return durations.format_seconds(durations.seconds(value))
    return value


def project(live: Any, shape: Any) -> Any:
    """`live` cut down to the keys `shape` has, recursively: a server's re-marshalled config (every
    default filled in) compared on the fields obsgen writes."""
    if isinstance(shape, dict) and isinstance(live, dict):
        return {k: project(live.get(k), v) for k, v in shape.items()}
    if isinstance(shape, list) and isinstance(live, list):
        return [project(item, shape[i] if i < len(shape) else item) for i, item in enumerate(live)]
    return live


def place(config: MutableMapping[str, Any], owner: Owner, *, route: dict[str, Any] | None = None,
          position: str = FIRST, receivers: Iterable[dict[str, Any]] = (), drop_receivers: Iterable[str] = (),
          inhibit_rules: list[dict[str, Any]] | None = None, root: dict[str, Any] | None = None,
          drop_route: bool = False) -> None:
    """Put obsgen's parts into `config`, in place, touching nothing else.

    `route` replaces obsgen's route and is placed first or last among the root's routes;
    `receivers` replace same-named ones (or are appended); `drop_receivers` are removed;
    `inhibit_rules`, when given, replace obsgen's inhibit rules (where the first of them was);
    `drop_route` removes obsgen's route. A config without a root route gets `root` (a minimal valid root)."""
    if drop_route and isinstance(config.get("route"), dict) and isinstance(config["route"].get("routes"), list):
        routes = config["route"]["routes"]
        for i in reversed([i for i, r in enumerate(routes) if _is_route_of(r, owner)]):
            del routes[i]
    if route is not None:
        if not isinstance(config.get("route"), dict):
            config["route"] = dict(root or {})
        top = config["route"]
        if not isinstance(top.get("routes"), list):
            top["routes"] = []
        routes = top["routes"]
        for i in reversed([i for i, r in enumerate(routes) if _is_route_of(r, owner)]):
            del routes[i]
        if position == LAST:
            routes.append(route)
        else:
            routes.insert(0, route)
    dropped = set(drop_receivers)
    wanted = list(receivers)
    if wanted or dropped:
        if not isinstance(config.get("receivers"), list):
            config["receivers"] = []
        live = config["receivers"]
        for i in reversed(range(len(live))):
            if isinstance(live[i], dict) and live[i].get("name") in dropped:
                del live[i]
        for receiver in wanted:
            at = next((i for i, r in enumerate(live) if isinstance(r, dict) and r.get("name") == receiver["name"]),
                      None)
            if at is None:
                live.append(receiver)
            else:
                live[at] = receiver
    if inhibit_rules is not None:
        rules = config.get("inhibit_rules") if isinstance(config.get("inhibit_rules"), list) else []
        mine = [i for i, r in enumerate(rules) if _is_inhibit_of(r, owner)]
        at = mine[0] if mine else len(rules)
        for i in reversed(mine):
            del rules[i]
        rules[at:at] = inhibit_rules
        if rules or "inhibit_rules" in config:
            config["inhibit_rules"] = rules
