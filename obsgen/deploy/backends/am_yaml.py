"""Round-trip YAML for configs other teams share: comments, key order, quoting and layout kept.

obsgen merges its subtree into an Alertmanager config someone else wrote; with
ruamel.yaml's round trip, everything it does not change is written back as it
was read (PyYAML would drop every comment and re-flow the file).
"""
from __future__ import annotations

import re
from typing import Any

from obsgen.compile import amtree


def yaml(indent: tuple[int, int, int] | None = None) -> Any:
    from ruamel.yaml import YAML

    rt = YAML()  # round trip: comments, key order and quoting of other teams' parts are kept
    rt.preserve_quotes = True
    rt.width = 4096
    if indent:
        mapping, sequence, offset = indent
        rt.indent(mapping=mapping, sequence=sequence, offset=offset)
    return rt


def dump(document: Any, indent: tuple[int, int, int] | None = None) -> bytes:
    import io

    out = io.StringIO()
    yaml(indent).dump(document, out)
    return out.getvalue().encode()


_KEY_ONLY = re.compile(r"^( *)[^\s#'\"-][^:#]*:\s*(#.*)?$")


def indentation(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation of a YAML file's block style, as ruamel's `YAML.indent`
    takes it: written back with it, a merged file keeps the layout of everyone else's parts
    (`routes:` then `  - matchers:` stays so). PyYAML's style (2, 2, 0) where the file shows none."""
    mapping = offset = None
    parent = None  # the indentation of the last line that was a key alone (`routes:`)
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        column = len(line) - len(stripped)
        if parent is not None and column >= parent:
            if stripped.startswith("- "):
                offset = column - parent if offset is None else offset
            elif column > parent and mapping is None:
                mapping = column - parent
        if mapping is not None and offset is not None:
            break
        found = _KEY_ONLY.match(line)
        parent = len(found.group(1)) if found else None
    mapping = mapping if mapping and mapping > 0 else 2
    offset = offset or 0
    return mapping, offset + 2, offset


def release_comments(document: Any, owner: amtree.Owner) -> None:
    """Comments in the lists obsgen changes (the root's routes, receivers, inhibit rules) kept with what
    they describe: a comment belongs to the item below it, or to the end of the list.

    ruamel.yaml keeps comment lines that follow an item inside that item's last value, and those above
    a list's first item with the list; so replacing obsgen's route would drop the comment above the
    next team's route, and inserting obsgen's route first would put it under another team's comment.
    This moves such lines to where they belong, before obsgen's parts are merged in: above the next
    item, to the end of the list (after anything appended), or above the first item. Comments inside
    obsgen's items and at the end of their lines are obsgen's and go with them."""
    from ruamel.yaml.comments import CommentedSeq

    parts = amtree.extract(document, owner)
    root = document.get("route")
    lists = [(root, "routes", [parts.route])] if isinstance(root, dict) else []
    lists += [(document, "receivers", list(parts.receivers.values())),
              (document, "inhibit_rules", parts.inhibit_rules)]
    for parent, key, mine in lists:
        items = parent.get(key)
        if not isinstance(items, CommentedSeq) or not items:
            continue
        leading = items.ca.comment[1] if items.ca.comment and len(items.ca.comment) > 1 else None
        if leading:
            items.ca.comment[1] = None
            above = getattr(parent, "ca", None)
            if above is not None and key in above.items and len(above.items[key]) > 3:
                above.items[key][3] = None
            _before(items, 0).extend(leading)
        for index, item in enumerate(items):
            if not (any(item is m for m in mine) or index == len(items) - 1):
                continue
            lines = _trailing_lines(item)
            if not lines:
                continue
            if index + 1 < len(items):
                _before(items, index + 1)[:0] = lines
            else:
                items.ca.end = lines + list(items.ca.end or ())
                if items.ca.comment is None:  # ruamel writes `end` only for a list with a comment slot
                    items.ca.comment = [None, None]


def _before(items: Any, index: int) -> list[Any]:
    slot = items.ca.items.setdefault(index, [None, None, None, None])
    if slot[1] is None:
        slot[1] = []
    return slot[1]


def _trailing_lines(item: Any) -> list[Any]:
    """The whole comment and blank lines after `item`'s last line, taken out of it (as comment tokens);
    a comment at the end of that line stays."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    node, slot, at = item, None, None
    while isinstance(node, (dict, list)) and node and getattr(node, "ca", None) is not None:
        last = list(node)[-1] if isinstance(node, dict) else len(node) - 1
        slot, at = node.ca.items.get(last), 2 if isinstance(node, dict) else 0
        node = node[last]
    token = slot[at] if slot and len(slot) > at else None
    if token is None or "\n" not in token.value:
        return []
    end_of_line, _, rest = token.value.partition("\n")
    if not rest:
        return []
    slot[at] = CommentToken(end_of_line + "\n", CommentMark(token.column)) if end_of_line.strip() else None
    lines = []
    for line in rest.splitlines():
        text = line.strip()
        lines.append(CommentToken(text + "\n", CommentMark(len(line) - len(line.lstrip()) if text else 0)))
    return lines


def block(value: Any) -> Any:
    """A generated part with its multi-line strings (Slack texts) as YAML block scalars."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, dict):
        return {k: block(v) for k, v in value.items()}
    if isinstance(value, list):
        return [block(v) for v in value]
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value
