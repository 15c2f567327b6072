"""Dependencies flow one way: model -> spec -> compile -> output -> generate -> deploy -> run -> cli."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

# A module may import modules of its own layer or a lower one, never a higher one.
LAYERS = [
    {"obsgen", "obsgen.errors", "obsgen.model"},  # the frozen model and its vocabulary
    {"obsgen.spec"},
    # compile: the builders the targets share, then the targets
    {"obsgen.compile.yaml_writer", "obsgen.compile.render", "obsgen.compile.conventions", "obsgen.compile.queries",
     "obsgen.compile.routing", "obsgen.compile.amtree"},
    {"obsgen.compile"},
    {"obsgen.output"},
    {"obsgen.generate"},
    # the live side, one package: the HTTP client and access policy, then plan and its normal forms, then
    # state and ledger, then the backend clients, then the session that drives them (and doctor)
    {"obsgen.deploy.wire", "obsgen.deploy.http", "obsgen.deploy.access"},
    {"obsgen.deploy.normalise", "obsgen.deploy.plan", "obsgen.deploy.report"},
    {"obsgen.deploy.state", "obsgen.deploy.ledger"},
    {"obsgen.deploy.backends"},
    {"obsgen.deploy.session", "obsgen.deploy.doctor", "obsgen.deploy"},
    # the run bridge: a run's report to metrics, the generated tests, fire drills
    {"obsgen.run", "obsgen.run.emit", "obsgen.run.verify"},
    {"obsgen.run.drill"},
    {"obsgen.cli", "obsgen.__main__"},
]


def _layer(module: str) -> int:
    for depth in range(module.count(".") + 1, 0, -1):
        prefix = ".".join(module.split(".")[:depth])
        for i, layer in enumerate(LAYERS):
            if prefix in layer and (prefix != "obsgen" or module == "obsgen"):
                return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


MODULES = sorted(ROOT.joinpath("obsgen").rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(module: str, name: str) -> str:
    """`from a.b import c` imports the module a.b.c when there is one, else from a.b."""
    candidate = f"{module}.{name}"
    return candidate if candidate in {_name(p) for p in MODULES} else module


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _name(p))
def test_module_imports_only_its_own_or_lower_layers(path: Path) -> None:
    me = _layer(_name(path))
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [_imported(node.module, a.name) for a in node.names] \
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        for name in names:
            if name == "obsgen" or name.startswith("obsgen."):
                assert _layer(name) <= me, f"{_name(path)} (layer {me}) imports {name} (layer {_layer(name)})"


def test_cli_start_up_imports_no_heavy_library() -> None:
    import subprocess
    import sys

    code = ("import sys, obsgen.cli; heavy = {'grafanalib', 'jsonschema', 'requests', 'jinja2', '_jsonnet', 'yaml'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
