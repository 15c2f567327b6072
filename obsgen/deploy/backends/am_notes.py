"""What a plan must say about a shared Alertmanager config that no diff of obsgen's own part shows.

Two things happen outside obsgen's part and change who gets which alert, so the plan names them (as
notes on stderr, never fatal):

- another team's route, inhibit rule or receiver that overlaps obsgen's part without being it
  (obsgen.compile.amtree.overlaps): it is left as it is, and said so;
- obsgen's route placed before another team's route that would see some of the same alerts (a
  catch-all audit route with `continue: true`, or a narrower route for this service): Alertmanager
  stops at obsgen's route (unless it has `continue: true`), so that route silently stops seeing them.
  The note names the route and the placement the spec offers (`route: {position, continue}`) that
  keeps them seen while obsgen's route still gets every alert of the service.

The alerts considered are the label sets of every alert the spec generates, plus, for each other route,
the alert its equality matchers describe (`alertname="QASmokeTestFailed"` for the QA team's route).
"""
from __future__ import annotations

from typing import Any

from obsgen.compile import amtree
from obsgen.compile.routing import matches_all, route_matchers

Labels = dict[str, str]


def alert_labels(model: Any, env: Any, owner: amtree.Owner) -> list[Labels]:
    """The label set of every alert the spec generates for the environment (static labels and name)."""
    from obsgen.compile.prometheus import rule_documents

    seen, out = set(), []
    for document in rule_documents(model, env).values():
        for group in document.get("groups") or ():
            for rule in group.get("rules") or ():
                if "alert" not in rule:
                    continue
                labels = {"alertname": str(rule["alert"]), **{str(k): str(v) for k, v in
                                                               (rule.get("labels") or {}).items()},
                          "service": owner.service, owner.env_label: owner.env}
                key = tuple(sorted(labels.items()))
                if key not in seen:
                    seen.add(key)
                    out.append(labels)
    return out


def _matchers(route: Any) -> list[Any] | None:
    try:
        return route_matchers(route) if isinstance(route, dict) else None
    except ValueError:
        return None


def _reached(routes: list[Any], labels: Labels) -> list[int]:
    """ids of the routes directly under the root an alert reaches, as Alertmanager's dispatcher walks them."""
    found = []
    for route in routes:
        matchers = _matchers(route)
        if matchers is None or not matches_all(matchers, labels):
            continue
        found.append(id(route))
        if not route.get("continue", False):
            break
    return found


def _witness(route: Any) -> Labels | None:
    """The alert a route is plainly about: its equality matchers as labels (None when they do not match it)."""
    matchers = _matchers(route)
    if not matchers:
        return None
    labels = {m.name: m.value for m in matchers if m.op == "="}
    return labels if matches_all(matchers, labels) else None


def _arranged(others: list[Any], mine: dict[str, Any], position: str) -> list[Any]:
    return [mine, *others] if position != amtree.LAST else [*others, mine]


def _hidden(others: list[Any], mine: dict[str, Any], position: str, alerts: list[Labels]) -> dict[int, str]:
    """Other routes (by id) that see an alert without obsgen's route and not with it -> that alert's name."""
    routes = _arranged(others, mine, position)
    lost: dict[int, str] = {}
    for labels in alerts:
        before, after = _reached(others, labels), set(_reached(routes, labels))
        for route_id in before:
            if route_id not in after:
                lost.setdefault(route_id, labels.get("alertname") or str(labels))
    return lost


def _misses(others: list[Any], mine: dict[str, Any], position: str, alerts: list[Labels]) -> bool:
    """Whether some alert of the service would not reach obsgen's route in this placement."""
    return any(id(mine) not in _reached(_arranged(others, mine, position), labels) for labels in alerts)


def _spelled(position: str, cont: bool) -> str:
    return f"route: {{position: {position}" + (", continue: true}" if cont else "}")


def shadowing(config: Any, owner: amtree.Owner, position: str, cont: bool, alerts: list[Labels],
              where: str) -> list[str]:
    """Notes naming each other route that obsgen's route, placed as the spec says, would hide alerts from,
    with the placement that keeps them seen (`where` names the backend in the spec, e.g. "dev's
    alertmanager backend")."""
    config = config if isinstance(config, dict) else {}
    root = config.get("route") if isinstance(config.get("route"), dict) else {}
    routes = root.get("routes") if isinstance(root.get("routes"), list) else []
    current = amtree.extract(config, owner).route  # obsgen's route as it is now, if any: it moves
    numbered = [(i, r) for i, r in enumerate(routes) if isinstance(r, dict) and r is not current]
    others = [r for _, r in numbered]
    mine: dict[str, Any] = {"matchers": list(owner.matchers), "continue": cont}
    witnesses = [w for w in (_witness(r) for r in others) if w is not None]
    everything = alerts + witnesses
    lost = _hidden(others, mine, position, everything)
    if not lost:
        return []
    offer = ""
    for alternative in ((amtree.LAST, cont), (position, True), (amtree.LAST, True)):
        if alternative == (position, cont):
            continue
        if not _hidden(others, mine, alternative[0], everything) and not _misses(others, mine, alternative[0],
                                                                                  alerts):
            offer = (f"set `{_spelled(*alternative)}` on {where} to keep them seen (obsgen's route still "
                     f"gets every alert of {owner.service} in {owner.env})")
            break
    if not offer:
        offer = ("no placement the spec offers keeps them seen and still gives obsgen's route every alert "
                 "of the service; change the other route or obsgen's placement by hand")
    notes = []
    for index, route in numbered:
        if id(route) in lost:
            cont_note = ", which has `continue: true`," if route.get("continue", False) else ""
            notes.append(f"obsgen's route for {owner.key} ({_spelled(position, cont)}) comes before "
                         f"{amtree.describe_route(index, route)}{cont_note} and would hide alerts from it "
                         f"(e.g. {lost[id(route)]}): Alertmanager stops at obsgen's route; {offer}")
    return notes
