"""Read a spec file (YAML, JSON or Jsonnet) into plain data plus line marks.

`Located.mark(path)` gives the 1-based (line, col) of any value by its path
(a tuple of keys and list indexes), falling back to the nearest ancestor, so
every problem can be reported as file:line:col.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from obsgen.errors import Problem, SpecError

Path_ = tuple[Any, ...]


@dataclass
class Located:
    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    raw: bytes = b""

    def mark(self, path: Path_, at_key: bool = False) -> tuple[int, int]:
        path = tuple(path)
        if at_key and path in self.key_marks:
            return self.key_marks[path]
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))

    def problem(self, path: Path_, message: str, at_key: bool = False) -> Problem:
        """A problem located at the value of `path` (or at its key, with at_key)."""
        line, col = self.mark(path, at_key)
        where = format_path(path)
        return Problem(self.file, line, col, f"{where}: {message}" if where else message)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def read(path: str) -> Located:
    """Load a spec file; raises SpecError (with a location) when it cannot be parsed."""
    display = os.path.relpath(path) if not os.path.isabs(path) else path
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise SpecError([Problem(display, 1, 1, f"cannot read spec: {exc.strerror}")]) from None
    if path.endswith((".jsonnet", ".libsonnet")):
        text = _evaluate_jsonnet(path, display)
        located = _parse_yaml(text, display)  # JSON is YAML; marks point into the evaluated output
        located.marks, located.key_marks = {(): (1, 1)}, {}  # the evaluated output has no lines the user wrote
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError([Problem(display, 1, 1, f"spec is not UTF-8: {exc.reason}")]) from None
        located = _parse_yaml(text, display)
    located.raw = raw
    return located


def _evaluate_jsonnet(path: str, display: str) -> str:
    import re

    import _jsonnet

    try:
        return _jsonnet.evaluate_file(path)
    except RuntimeError as exc:
        msg = str(exc).strip()
        # jsonnet reports "STATIC ERROR: file:line:col: message" or "RUNTIME ERROR: msg\n\tfile:line:col..."
        m = re.search(r"(?:^|\s)[^\s:]+:(\d+):(\d+)(?:-\d+)?", msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        first = re.sub(r"\s*[^\s:]+:\d+:\d+(?:-\d+)?:?", "", msg.splitlines()[0])
        raise SpecError([Problem(display, line, col, f"jsonnet: {first}")]) from None


def _parse_yaml(text: str, display: str) -> Located:
    import yaml

    try:
        try:  # libyaml's composer keeps the same marks, faster
            node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.MarkedYAMLError:  # the pure-Python parser words its errors the way we report them
            node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError([Problem(display, line, col, f"invalid YAML: {exc.problem or exc.context}")]) from None
    located = Located(display, None)
    if node is None:
        raise SpecError([Problem(display, 1, 1, "spec is empty")])
    problems: list[Problem] = []
    located.data = _convert(node, (), located, problems)
    if problems:
        raise SpecError(problems)
    return located


def _convert(node: Any, path: Path_, located: Located, problems: list[Problem]) -> Any:
    import yaml

    located.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else "?"
            located.key_marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key == "<<":
                problems.append(Problem(located.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                        "YAML merge keys (<<) are not supported; write the keys out"))
                continue
            if key in out:
                problems.append(Problem(located.file, key_node.start_mark.line + 1,
                                        key_node.start_mark.column + 1,
                                        f"{format_path(path + (key,))}: duplicate key {key!r}"))
                continue
            out[key] = _convert(value_node, path + (key,), located, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), located, problems) for i, item in enumerate(node.value)]
    return _scalar(node)


_SCALAR_LOADER = None


def _scalar(node: Any) -> Any:
    global _SCALAR_LOADER
    import yaml

    if _SCALAR_LOADER is None:
        _SCALAR_LOADER = yaml.SafeLoader("")
    return _SCALAR_LOADER.construct_object(node, deep=True)
