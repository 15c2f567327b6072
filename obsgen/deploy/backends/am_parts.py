"""obsgen's subtree of a shared Alertmanager config as plan objects, and changes merged back into a config.

Both Alertmanager clients (the config file, and a Mimir tenant's config) use
this: the subtree becomes one `route` object, one `receiver` object per
receiver and one `inhibit-rules` object, compared in `amtree.normal` form, so a
hand edit inside obsgen's part shows as a change and everything outside it is
neither read into the plan nor written.
"""
from __future__ import annotations

import copy
from typing import Any, MutableMapping

from obsgen import amtree
from obsgen.artifact import Artifact
from obsgen.deploy.plan import CREATE, DELETE, UPDATE, Change, Obj

NAME = "alertmanager"
ROUTE, RECEIVER, INHIBIT = "route", "receiver", "inhibit-rules"
SUBTREE, STANDALONE = "subtree.yaml", "alertmanager.yaml"
_ONLY = "only"  # position of a route that is the root's only child: first and last at once


def generated(env_name: str, artifacts: list[Artifact], name: str) -> Any:
    """One generated Alertmanager file of the environment, parsed; None when the build has none."""
    import yaml

    for artifact in artifacts:
        if artifact.path == f"{env_name}/alertmanager/{name}":
            return yaml.safe_load(artifact.content)
    return None


def desired_objs(subtree: dict[str, Any], owner: amtree.Owner) -> list[Obj]:
    route = {"position": subtree["position"], **subtree["route"]}
    objs = [Obj(NAME, ROUTE, owner.key, amtree.normal(route), payload=route)]
    objs += [Obj(NAME, RECEIVER, r["name"], amtree.normal(r), payload=r) for r in subtree["receivers"]]
    if subtree.get("inhibit_rules"):
        rules = subtree["inhibit_rules"]
        objs.append(Obj(NAME, INHIBIT, owner.key, amtree.normal(rules), payload=rules))
    return objs


def live_objs(parts: amtree.Parts, owner: amtree.Owner, position: str) -> list[Obj]:
    """The live parts as objects; `position` is the desired one, which a route that is the root's
    only child satisfies whichever it is."""
    objs = []
    if parts.route is not None:
        where = position if parts.position == _ONLY else parts.position
        objs.append(Obj(NAME, ROUTE, owner.key, amtree.normal({"position": where, **parts.route})))
    objs += [Obj(NAME, RECEIVER, name, amtree.normal(r)) for name, r in parts.receivers.items()]
    if parts.inhibit_rules:
        objs.append(Obj(NAME, INHIBIT, owner.key, amtree.normal(parts.inhibit_rules)))
    return objs


def extract(config: Any, owner: amtree.Owner) -> amtree.Parts:
    """amtree.extract, telling a route that is the root's only child apart (see `live_objs`)."""
    parts = amtree.extract(config, owner)
    root = config.get("route") if isinstance(config, dict) and isinstance(config.get("route"), dict) else {}
    if parts.route is not None and len(root.get("routes") or ()) == 1:
        parts.position = _ONLY
    return parts


def merge(config: MutableMapping[str, Any], changes: list[Change], owner: amtree.Owner,
          standalone: dict[str, Any], convert: Any = lambda value: value) -> MutableMapping[str, Any]:
    """`config` with `changes` made to obsgen's part, in place; everything else untouched.

    A config without a root route (empty or missing) starts as the standalone config's
    `global` and root. `convert` turns a generated part into the document's own types."""
    if not isinstance(config.get("route"), dict):
        if "global" not in config and standalone.get("global"):
            config["global"] = convert(copy.deepcopy(standalone["global"]))
        config["route"] = convert({k: v for k, v in standalone["route"].items() if k != "routes"})
    for change in changes:
        kind, payload = change.obj.kind, change.obj.payload
        if change.action in (CREATE, UPDATE):
            if kind == ROUTE:
                route = {k: v for k, v in payload.items() if k != "position"}
                amtree.place(config, owner, route=convert(copy.deepcopy(route)), position=payload["position"])
            elif kind == RECEIVER:
                amtree.place(config, owner, receivers=[convert(copy.deepcopy(payload))])
            elif kind == INHIBIT:
                amtree.place(config, owner, inhibit_rules=[convert(copy.deepcopy(r)) for r in payload])
        elif change.action == DELETE:
            if kind == ROUTE:
                amtree.place(config, owner, drop_route=True)
            elif kind == RECEIVER:
                amtree.place(config, owner, drop_receivers=[change.obj.key])
            elif kind == INHIBIT:
                amtree.place(config, owner, inhibit_rules=[])
    return config


def unloaded(file_objs: list[Obj], running_config: Any, owner: amtree.Owner, position: str) -> list[str]:
    """Keys of obsgen's parts whose running version (from Alertmanager's status, defaults filled in)
    differs from the file's: the file changed since the last reload, or that reload failed."""
    running = {o.ident: o for o in live_objs(extract(running_config, owner), owner, position)}
    stale = []
    for obj in file_objs:
        have = running.get(obj.ident)
        if have is None or amtree.project(have.body, obj.body) != obj.body:
            stale.append(f"{obj.kind} {obj.key}")
    stale += [f"{o.kind} {o.key}" for ident, o in running.items() if ident not in {f.ident for f in file_objs}]
    return stale
