"""Take an environment's deployed files from the output directory instead of compiling them again.

`diff` and `apply` need the files obsgen would deploy (dashboards, rule files, routing). When
`<out>/<env>/manifest.json` was written by this version of obsgen from the same model
(`inputs_sha256`, see obsgen.compile.manifest) and every file it lists for the deployed targets is on disk
with the digest it lists, those files are exactly what a compile would produce, and they are read
instead. Anything else -- no manifest, another spec or version, a file edited, missing, added to a
deployed directory, a link, or unreadable -- returns None and the caller compiles: this is a short cut,
never a second source of truth. `obsgen check` (which compiles and trusts nothing committed) is what
proves a committed output matches its spec.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Collection

from obsgen.model.artifact import Artifact
from obsgen.compile import DEPLOYED
from obsgen.compile.manifest import MANIFEST, inputs_digest
from obsgen.model import Environment, Model

MAX_FILE = 64 << 20  # a file bigger than this is not read here (the compile decides)


def read_deployed(out: Path, model: Model, env: Environment, targets: Collection[str]) -> list[Artifact] | None:
    """The artifacts of `targets` (names of obsgen.compile.DEPLOYED) as a compile of `env` would give
    them, read from `out`; None when the output cannot be shown to be that compile."""
    root = out / env.name
    if root.is_symlink():
        return None
    manifest = _read(root / MANIFEST)
    if manifest is None:
        return None
    try:
        document = json.loads(manifest)
        listed: dict[str, str] = document["files"]
        if document.get("inputs_sha256") != inputs_digest(model, env) or not isinstance(listed, dict):
            return None
    except (ValueError, KeyError, TypeError):
        return None
    prefixes = tuple(DEPLOYED[t] for t in targets)
    wanted = {rel: digest for rel, digest in listed.items() if isinstance(rel, str) and rel.startswith(prefixes)}
    if _on_disk(root, prefixes) != set(wanted):  # (None, for a linked directory, never equals)  # a file added to (or missing from) a deployed directory
        return None
    artifacts = []
    for rel in sorted(wanted):
        content = _read(root / rel)
        if content is None or hashlib.sha256(content).hexdigest() != wanted[rel]:
            return None
        artifacts.append(Artifact(f"{env.name}/{rel}", content))
    return artifacts


def _on_disk(root: Path, prefixes: tuple[str, ...]) -> set[str] | None:
    """Every entry under the deployed directories, as paths relative to the environment's tree (None when
    a deployed directory is a link: its files could change under the read)."""
    found: set[str] = set()
    for prefix in prefixes:
        directory = root / prefix.rstrip("/")
        if directory.is_symlink():
            return None
        if not directory.exists():
            continue
        for base, dirs, names in os.walk(directory):
            for name in dirs + names:
                path = Path(base) / name
                if not path.is_dir() or path.is_symlink():
                    found.add(path.relative_to(root).as_posix())
    return found


def _read(path: Path) -> bytes | None:
    """A regular file's bytes (not through a link, at most MAX_FILE); None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            content = handle.read(MAX_FILE + 1)
        return content if len(content) <= MAX_FILE else None
    except OSError:
        return None
    finally:
        os.close(fd)
