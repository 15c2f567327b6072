"""Which files under an output directory are obsgen's: the ones its manifests say it wrote.

An output directory holds one tree per environment, `<out>/<env>/`, and each tree holds the
manifest obsgen wrote there (`<env>/manifest.json`, see obsgen.compile.manifest), listing every
file of that environment relative to the tree. obsgen removes only what a trusted manifest lists:
a manifest is trusted when it is a regular file, its "generator" starts with "obsgen" and its
"environment" names its own directory; an entry is followed only when it stays inside its tree
(no `..`, no absolute path, no symlinked directory on the way). Everything else under the output
directory belongs to someone else and is never removed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from obsgen.errors import ObsgenError

MANIFEST = "manifest.json"  # the name obsgen.compile.manifest writes (not imported: check's fast path stays lean)


def manifest_files(out: Path, env: str) -> set[str] | None:
    """The files obsgen's manifest in `<out>/<env>/` says it wrote (the manifest included), as POSIX paths
    relative to `out`; None when there is no trusted manifest. Entries that would leave the tree are dropped."""
    root = out / env
    path = root / MANIFEST
    if root.is_symlink() or not root.is_dir() or path.is_symlink() or not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not (isinstance(manifest, dict) and str(manifest.get("generator", "")).startswith("obsgen")
            and manifest.get("environment") == env and isinstance(manifest.get("files"), dict)):
        return None
    return {f"{env}/{MANIFEST}"} | {f"{env}/{entry}" for entry in manifest["files"] if _inside(entry)}


def _inside(entry: object) -> bool:
    """Whether a manifest entry is a plain relative path that names something inside its tree."""
    if not isinstance(entry, str) or not entry or "\0" in entry or "\\" in entry or entry.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in entry.split("/"))


def obsgen_envs(out: Path) -> list[str]:
    """The environment trees directly under `out` that hold a trusted obsgen manifest."""
    try:
        children = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    except OSError as exc:
        raise ObsgenError(f"cannot read {out}: {exc.strerror}") from None
    return [name for name in children if manifest_files(out, name) is not None]


def candidate_envs(out: Path) -> list[str]:
    """Directories directly under `out` holding a file named manifest.json, trusted or not: a cheap superset
    of obsgen_envs for the check fast path (hashing more than needed never hides a change)."""
    try:
        children = sorted(os.listdir(out)) if out.is_dir() else []
    except OSError:
        return []
    return [name for name in children if (out / name / MANIFEST).is_file()]


def tree_files(out: Path, env: str, *, enter_linked_root: bool = False) -> set[str]:
    """Every file (and symlink) under `<out>/<env>/`, relative to `out`. Symlinked directories are not entered,
    nor is a tree that is itself a symlink unless `enter_linked_root` (the fast path hashes what it holds)."""
    root = out / env
    if (root.is_symlink() and not enter_linked_root) or not root.is_dir():
        return set()
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        links = [d for d in dirnames if (here / d).is_symlink()]
        for name in [*filenames, *links]:
            found.add((here / name).relative_to(out).as_posix())
    return found


def safe_to_remove(out: Path, rel: str) -> bool:
    """Whether `<out>/<rel>` (a manifest entry, `<env>/...`) is a file or symlink reached without leaving
    `<out>/<env>/`: every directory on the way is a real directory, not a symlink."""
    env, _, entry = rel.partition("/")
    if not _inside(env) or not _inside(entry):
        return False
    path = out / env
    for part in PurePosixPath(entry).parts[:-1]:
        if path.is_symlink() or not path.is_dir():
            return False
        path = path / part
    if path.is_symlink() or not path.is_dir():
        return False
    target = path / PurePosixPath(entry).name
    real_root = os.path.realpath(out / env)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        return False
    return target.is_symlink() or target.is_file()


def refuse_foreign(out: Path, allow_nonempty: bool = False) -> None:
    """Refuse to build into a directory that holds files but no obsgen manifest (it is someone else's),
    unless the user said so explicitly."""
    if out.exists() and not out.is_dir():
        raise ObsgenError(f"cannot build into {out}: it is not a directory")
    if allow_nonempty or not out.is_dir() or obsgen_envs(out) or not _holds_files(out):
        return
    raise ObsgenError(f"refusing to build into {out.as_posix()}/: it is not empty and holds no obsgen manifest "
                      f"(<env>/manifest.json); choose an empty or new directory, or pass --allow-nonempty to "
                      f"write there anyway (obsgen never removes files it did not write)")


def _holds_files(root: Path) -> bool:
    try:
        for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
            if filenames or any(os.path.islink(os.path.join(dirpath, d)) for d in dirnames):
                return True
    except OSError as exc:
        raise ObsgenError(f"cannot read {root}: {exc.strerror}") from None
    return False


def _raise(exc: OSError) -> None:
    raise exc


def first_link(out: Path, rels: list[str]) -> Path | None:
    """The first symlink on the way to any of `rels` (paths relative to `out`): `out` itself, each directory
    of a relative `out` (`docs` of `--out docs/observability`), each directory inside it, or the file itself.
    obsgen never creates a symlink, so any symlink there is someone else's and is neither written through nor
    followed; None when there is none."""
    prefixes = [Path(*out.parts[:i]) for i in range(1, len(out.parts))] if not out.is_absolute() else []
    for path in [*prefixes, out]:
        if path.is_symlink():
            return path
    seen: set[str] = set()
    for rel in rels:
        parts = PurePosixPath(rel).parts
        for i in range(1, len(parts) + 1):
            step = "/".join(parts[:i])
            if step in seen:
                continue
            seen.add(step)
            path = out / step
            if path.is_symlink():
                return path
            if i < len(parts) and not path.is_dir():
                break  # nothing below a missing directory exists yet
    return None


def refuse_links(out: Path, rels: list[str], *, writing: bool) -> None:
    """Raise ObsgenError naming the first symlink on the way to `rels` (see first_link), for a build
    (`writing`) or a check."""
    link = first_link(out, rels)
    if link is None:
        return
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    doing, verb = ("refusing to build into", "writes through") if writing else ("cannot check", "follows")
    raise ObsgenError(f"{doing} {out.as_posix()}/: {link.as_posix()} is a symlink (to {target}), and obsgen never "
                      f"{verb} a symlink it did not create; replace it with a directory or remove it")
