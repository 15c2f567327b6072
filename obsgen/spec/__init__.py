"""Load a spec (YAML, JSON or Jsonnet), report every problem at once, map it to the model."""
from __future__ import annotations

import os

from obsgen.errors import SpecError
from obsgen.model import Model


def load_spec(path: str) -> Model:
    """Read, validate and map a spec; raises SpecError listing every problem, sorted."""
    from obsgen.spec import checks, mapping, schema, secrets, source

    doc = source.read(path)
    problems = schema.validate(doc) + checks.run(doc) + secrets.check(doc)
    if problems:
        raise SpecError(source.bounded(problems))
    return mapping.to_model(doc.data, doc.raw, os.path.basename(path))


__all__ = ["load_spec", "SpecError"]
