"""The one writer of generated/, and the drift check that compares it with a fresh build.

An output tree is scoped: a build of every environment owns the whole
directory; a build of some environments owns only their subdirectories.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from obsgen.errors import ObsgenError
from obsgen.files import atomic_write

if TYPE_CHECKING:
    from obsgen.artifact import Artifact


class Drift(NamedTuple):
    changed: tuple[tuple[str, str], ...] = ()  # (path, unified diff)
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.extra)


class WriteReport(NamedTuple):
    written: tuple[str, ...] = ()
    unchanged: int = 0
    removed: tuple[str, ...] = ()


def existing_files(out: Path, scopes: list[str]) -> set[str]:
    """Files under the scoped directories of `out`, as POSIX paths relative to it."""
    found = set()
    for scope in scopes:
        root = out / scope if scope else out
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if path.is_file() or path.is_symlink():
                found.add(path.relative_to(out).as_posix())
    return found


def write(out: Path, artifacts: list[Artifact], scopes: list[str]) -> WriteReport:
    """Write changed files atomically, remove files no longer produced; unchanged files are not touched."""
    written, unchanged = [], 0
    wanted = {a.path for a in artifacts}
    for artifact in artifacts:
        target = out / artifact.path
        try:
            if target.is_file() and target.read_bytes() == artifact.content:
                unchanged += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, artifact.content)
        except OSError as exc:
            raise ObsgenError(f"cannot write {target}: {exc.strerror}") from None
        written.append(artifact.path)
    removed = sorted(existing_files(out, scopes) - wanted)
    for rel in removed:
        (out / rel).unlink()
    _prune_empty_dirs(out, scopes)
    return WriteReport(tuple(written), unchanged, tuple(removed))


def _prune_empty_dirs(out: Path, scopes: list[str]) -> None:
    for scope in scopes:
        root = out / scope if scope else out
        if not root.is_dir():
            continue
        for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: -len(t[0])):
            if Path(dirpath) != out and not os.listdir(dirpath):
                os.rmdir(dirpath)


def compare(out: Path, artifacts: list[Artifact], scopes: list[str], label: str) -> Drift:
    """What differs between the files under `out` and a fresh build, as unified diffs."""
    changed, missing = [], []
    for artifact in artifacts:
        target = out / artifact.path
        if not target.is_file():
            missing.append(artifact.path)
            continue
        current = target.read_bytes()
        if current != artifact.content:
            changed.append((artifact.path, _diff(out, artifact.path, current, artifact.content, label)))
    extra = sorted(existing_files(out, scopes) - {a.path for a in artifacts})
    return Drift(tuple(changed), tuple(missing), tuple(extra))


def _diff(out: Path, rel: str, current: bytes, wanted: bytes, label: str) -> str:
    import difflib

    shown = (out / rel).as_posix()
    a = current.decode("utf-8", "replace").splitlines(keepends=True)
    b = wanted.decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(a, b, f"{shown} (on disk)", f"{shown} (built from {label})", n=3)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
