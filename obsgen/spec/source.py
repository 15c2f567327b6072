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
from obsgen.spec import bounds

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
        return Problem(self.file, line, col, bounds.cut(f"{where}: {message}" if where else message))


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def read(path: str) -> Located:
    """Load a spec file; raises SpecError (with a location) when it cannot be parsed. Only a regular file of at
    most bounds.MAX_SPEC_BYTES is read (a spec named /dev/zero or a FIFO is refused at once), and no message
    quotes more than a short piece of a value."""
    try:
        return _read(path)
    except SpecError as exc:
        raise SpecError(bounded(exc.problems)) from None


def bounded(problems: list[Problem]) -> list[Problem]:
    """The problems with every message cut to a sane length (bounds.cut)."""
    return [p._replace(message=bounds.cut(p.message)) for p in problems]


def _read(path: str) -> Located:
    display = os.path.relpath(path) if not os.path.isabs(path) else path
    try:
        raw = bounds.read_regular(path, bounds.MAX_SPEC_BYTES)
    except OSError as exc:
        origin = getattr(path, "origin", "")  # a path nobody typed says where it came from (obsgen.cli.common)
        said = f"cannot read spec: {exc.strerror or exc}" + (f" ({origin})" if origin else "")
        raise SpecError([Problem(display, 1, 1, said)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(display, 1, 1, f"spec is not UTF-8: {exc.reason}")]) from None
    if path.endswith((".jsonnet", ".libsonnet")):
        from obsgen.spec import jsonnet

        text = jsonnet.evaluate(path, display, text)
        located = _parse_yaml(text, display)  # JSON is YAML; marks point into the evaluated output
        located.marks, located.key_marks = {(): (1, 1)}, {}  # the evaluated output has no lines the user wrote
    else:
        located = _parse_yaml(text, display)
    located.raw = raw
    return located


def _parse_yaml(text: str, display: str) -> Located:
    import yaml

    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(exc, display, text)]) from None
    except bounds.TooDeep as exc:
        raise SpecError([Problem(display, exc.mark.line + 1, exc.mark.column + 1,
                                 f"lists and mappings nested more than {bounds.MAX_DEPTH} levels deep; a spec "
                                 f"needs far fewer")]) from None
    located = Located(display, None)
    if node is None:
        raise SpecError([Problem(display, 1, 1, "spec is empty")])
    try:
        bounds.check_aliases(node)
    except bounds.AliasProblem as exc:
        where = format_path(exc.path)
        mark = exc.node.start_mark
        raise SpecError([Problem(display, mark.line + 1, mark.column + 1,
                                 f"{where + ': ' if where else ''}{exc.message}")]) from None
    problems: list[Problem] = []
    located.data = _convert(node, (), located, problems)
    if problems:
        raise SpecError(problems)
    return located


def _compose(text: str) -> Any:
    """The document's node graph; nesting is checked first from the parser's events (no recursion), so that
    composing (recursive) cannot overflow the stack."""
    import yaml

    fast = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:  # libyaml's composer keeps the same marks, faster
        bounds.check_depth(text, fast)
        return yaml.compose(text, Loader=fast)
    except yaml.MarkedYAMLError:  # the pure-Python parser words its errors the way we report them
        bounds.check_depth(text, yaml.SafeLoader)
        return yaml.compose(text, Loader=yaml.SafeLoader)


