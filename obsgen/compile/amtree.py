"""obsgen's part of a shared Alertmanager config: find it, normalise it, put it in place.

An Alertmanager config is usually shared by many teams. In it, obsgen owns for
one service and environment (the `Owner`) exactly:

- the route directly under the root that is exactly the one obsgen writes: its `matchers` are
  `service="<service>"` and `<env label>="<env>"` and nothing else (in any spelling or order, but no
  legacy `match:`), and its receiver is one of obsgen's (its child routes come with it);
- the receivers whose names start with `<service>/<env>/` (`/` is in no service, environment or
  channel name, so one environment's receivers never look like another's, as the Prometheus Operator
  names an AlertmanagerConfig's) -- except one that only another team's route uses;
- the inhibit rules written as obsgen writes them: only `source_matchers`, `target_matchers` and
  `equal`, both sides selecting those two matchers, every other matcher on a label obsgen's own alerts
  carry (`GENERATED_LABELS`), so they can only ever mute this service's alerts in this environment.

A route or rule that merely overlaps obsgen's part -- another team's narrower route for the same
service and environment (`alertname="QASmokeTestFailed"` -> qa-team), an old-style `match:` route, an
inhibit rule that also names an `alertname` -- is someone else's: it is left as it is, and `overlaps`
names it so the plan can say so.

Everything else -- `global`, the root route's own settings, other routes and
their order, other receivers and inhibit rules, `templates`, `time_intervals`,
`mute_time_intervals` -- belongs to someone else and is left exactly as it is.

Everything here works on parsed configs (plain mappings and lists, or any
dict/list subclass such as a comment-keeping YAML document) and does no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, MutableMapping

from obsgen.model import durations
from obsgen.compile.routing import Matcher, inhibit_sides, parse_matchers, route_matchers

FIRST, LAST = "first", "last"
# The labels obsgen's generated alerts carry besides service and env (obsgen.compile.conventions names them; kept
# here because conventions imports this module): an inhibit rule matching only on these is obsgen's kind.
GENERATED_LABELS = frozenset({"tier", "step_id", "severity", "slo", "slo_alert", "page", "drill"})
ROUTE_KEYS_LEGACY = ("match", "match_re")
INHIBIT_KEYS = frozenset({"source_matchers", "target_matchers", "equal"})
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

    @property
    def scope(self) -> set[tuple[str, str, str]]:
        return {("service", "=", self.service), (self.env_label, "=", self.env)}

    def selects(self, matchers: Iterable[Matcher]) -> bool:
        """The matchers include this service's and environment's (they may say more)."""
        return self.scope <= {(m.name, m.op, m.value) for m in matchers}

    def is_exactly(self, matchers: Iterable[Matcher]) -> bool:
        """The matchers are this service's and environment's and nothing else."""
        return {(m.name, m.op, m.value) for m in matchers} == self.scope


@dataclass
class Parts:
    """obsgen's part of one config: its route (and where it hangs), receivers and inhibit rules."""

    route: dict[str, Any] | None = None
    position: str = ""  # first | last | "<n> of <m>" (1-based) among the root's routes
    receivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    inhibit_rules: list[dict[str, Any]] = field(default_factory=list)
    held: dict[str, dict[str, Any]] = field(default_factory=dict)  # obsgen-prefixed receivers only others use


def _is_route_of(route: Any, owner: Owner) -> bool:
    """Exactly obsgen's route: obsgen's two matchers and no other, in `matchers` (obsgen never writes the
    legacy `match:`), sending to one of obsgen's receivers."""
    if not isinstance(route, dict) or any(k in route for k in ROUTE_KEYS_LEGACY):
        return False
    if not str(route.get("receiver") or "").startswith(owner.prefix):
        return False
    try:
        return owner.is_exactly(route_matchers(route))
    except ValueError:
        return False  # someone else's route with a matcher we cannot read is not ours


def _overlaps_route(route: Any, owner: Owner) -> bool:
    """Another route that selects this service and environment (among other things, or in another way)."""
    try:
        return isinstance(route, dict) and owner.selects(route_matchers(route)) and not _is_route_of(route, owner)
    except ValueError:
        return False


