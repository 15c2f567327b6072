"""The manifest of one environment: obsgen version, every file's digest, a digest of them all, and a
digest of what they were compiled from.

The manifest is the one file that records what built the tree -- obsgen's version and the spec file's
name -- so that no other file (and no live object) names either (see obsgen.compile.render): after an
upgrade or a rename of the spec, `obsgen check` reports the manifests alone and `obsgen build` rewrites
only them. It is never deployed.

A manifest depends only on its own environment's files and inputs, never on the spec as a whole: a change
that alters only prod's output rewrites only prod's manifest. `inputs_sha256` is the digest of the
environment's compile input -- obsgen's version and the model seen by the environment's compile (the spec
with only that environment in it, see `obsgen.compile.scoped`) -- so `diff` and `apply` can take the files
as they are when it matches, instead of compiling again (obsgen.output.compiled). `files_sha256` is the sha256 of what
`sha256sum` prints for the environment's files in path order (the manifest itself left out), so in
`generated/prod/`, `jq -r '.files | keys[]' manifest.json | LC_ALL=C sort | xargs sha256sum | sha256sum`
reproduces it from the files on disk.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace

from obsgen import __version__

from obsgen.compile import render
from obsgen.model.artifact import Artifact
from obsgen.model import Environment, Model

MANIFEST = "manifest.json"


def compile_manifest(model: Model, env: Environment, artifacts: list[Artifact]) -> Artifact:
    prefix = f"{env.name}/"
    files = {a.path[len(prefix):]: hashlib.sha256(a.content).hexdigest() for a in artifacts
             if a.path.startswith(prefix)}
    return Artifact(f"{env.name}/{MANIFEST}", render.to_json({
        "generator": f"obsgen v{__version__}",
        "spec": model.source,
        "environment": env.name,
        "files": files,
        "files_sha256": files_digest(files),
        "inputs_sha256": inputs_digest(model, env),
    }))


def inputs_digest(model: Model, env: Environment) -> str:
    """sha256 of obsgen's version and the model an environment's compile sees. The model is frozen data
    (tuples, dicts in the spec's order, numbers, strings: no sets), so its repr is exact and stable; the
    spec file's own digest is left out, so a comment or another environment's change leaves it as it is,
    and so is its file name, which no generated file but the manifest holds. The version stays in: after an
    upgrade `diff` and `apply` compile again rather than trust files an older obsgen wrote."""
    seen = replace(model, environments=(env,), digest="", source="")
    return hashlib.sha256(f"obsgen {__version__}\n{seen!r}".encode()).hexdigest()


def files_digest(files: dict[str, str]) -> str:
    """sha256 of the `sha256sum` listing of `files` (path -> hex digest), in path order."""
    listing = "".join(f"{digest}  {path}\n" for path, digest in sorted(files.items()))
    return hashlib.sha256(listing.encode()).hexdigest()
