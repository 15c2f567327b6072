"""The rule documents the rule tests, routing tests and docs read are exactly what the rule files hold:
they are the documents the files are written from, never a parse of them, so they must read back equal."""
from __future__ import annotations

import pytest
from conftest import REFERENCE_SPEC, ROOT

from obsgen.compile import render
from obsgen.compile import scoped
from obsgen.compile.prometheus import compile_prometheus, rule_documents
from obsgen.spec import load_spec

SPECS = {"reference": REFERENCE_SPEC, "minimal": ROOT / "tests/specs/minimal.yaml",
         "large": ROOT / "tests/specs/large.jsonnet", "daily-budget": ROOT / "tests/specs/daily-budget.yaml"}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_rule_documents_are_what_the_rule_files_hold(name: str) -> None:
    model = load_spec(str(SPECS[name]))
    for env in model.environments:
        seen = scoped(model, env)
        files = {a.path: render.load_yaml(a.content) for a in compile_prometheus(seen, env)}
        documents = rule_documents(seen, env)
        assert sorted(documents) == sorted(files)
        for path, document in documents.items():
            assert document == files[path], (name, env.name, path)