def _is_inhibit_of(rule: Any, owner: Owner) -> bool:
    """Written as obsgen writes its rules: both sides select this service and environment, and every
    other matcher is on a label obsgen's own alerts carry (a rule that also names `alertname`, or uses
    the legacy `source_match:` fields, is someone else's)."""
    if not isinstance(rule, dict) or not set(rule) <= INHIBIT_KEYS:
        return False
    try:
        source, target = inhibit_sides(rule)
    except ValueError:
        return False
    scope = owner.scope
    return (owner.selects(source) and owner.selects(target) and
            all(m.name in GENERATED_LABELS for m in source + target if (m.name, m.op, m.value) not in scope))


def _overlaps_inhibit(rule: Any, owner: Owner) -> bool:
    try:
        source, target = inhibit_sides(rule) if isinstance(rule, dict) else ([], [])
    except ValueError:
        return False
    return owner.selects(source) and owner.selects(target) and not _is_inhibit_of(rule, owner)


def _used_receivers(route: Any) -> set[str]:
    """Every receiver a route tree names."""
    if not isinstance(route, dict):
        return set()
    found = {str(route["receiver"])} if route.get("receiver") else set()
    for child in route.get("routes") or ():
        found |= _used_receivers(child)
    return found


def describe_route(index: int, route: Any) -> str:
    """`route #3 (service="selftest", env="dev", alertname="X") -> qa-team`, for notes."""
    try:
        matchers = ", ".join(str(m) for m in route_matchers(route)) or "no matchers: every alert"
    except ValueError:
        matchers = "matchers obsgen cannot read"
    return f"route #{index + 1} ({matchers}) -> {route.get('receiver') or 'the root receiver'}"


def overlaps(config: Any, owner: Owner) -> list[str]:
    """What in `config` overlaps obsgen's part without being it, described for the plan's notes: routes
    under the root and inhibit rules selecting this service and environment, and obsgen-prefixed
    receivers only another team's route uses. obsgen leaves each of them as it is."""
    config = config if isinstance(config, dict) else {}
    root = config.get("route") if isinstance(config.get("route"), dict) else {}
    routes = root.get("routes") if isinstance(root.get("routes"), list) else []
    found = [f"{describe_route(i, r)} overlaps obsgen's route for {owner.key} but is not the one obsgen writes; "
             f"left as it is" for i, r in enumerate(routes) if _overlaps_route(r, owner)]
    rules = config.get("inhibit_rules") if isinstance(config.get("inhibit_rules"), list) else []
    found += [f"inhibit rule #{i + 1} selects {owner.key}'s alerts but is not written as obsgen writes its rules; "
              f"left as it is" for i, r in enumerate(rules) if _overlaps_inhibit(r, owner)]
    found += [f"receiver {name} has obsgen's prefix but only another team's route uses it; left as it is"
              for name in sorted(_foreign_receivers(config, owner, routes))]
    return found


def _foreign_receivers(config: dict[str, Any], owner: Owner, routes: list[Any]) -> set[str]:
    """obsgen-prefixed receivers that another team's route uses and obsgen's route does not."""
    ours = set().union(*(_used_receivers(r) for r in routes if _is_route_of(r, owner)))
    theirs = set().union(*(_used_receivers(r) for r in routes if not _is_route_of(r, owner)))
    root = config.get("route") if isinstance(config.get("route"), dict) else {}
    if root.get("receiver"):
        theirs.add(str(root["receiver"]))
    return {n for n in theirs - ours if n.startswith(owner.prefix)}


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
        raise OwnershipError(f"{len(mine)} routes under the root are obsgen's ({', '.join(owner.matchers)}, to a "
                             f"{owner.prefix} receiver) (routes {', '.join(str(i + 1) for i in mine)}); obsgen "
                             f"owns one, so remove the others")
    parts = Parts()
    if mine:
        parts.route, parts.position = routes[mine[0]], _position(mine[0], len(routes))
    foreign = _foreign_receivers(config, owner, routes)
    for receiver in config.get("receivers") or ():
        name = str(receiver.get("name", "")) if isinstance(receiver, dict) else ""
        if name.startswith(owner.prefix):
            (parts.held if name in foreign else parts.receivers)[name] = receiver
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
