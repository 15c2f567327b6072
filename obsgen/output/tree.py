"""The one writer of generated/, and the drift check that compares it with a fresh build.

An output tree is scoped: a build of every environment owns every environment tree `<out>/<env>/`
(the spec's and any an obsgen manifest names); a build of some environments owns only theirs. Within
its scope obsgen writes what the spec produces and removes only what its previous manifests list
(obsgen.output.ownership); a file it did not write is never removed, and files outside the
environment trees are never looked at. A symlink on the way to a file the build produces (the output
directory, a directory in it, the file itself) is never written through nor read through: obsgen creates
none, so it is someone else's (a pull request can commit `generated/dev/grafana -> ~/.docker`), and both
`write` and `compare` refuse before touching anything (obsgen.output.ownership.refuse_links).
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple, Sequence, TypeVar

from obsgen.errors import ObsgenError
from obsgen.output.files import atomic_write
from obsgen.output import ownership

if TYPE_CHECKING:
    from obsgen.model.artifact import Artifact

T = TypeVar("T")


class Drift(NamedTuple):
    changed: tuple[tuple[str, str], ...] = ()  # (path, unified diff)
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # obsgen wrote them (a manifest lists them); the spec no longer produces them
    foreign: tuple[str, ...] = ()  # inside an environment tree, not written by obsgen

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.foreign)


class WriteReport(NamedTuple):
    written: tuple[str, ...] = ()
    unchanged: int = 0
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # files inside the environment trees obsgen did not write, left in place


def in_order(items: Iterable[T], order: Sequence[str], key: Callable[[T], str] = str) -> list[T]:
    """Items named by a path `<env>/...` (through `key`), in the spec's environment order (`order`), then
    by path; environments the spec does not name come last, alphabetically."""
    rank = {env: i for i, env in enumerate(order)}

    def position(item: T) -> tuple[int, str, str]:
        path = key(item)
        env = path.split("/", 1)[0]
        return rank.get(env, len(rank)), env, path

    return sorted(items, key=position)


def diff_stat(diff: str) -> tuple[int, int]:
    """(lines added, lines removed) in one file's unified diff (its two header lines not counted)."""
    added = removed = 0
    for line in diff.splitlines()[2:]:
        if line.startswith("+"):
            added += 1
        elif line.startswith("-"):
            removed += 1
    return added, removed


# a changed line of a manifest.json diff that holds a digest: `"path": "<sha256>",`, files_sha256, inputs_sha256
_HASH_LINE = re.compile(r'[+-]\s*"[^"]*": "[0-9a-f]{64}",?')
_HUNK = re.compile(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def without_hash_lines(diff: str) -> tuple[str, int]:
    """A manifest.json diff without its changed hash lines, and how many it had: (the file headers and
    every hunk that still changes something, its line counts updated -- "" when nothing else changed;
    the number of hash lines left out). A digest changes with every file that does; a summary counts
    them rather than show them, so the files' own changes are what it shows."""
    lines = diff.splitlines(keepends=True)
    hunks: list[list[str]] = []
    for line in lines[2:]:
        if line.startswith("@@") or not hunks:
            hunks.append([])
        hunks[-1].append(line)
    kept, hidden = [], 0
    for header, *body in hunks:
        rest = [line for line in body if not _HASH_LINE.fullmatch(line.rstrip("\n"))]
        hidden += len(body) - len(rest)
        if not any(line[:1] in "+-" for line in rest):
            continue
        match = _HUNK.match(header)
        if match:
            old = sum(1 for line in rest if line[:1] in " -")
            new = sum(1 for line in rest if line[:1] in " +")
            header = f"@@ -{match[1]},{old} +{match[2]},{new} @@\n"
        kept += [header, *rest]
    return ("".join(lines[:2] + kept) if kept else ""), hidden


def env_trees(out: Path, artifacts: list[Artifact], scopes: list[str]) -> list[str]:
    """The environment trees a build or check of `scopes` covers: the named environments, or (all of
    the output, scope "") every environment the build produces and every tree holding an obsgen manifest."""
    if "" not in scopes:
        return sorted(scopes)
    return sorted({a.path.split("/", 1)[0] for a in artifacts} | set(ownership.obsgen_envs(out)))


def write(out: Path, artifacts: list[Artifact], scopes: list[str], *, allow_nonempty: bool = False,
          order: Sequence[str] = ()) -> WriteReport:
    """Write changed files atomically and remove the files obsgen wrote before that the spec no longer
    produces; unchanged files and files obsgen did not write are not touched. A non-empty `out` without
    an obsgen manifest is refused (nothing written) unless `allow_nonempty`. What it reports is listed
    in artifact order, then (removed, kept) in the environment `order`."""
    ownership.refuse_links(out, [a.path for a in artifacts], writing=True)  # before anything is written
    ownership.refuse_foreign(out, allow_nonempty)
    trees = env_trees(out, artifacts, scopes)
    previous = set().union(*(ownership.manifest_files(out, env) or set() for env in trees))  # before rewriting
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
    removed = []
    for rel in in_order(previous - wanted, order):
        if ownership.safe_to_remove(out, rel):
            try:
                (out / rel).unlink()
            except OSError as exc:
                raise ObsgenError(f"cannot remove {out / rel}: {exc.strerror}") from None
            removed.append(rel)
    _prune_empty_dirs(out, removed)
    kept = in_order(set().union(*(ownership.tree_files(out, env) for env in trees)) - wanted, order)
    return WriteReport(tuple(written), unchanged, tuple(removed), tuple(kept))


def _prune_empty_dirs(out: Path, removed: list[str]) -> None:
    """Remove the directories the removal of these files left empty (never `out` itself)."""
    dirs = {parent for rel in removed for parent in PurePosixPath(rel).parents if parent != PurePosixPath(".")}
    for rel in sorted(dirs, key=lambda p: -len(p.parts)):
        path = out / rel
        try:
            if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
                path.rmdir()
        except OSError:
            pass  # still in use or not ours to judge: leaving an empty directory is harmless


def compare(out: Path, artifacts: list[Artifact], scopes: list[str], label: str, *,
            order: Sequence[str] = ()) -> Drift:
    """What differs between the environment trees under `out` and a fresh build, as unified diffs. A symlink
    on the way to a file the build produces is refused, never followed (it could show anyone's files)."""
    ownership.refuse_links(out, [a.path for a in artifacts], writing=False)
    changed, missing = [], []
    for artifact in artifacts:
        target = out / artifact.path
        if not target.is_file():
            missing.append(artifact.path)
            continue
        current = target.read_bytes()
        if current != artifact.content:
            changed.append((artifact.path, _diff(out, artifact.path, current, artifact.content, label)))
    trees = env_trees(out, artifacts, scopes)
    owned = set().union(*(ownership.manifest_files(out, env) or set() for env in trees))
    stray = set().union(*(ownership.tree_files(out, env) for env in trees)) - {a.path for a in artifacts}
    return Drift(tuple(changed), tuple(missing), tuple(in_order(stray & owned, order)),
                 tuple(in_order(stray - owned, order)))


def _diff(out: Path, rel: str, current: bytes, wanted: bytes, label: str) -> str:
    import difflib

    shown = (out / rel).as_posix()
    a = current.decode("utf-8", "replace").splitlines(keepends=True)
    b = wanted.decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(a, b, f"{shown} (on disk)", f"{shown} (built from {label})", n=3)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
