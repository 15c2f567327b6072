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

from obsgen.compile import amtree
from obsgen.model.artifact import Artifact
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
    # a receiver named like obsgen's that only another team's route uses: never changed or deleted, and a
    # desired receiver of that name is BLOCKED (named in the plan, refused by apply)
    objs += [Obj(NAME, RECEIVER, name, None, owned=False) for name in parts.held]
    return objs


def masked(obj: Obj, desired: dict[tuple[str, str, str], Any] | None = None) -> Obj:
    """A live receiver with its inline secrets hidden (see normalise.mask_secrets); other objects as they are."""
    from obsgen.deploy.normalise import mask_secrets

    if obj.kind != RECEIVER or not obj.owned:
        return obj
    return Obj(obj.backend, obj.kind, obj.key, mask_secrets(obj.body, (desired or {}).get(obj.ident)))


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


def render(content: bytes | None, document: Any, changes: list[Change], owner: amtree.Owner,
           standalone: dict[str, Any], indent: tuple[int, int, int] | None) -> Any:
    """The file to write for `changes` (an am_bytes.Kept): `document` (the file `content` parsed, changed in
    place) with obsgen's parts merged in, spliced into the file's own text so that every byte outside
    obsgen's part stays (obsgen.deploy.backends.am_bytes)."""
    from obsgen.deploy.backends import am_bytes, am_yaml

    am_yaml.release_comments(document, owner)
    base = am_yaml.dump(document, indent).decode("utf-8")
    others = copy.deepcopy(document)  # the config without any part of obsgen's: anchors the splice
    if isinstance(others, dict) and others:
        amtree.place(others, owner, drop_route=True, drop_receivers=list(amtree.extract(others, owner).receivers),
                     inhibit_rules=[] if isinstance(others.get("inhibit_rules"), list) else None)
    foreign = am_yaml.dump(others, indent).decode("utf-8")
    merged = am_yaml.dump(merge(document, changes, owner, standalone, am_yaml.block), indent).decode("utf-8")
    if not content or not content.strip():
        return am_bytes.Kept(merged.encode("utf-8"))
    return am_bytes.keep(content, base, merged, foreign)


def rewrites(kept: Any, config_file: Any) -> str:
    """Why a merge that would re-write other teams' lines is refused, naming the first few ('' if none)."""
    if not kept.rewritten:
        return ""
    shown = "; ".join(f"line {n}: {text.strip()[:80]!r}" for n, text in kept.rewritten[:3])
    more = f" and {len(kept.rewritten) - 3} more" if len(kept.rewritten) > 3 else ""
    return (f"merging obsgen's part into {config_file} would re-write {len(kept.rewritten)} line(s) of other "
            f"teams' parts that obsgen cannot keep as written ({shown}{more}): a list indented unlike the "
            f"file's others, or a flow sequence over several lines, right next to obsgen's part; write those "
            f"lines in one line or the file's usual indentation, and obsgen keeps them byte for byte")


def unloaded(file_objs: list[Obj], running_config: Any, owner: amtree.Owner, position: str) -> list[str]:
    """Keys of obsgen's parts whose running version (from Alertmanager's status, defaults filled in)
    differs from the file's: the file changed since the last reload, or that reload failed."""
    running = {o.ident: o for o in live_objs(extract(running_config, owner), owner, position) if o.owned}
    stale = []
    for obj in (o for o in file_objs if o.owned):
        have = running.get(obj.ident)
        if have is None or amtree.project(have.body, obj.body) != obj.body:
            stale.append(f"{obj.kind} {obj.key}")
    stale += [f"{o.kind} {o.key}" for ident, o in running.items()
              if ident not in {f.ident for f in file_objs if f.owned}]
    return stale
