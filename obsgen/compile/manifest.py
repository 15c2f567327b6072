"""The manifest of one environment: obsgen version, spec digest and every file's digest."""
from __future__ import annotations

import hashlib

from obsgen import __version__, render
from obsgen.artifact import Artifact
from obsgen.model import Environment, Model

MANIFEST = "manifest.json"


def compile_manifest(model: Model, env: Environment, artifacts: list[Artifact]) -> Artifact:
    prefix = f"{env.name}/"
    files = {a.path[len(prefix):]: hashlib.sha256(a.content).hexdigest() for a in artifacts
             if a.path.startswith(prefix)}
    return Artifact(f"{env.name}/{MANIFEST}", render.to_json({
        "generator": f"obsgen v{__version__}",
        "spec": model.source,
        "spec_sha256": model.digest,
        "environment": env.name,
        "files": files,
    }))