def _yaml_problem(exc: Any, display: str, text: str) -> Problem:
    """The parser's complaint, at the place to fix, with what usually causes it in plain words.

    The position is where the parser gave up, except for a key without its ':' and a quote never closed,
    where that is the next line or the end of the file: there it is the key or the opening quote."""
    problem, context = exc.problem or "", exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    opened = exc.context_mark
    at = f"line {opened.line + 1}, column {opened.column + 1}" if opened else "above"
    hint = ""
    lines = text.splitlines()
    where = exc.problem_mark
    before = lines[where.line][:where.column] if where and where.line < len(lines) else ""  # the text it read
    if "'\\t'" in problem or "tab character" in problem:
        hint = "YAML indents with spaces, never tabs: replace the tab with spaces"
    elif "that cannot start any token" in problem:
        char = problem.split("'")[1] if problem.count("'") >= 2 else "it"
        hint = f"a plain value cannot start with {char!r}: put the value in quotes"
    elif "could not find expected ':'" in problem and opened:
        mark = opened
        hint = ("this line is not `key: value`: add the ':' and a space after the key, or indent the line "
                "to continue the value above")
    elif "quoted scalar" in context and "end of stream" in problem and opened:
        mark = opened
        hint = "the quote opened here is never closed: add the closing quote"
    elif "{{" in before:
        hint = ("a value holding a {{ template }} must be quoted as a whole, e.g. "
                "summary: '{{ $labels.step_id }} failed'")
    elif "mapping values are not allowed here" in problem:
        hint = ("quote a value that contains ': ' (summary: 'step: failed'), or add the ':' a key on the line "
                "above is missing, or indent this line like the keys beside it")
    elif "flow sequence" in context and "expected ','" in problem:
        hint = (f"the '[' at {at} is never closed: add the ']', or quote the value if it is text that starts "
                f"with '['")
    elif "flow mapping" in context and "expected ','" in problem:
        hint = (f"the '{{' at {at} is never closed: add the '}}', or quote the value if it is text that starts "
                f"with '{{', such as a {{{{ template }}}}")
    elif "expected <block end>" in problem and "'-'" in problem:
        hint = ("a list item where a key was expected: indent the list under its key, or make every entry of "
                "this block a list item")
    elif "expected <block end>" in problem and "<scalar>" in problem:
        hint = ("text after a complete value: a value that starts with a quote, '[' or '{' ends where it "
                "closes, so quote the whole value (summary: '[kernel] failed'), or indent this line like the keys "
                "beside it")
    elif "expected <block end>" in problem:
        hint = "this line is indented differently from the keys beside it: line it up with them"
    elif "unknown escape character" in problem:
        hint = "in double quotes a backslash starts an escape: write \\\\ for a backslash, or use single quotes"
    elif "undefined alias" in problem:
        hint = "'*' starts an alias of an '&' anchor: quote the value if it is text that starts with '*'"
    elif "another document" in problem:
        hint = "a spec is one YAML document: remove the '---' line"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    said = problem if not context or context.startswith("while") else f"{context}, {problem}"
    message = f"invalid YAML: {said or context}" + (f"; {hint}" if hint else "")
    return Problem(display, line, col, message)


def _convert(node: Any, path: Path_, located: Located, problems: list[Problem]) -> Any:
    import yaml

    located.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                where = format_path(path)
                problems.append(Problem(located.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                        f"{where + ': ' if where else ''}YAML reads a value that starts with "
                                        f"'{{' or '[' as a mapping or list, and this one has a mapping or list "
                                        f"as a key: quote the value (a {{{{ template }}}} always needs quotes)"))
                continue
            key = str(_scalar_at(key_node, path, located, problems))
            located.key_marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key == "<<":
                problems.append(Problem(located.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                        "YAML merge keys (<<) are not supported; write the keys out"))
                continue
            if key in out:
                problems.append(Problem(located.file, key_node.start_mark.line + 1,
                                        key_node.start_mark.column + 1,
                                        f"{format_path(path + (key,))}: duplicate key {bounds.shown(key)}"))
                continue
            out[key] = _convert(value_node, path + (key,), located, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), located, problems) for i, item in enumerate(node.value)]
    return _scalar_at(node, path, located, problems)


def _scalar_at(node: Any, path: Path_, located: Located, problems: list[Problem]) -> Any:
    """A scalar's value; a tag obsgen cannot read (`!foo x`, `!!int x`) is a problem at the value."""
    import yaml

    try:
        return _scalar(node)
    except (yaml.YAMLError, ValueError, TypeError):
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        where = format_path(path)
        problems.append(Problem(located.file, node.start_mark.line + 1, node.start_mark.column + 1,
                                f"{where + ': ' if where else ''}cannot read {bounds.shown(node.value)} as {tag}: remove "
                                f"the tag, or quote the value if it is text"))
        return None


_SCALAR_LOADER = None


def _scalar(node: Any) -> Any:
    global _SCALAR_LOADER
    import yaml

    if _SCALAR_LOADER is None:
        _SCALAR_LOADER = yaml.SafeLoader("")
    return _SCALAR_LOADER.construct_object(node, deep=True)
