"""Limits on what reading a spec may cost, and on how much of it an error message may quote.

A spec can come from a pull request. Reading it must end quickly with a clear error whatever it holds:
a spec path naming /dev/zero or a FIFO, a multi-gigabyte file, a YAML "billion laughs" alias bomb (555
bytes expanding to billions of values), a self-referencing alias, or nesting thousands of levels deep
(Python's recursion limit). And a message that quotes a value (`cannot read 'AAAA…' as !!int`) quotes
at most QUOTE_CHARS of it, so a multi-megabyte value never floods a CI log.
"""
from __future__ import annotations

import os
import re
import stat
from typing import Any

MAX_SPEC_BYTES = 8 * 1024 * 1024  # a spec (or a file it imports) is a small text file
MAX_DEPTH = 64  # lists and mappings inside each other; a real spec needs about 8
MAX_VALUES = 100_000  # values after expanding aliases; a large real spec has a few thousand
QUOTE_CHARS = 80  # of a value quoted in a message
PATH_CHARS = 400  # of a path quoted in a message: the whole path is what the reader needs
LONG_QUOTE = 1000  # a quoted run this long in a message is a value (prose between two apostrophes is shorter)
MESSAGE_CHARS = 1000  # of a whole message


class Unreadable(OSError):
    """A file obsgen refuses to read as a spec: not a regular file, or too large."""


def read_regular(path: str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. The file is opened without blocking (a FIFO
    would otherwise wait for a writer for ever) and checked before anything is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a regular file")
        if info.st_size > limit:
            raise Unreadable(f"it is larger than {_size(limit)} ({_size(info.st_size, 1)}); a spec is a small "
                             f"text file")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:  # it grew while being read
            raise Unreadable(f"it is larger than {_size(limit)}; a spec is a small text file")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _size(n: int, digits: int = 0) -> str:
    return f"{n / (1024 * 1024):.{digits}f} MiB"


def shown(value: Any, limit: int = QUOTE_CHARS) -> str:
    """`repr(value)`, cut to `limit` (default QUOTE_CHARS) characters with an ellipsis."""
    text = repr(value[: limit + 1] if isinstance(value, (str, bytes)) else value)
    if len(text) > limit + 2:
        text = text[:limit] + "…" + text[-1:] if text[-1:] in "'\"" else text[:limit] + "…"
    return text


_QUOTED = re.compile(r"'[^'\n]{%d,}'|\"[^\"\n]{%d,}\"" % (LONG_QUOTE, LONG_QUOTE))


def cut(message: str) -> str:
    """A message with every very long quoted value cut to QUOTE_CHARS, and the whole at most MESSAGE_CHARS: the
    safety net for messages that quote what the spec (or a library reading it) holds. Messages written here
    quote values through `shown`, which cuts them shorter."""
    if len(message) <= LONG_QUOTE:
        return message
    message = _QUOTED.sub(lambda m: m[0][:QUOTE_CHARS] + "…" + m[0][-1], message)
    return message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS] + "…"


class TooDeep(Exception):
    """Lists and mappings nested more than MAX_DEPTH levels; carries the mark where it happened."""

    def __init__(self, mark: Any):
        super().__init__("too deep")
        self.mark = mark


def check_depth(text: str, loader: Any) -> None:
    """Raise TooDeep at the first list or mapping nested more than MAX_DEPTH levels. Reads the parser's
    events, which needs no recursion, so that composing the document afterwards cannot overflow the stack;
    a syntax error surfaces here as the parser's own error."""
    import yaml

    opens, closes = (yaml.SequenceStartEvent, yaml.MappingStartEvent), (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, opens):
            depth += 1
            if depth > MAX_DEPTH:
                raise TooDeep(event.start_mark)
        elif isinstance(event, closes):
            depth -= 1


class AliasProblem(Exception):
    """Aliases that expand too far or refer to the node they are in; `path` is where, in keys and indexes."""

    def __init__(self, path: tuple[Any, ...], node: Any, message: str):
        super().__init__(message)
        self.path, self.node, self.message = path, node, message


def check_aliases(root: Any) -> None:
    """Raise AliasProblem when the document, aliases expanded, holds more than MAX_VALUES values or nests more
    than MAX_DEPTH levels, or when an alias refers to a list or mapping it is inside. Each distinct node is
    visited once (its expanded size and depth remembered), so a bomb is measured without being built; the
    recursion is at most MAX_DEPTH deep because a node is first reached where its anchor is written."""
    import yaml

    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth), aliases expanded
    open_nodes: set[int] = set()

    def visit(node: Any, path: tuple[Any, ...]) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise AliasProblem(path, node, "an alias refers to the list or mapping it is in; write the value out")
        if isinstance(node, yaml.MappingNode):
            children = [(k, v, path + (str(getattr(k, "value", "?")),)) for k, v in node.value]
            pairs = [(k, path) for k, _, _ in children] + [(v, p) for _, v, p in children]
        elif isinstance(node, yaml.SequenceNode):
            pairs = [(item, path + (i,)) for i, item in enumerate(node.value)]
        else:
            sizes[key] = (1, 0)
            return sizes[key]
        open_nodes.add(key)
        values, depth = 1, 0
        for child, child_path in pairs:
            n, d = visit(child, child_path)
            values, depth = values + n, max(depth, d + 1)
        open_nodes.discard(key)
        if values > MAX_VALUES:
            raise AliasProblem(path, node, f"aliases expand this value to more than {MAX_VALUES} values; write "
                                           f"it out without aliases (a spec needs no more than a few)")
        if depth > MAX_DEPTH:
            raise AliasProblem(path, node, f"aliases nest this value more than {MAX_DEPTH} levels deep; write it "
                                           f"out without aliases")
        sizes[key] = (values, depth)
        return sizes[key]

    visit(root, ())
