"""Evaluate a Jsonnet spec with its imports confined to the spec's own directory tree.

A spec may come from a pull request and be evaluated on a CI runner that holds secrets. Jsonnet's
`import`, `importstr` and `importbin` would read any file the runner can (`/proc/self/environ`,
`../../.git/config`, `~/.docker/config.json`) and a spec could print it through any string field. So
every import goes through `_Imports`: an absolute path, a path that leaves the spec's directory (by `..`
or by a symlink resolving elsewhere), a hidden file or directory (`.git/config` from a spec at the top of
a checkout), anything but a regular file, and a file over the size cap are refused; the refusal is a spec
error at the import's line. Jsonnet's library search path (`-J`) is never used.
"""
from __future__ import annotations

import os
import re

from obsgen.errors import Problem, SpecError
from obsgen.spec import bounds


NO_SUCH_FILE = "no such file"


class _Refused(Exception):
    """An import the spec may not make; the message says why."""


class _Imports:
    """The import callback (`_jsonnet`'s contract: called with the importing file's directory and the path as
    written; returns (the path it was found at, its bytes) or raises, which fails the import)."""

    def __init__(self, spec_path: str):
        self.root = os.path.realpath(os.path.dirname(os.path.abspath(spec_path)))
        self.refused: list[tuple[str, str]] = []  # (path as written, why), in the order jsonnet asked

    def __call__(self, base: str, rel: str) -> tuple[str, bytes]:
        try:
            return self._load(base, rel)
        except _Refused as exc:
            self.refused.append((rel, str(exc)))
            raise

    def _load(self, base: str, rel: str) -> tuple[str, bytes]:
        if not rel or "\0" in rel:
            raise _Refused("an empty or invalid path")
        if os.path.isabs(rel):
            raise _Refused("an absolute path")
        wanted = os.path.normpath(os.path.join(os.path.abspath(base or "."), rel))
        real = os.path.realpath(wanted)
        if os.path.commonpath([self.root, real]) != self.root:
            how = "a symlink" if os.path.commonpath([self.root, wanted]) == self.root else "'..'"
            raise _Refused(f"it leads out of the spec's directory (through {how})")
        if any(part.startswith(".") for part in os.path.relpath(real, self.root).split(os.sep)):
            raise _Refused("a hidden file or directory")
        try:
            content = bounds.read_regular(real, bounds.MAX_SPEC_BYTES)
        except FileNotFoundError:
            raise _Refused(NO_SUCH_FILE) from None
        except bounds.Unreadable as exc:
            raise _Refused(str(exc)) from None
        except OSError as exc:
            raise _Refused(exc.strerror or "cannot read it") from None
        return real, content


def evaluate(path: str, display: str, text: str) -> str:
    """The spec's JSON output; a SpecError (file:line:col) for a refused import or any Jsonnet error."""
    import _jsonnet

    imports = _Imports(path)
    try:
        return _jsonnet.evaluate_snippet(path, text, import_callback=imports)
    except RuntimeError as exc:
        msg = str(exc).strip()
    if imports.refused:
        rel, why = imports.refused[-1]
        file, line, col = _innermost_frame(msg, path, display)
        message = (f"jsonnet: cannot import {bounds.shown(rel)}: no such file" if why == NO_SUCH_FILE else
                   f"jsonnet: import {bounds.shown(rel, bounds.PATH_CHARS)} refused: {why}; a spec imports only files inside the "
                   f"spec's directory ({_shown_dir(imports.root)}), never hidden ones")
        raise SpecError([Problem(file, line, col, message)]) from None
    # jsonnet reports "STATIC ERROR: file:line:col: message" or "RUNTIME ERROR: msg\n\tfile:line:col..."
    m = re.search(r"(?:^|\s)[^\s:]+:(\d+):(\d+)(?:-\d+)?", msg)
    line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
    first = re.sub(r"\s*[^\s:]+:\d+:\d+(?:-\d+)?:?", "", msg.splitlines()[0])
    raise SpecError([Problem(display, line, col, bounds.cut(f"jsonnet: {first}"))]) from None


def _innermost_frame(msg: str, path: str, display: str) -> tuple[str, int, int]:
    """Where the failed import is written: the first frame of jsonnet's stack trace (the spec or a file it
    imports), shown as the spec is shown."""
    m = re.search(r"^\t(\S+?):(\d+):(\d+)", msg, re.MULTILINE)
    if not m:
        return display, 1, 1
    file = m.group(1)
    if os.path.abspath(file) == os.path.abspath(path):
        file = display
    elif not os.path.isabs(display):
        file = os.path.relpath(file)
    return file, int(m.group(2)), int(m.group(3))


def _shown_dir(root: str) -> str:
    rel = os.path.relpath(root)
    return root if rel.startswith("..") else rel
