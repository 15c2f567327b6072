"""The drift check's fast path: skip regeneration only when it provably cannot find drift.

After a build, or a full check that found the output clean, a stamp records three things:
the spec's digest, obsgen's own build fingerprint (a digest of every file of the installed
package, so any change to the generator counts), and the digest of every file in the environment
trees of the output scopes (`<out>/<env>/` for every environment named, or for a check of the whole
output every directory directly under it holding a manifest.json -- a superset of what the full check
compares, which covers the spec's environments and every obsgen manifest; files elsewhere under the
output directory, e.g. the rest of a checkout with `--out .`, are neither compared nor hashed). `obsgen check` may then answer "clean" without compiling, but only if all three still
match: the spec file is unchanged, the generator is unchanged, and no file was edited, added or
removed. Any mismatch (or any doubt: a Jsonnet spec, whose imports the digest does not cover)
falls back to the full compile-and-compare. The stamp lives in the local state directory, never
in the output, so it cannot be committed or shared.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from obsgen.output.files import atomic_write, state_dir
from obsgen.output import ownership

SINGLE_FILE_SPECS = (".yaml", ".yml", ".json")


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """A digest of obsgen itself -- every file of the package, by path and content -- and of what it
    runs on: the Python version and every installed distribution's name and version (a new PyYAML
    could format YAML differently)."""
    import sys

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".json")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for entry in sorted(set(sys.path)):
        if entry.endswith("-packages") and os.path.isdir(entry):
            digest.update("\0".join(sorted(n for n in os.listdir(entry) if n.endswith(".dist-info"))).encode())
    return digest.hexdigest()


def _key(spec: str, out: Path, scopes: list[str]) -> str:
    return hashlib.sha256(json.dumps([os.path.abspath(spec), os.path.abspath(out), sorted(scopes)]).encode()
                          ).hexdigest()[:24]


def _current(spec: str, out: Path, scopes: list[str]) -> dict[str, object] | None:
    if not spec.endswith(SINGLE_FILE_SPECS):
        return None
    envs = ownership.candidate_envs(out) if "" in scopes else scopes
    if ownership.first_link(out, list(envs)) is not None:  # the full check names it instead of following it
        return None
    try:
        spec_sha = hashlib.sha256(Path(spec).read_bytes()).hexdigest()
        files = {rel: hashlib.sha256((out / rel).read_bytes()).hexdigest() for rel in sorted(_files(out, scopes))}
    except OSError:
        return None
    return {"spec_sha256": spec_sha, "fingerprint": fingerprint(), "files": files}


def _files(out: Path, scopes: list[str]) -> set[str]:
    """The files whose digests the stamp holds: every file of every environment tree in scope."""
    envs = ownership.candidate_envs(out) if "" in scopes else scopes
    return set().union(*(ownership.tree_files(out, env, enter_linked_root=True) for env in envs))


def record(spec: str, out: Path, scopes: list[str]) -> None:
    """Stamp the output as matching the spec (call only right after a build or a clean full check)."""
    state = _current(spec, out, scopes)
    if state is None:
        return
    try:
        state_dir().mkdir(parents=True, exist_ok=True)
        atomic_write(state_dir() / f"check-{_key(spec, out, scopes)}.json", json.dumps(state).encode())
    except OSError:
        pass  # the fast path is an optimisation; never fail a build over it


def clean(spec: str, out: Path, scopes: list[str]) -> int | None:
    """The number of files when the stamp proves the output matches the spec; None when unsure."""
    try:
        stamp = json.loads((state_dir() / f"check-{_key(spec, out, scopes)}.json").read_bytes())
    except (OSError, ValueError):
        return None
    current = _current(spec, out, scopes)
    if current is None or current != stamp:
        return None
    return len(current["files"])  # type: ignore[arg-type]
