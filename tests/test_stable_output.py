"""Stable output: renaming the spec file or upgrading obsgen, with nothing else changed, changes no generated
file but manifest.json (the record of what built the tree) and no live object (issue 20, "Stable output")."""
from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REFERENCE_SPEC, ROOT
from doubles.grafana import GrafanaDouble
from localstack import fresh_dev_backends
from stack import Stack

from obsgen.compile.manifest import inputs_digest
from obsgen.spec import load_spec

TOKEN = "glsa_stable_output_token_0123456789"
ENVS = ("dev", "staging", "prod")
MANIFESTS = [f"{env}/manifest.json" for env in ENVS]
OTHER_VERSION = "99.1.0"


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def manifest(out: Path, env: str) -> dict:
    return json.loads((out / env / "manifest.json").read_text())


def renamed_copy(tmp_path: Path) -> Path:
    """The reference spec, byte for byte, under another file name (in another directory)."""
    spec = tmp_path / "spec" / "observability.yaml"
    spec.parent.mkdir()
    shutil.copyfile(REFERENCE_SPEC, spec)
    return spec


def build(run_cli, spec: Path, out: Path) -> list[str]:
    """`obsgen build`; the files it wrote, relative to `out`."""
    result = run_cli("build", "--spec", str(spec), "--out", str(out))
    assert result.code == 0, result.err
    return [line.split(None, 1)[1].removeprefix(f"{out}/") for line in result.out.splitlines()
            if line.startswith("wrote ")]


def drifted(run_cli, spec: Path, out: Path) -> tuple[int, list[str]]:
    """`obsgen check --stat`: its exit code and the files it names as drifted, extra or missing."""
    result = run_cli("check", "--stat", "--spec", str(spec), "--out", str(out))
    assert result.code in (0, 1), result.err
    named = [line.split(None, 1)[1].split()[0].removeprefix(f"{out}/") for line in result.out.splitlines()
             if line.startswith(("drifted:", "extra:", "missing:"))]
    return result.code, named


def obsgen_modules() -> list:
    return [module for name, module in sorted(sys.modules.items())
            if module is not None and (name == "obsgen" or name.startswith("obsgen."))]


def clear_caches() -> None:
    """Forget every cached compile result, so that nothing built before a monkeypatch is served after it."""
    for module in obsgen_modules():
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == module.__name__:
                value.cache_clear()


@pytest.fixture
def upgraded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """obsgen as another version with the same code: every module's `__version__` and the stamp's generator
    fingerprint (which an upgrade changes) are the other version's, and no cache holds an older compile."""
    from obsgen.output import stamp

    clear_caches()
    for module in obsgen_modules():
        if hasattr(module, "__version__"):
            monkeypatch.setattr(module, "__version__", OTHER_VERSION)
    monkeypatch.setattr(stamp, "fingerprint", lambda: f"obsgen {OTHER_VERSION}")
    yield
    clear_caches()


# --- generated files --------------------------------------------------------------------------------

def test_a_renamed_spec_changes_no_generated_file_but_the_manifests(run_cli, tmp_path: Path) -> None:
    original, renamed = tmp_path / "original", tmp_path / "renamed"
    build(run_cli, REFERENCE_SPEC, original)
    spec = renamed_copy(tmp_path)
    build(run_cli, spec, renamed)
    before, after = tree(original), tree(renamed)
    assert sorted(before) == sorted(after)
    assert [path for path in sorted(before) if before[path] != after[path]] == sorted(MANIFESTS)
    for env in ENVS:  # the manifest is the record of what built the tree
        assert manifest(original, env)["spec"] == "selftest.yaml"
        assert manifest(renamed, env)["spec"] == "observability.yaml"
    # check names the manifests alone, and build rewrites only them
    assert drifted(run_cli, spec, original) == (1, MANIFESTS)
    assert build(run_cli, spec, original) == MANIFESTS
    assert tree(original) == after


def test_a_renamed_spec_is_the_same_compile_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What the files are compiled from does not include the spec's file name: after a rename, diff and
    apply may still take a committed output as it is."""
    monkeypatch.chdir(ROOT)
    original, renamed = load_spec("specs/selftest.yaml"), load_spec(str(renamed_copy(tmp_path)))
    assert original.source != renamed.source
    for env, other in zip(original.environments, renamed.environments):
        assert inputs_digest(original, env) == inputs_digest(renamed, other)


def test_another_obsgen_version_changes_no_generated_file_but_the_manifests(run_cli, tmp_path: Path,
                                                                          request: pytest.FixtureRequest) -> None:
    current, other = tmp_path / "current", tmp_path / "other"
    build(run_cli, REFERENCE_SPEC, current)
    old_inputs = {env: manifest(current, env)["inputs_sha256"] for env in ENVS}
    request.getfixturevalue("upgraded")
    build(run_cli, REFERENCE_SPEC, other)
    before, after = tree(current), tree(other)
    assert sorted(before) == sorted(after)
    assert [path for path in sorted(before) if before[path] != after[path]] == sorted(MANIFESTS)
    for env in ENVS:
        assert manifest(other, env)["generator"] == f"obsgen v{OTHER_VERSION}"
        # diff and apply compile again after an upgrade rather than trust files an older obsgen wrote
        assert manifest(other, env)["inputs_sha256"] != old_inputs[env]
        assert manifest(other, env)["files"] == manifest(current, env)["files"]
    assert drifted(run_cli, REFERENCE_SPEC, current) == (1, MANIFESTS)
    assert build(run_cli, REFERENCE_SPEC, current) == MANIFESTS
    assert tree(current) == after


# --- live objects -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(components=("alertmanager", "prometheus"), relative_config=True, discover=False) as s:
        s.initial_alertmanager_config = s.alertmanager_config_file.read_text()
        yield s


@pytest.fixture
def live(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[GrafanaDouble]:
    """dev's backends, as nothing was ever applied to them: the Grafana double, the stack's Prometheus (its
    rules directory) and Alertmanager."""
    with fresh_dev_backends(stack, monkeypatch, tmp_path / "state", TOKEN) as grafana:
        yield grafana


def test_a_renamed_spec_changes_no_live_object(run_cli, live: GrafanaDouble, tmp_path: Path) -> None:
    out = tmp_path / "generated"
    build(run_cli, REFERENCE_SPEC, out)
    applied = run_cli("apply", "--env", "dev", "--yes", "--spec", str(REFERENCE_SPEC), "--out", str(out))
    assert applied.code == 0, applied.err
    assert "+ grafana dashboard" in applied.out and "+ prometheus rule-group" in applied.out
    assert "+ alertmanager route" in applied.out
    spec = renamed_copy(tmp_path)
    for where in (out, tmp_path / "nothing-built"):  # from the committed output as it is, and compiled
        diff = run_cli("diff", "--env", "dev", "--spec", str(spec), "--out", str(where), "--exit-code")
        assert diff.code == 0, diff.out + diff.err
        assert diff.out.splitlines()[-1].startswith("dev: No changes: the live state matches the spec ")


def test_another_obsgen_version_changes_no_live_object(run_cli, live: GrafanaDouble, tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    out = tmp_path / "generated"
    build(run_cli, REFERENCE_SPEC, out)
    assert run_cli("apply", "--env", "dev", "--yes", "--out", str(out)).code == 0
    request.getfixturevalue("upgraded")
    diff = run_cli("diff", "--env", "dev", "--out", str(out), "--exit-code")
    assert diff.code == 0, diff.out + diff.err
