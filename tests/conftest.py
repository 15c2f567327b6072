"""Shared fixtures: project paths, the golden-file update flag, and a CLI runner."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SPEC = ROOT / "specs" / "selftest.yaml"
GENERATED = ROOT / "generated"
_STARTED = time.monotonic()  # conftest is imported before collection: the run's start


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite golden files (tests/goldens, tests/invalid/*.expected, generated/) "
                          "from the current code instead of comparing")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """`make bench` shows the suite's wall time: record it after a whole, passing run, once, from the
    controller (an xdist worker has `workerinput`; a run of chosen files or -k is not the suite's time).
    bench/suite-time.json is not committed (.gitignore)."""
    config = session.config
    if (hasattr(config, "workerinput") or exitstatus != 0 or config.args_source != pytest.Config.ArgsSource.TESTPATHS
            or config.option.keyword or config.option.markexpr or config.option.collectonly):
        return
    (ROOT / "bench" / "suite-time.json").write_text(json.dumps({
        "seconds": round(time.monotonic() - _STARTED, 1), "tests": session.testscollected,
        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}) + "\n")


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory):
    """obsgen keeps locks, the ledger and check stamps in a state directory; tests never use the user's."""
    saved = os.environ.get("OBSGEN_STATE_DIR")
    os.environ["OBSGEN_STATE_DIR"] = str(tmp_path_factory.mktemp("obsgen-state"))
    yield
    if saved is None:
        os.environ.pop("OBSGEN_STATE_DIR", None)
    else:
        os.environ["OBSGEN_STATE_DIR"] = saved


@pytest.fixture(autouse=True, scope="session")
def _no_cluster(tmp_path_factory: pytest.TempPathFactory):
    """No test ever reaches a Kubernetes cluster: kubectl reads a kubeconfig without a context (`obsgen diff`
    would otherwise compare against the current context of whoever runs the tests)."""
    saved = os.environ.get("KUBECONFIG")
    config = tmp_path_factory.mktemp("kube") / "config"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    os.environ["KUBECONFIG"] = str(config)
    yield
    if saved is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = saved


@pytest.fixture(autouse=True, scope="session")
def _write_dirs(tmp_path_factory: pytest.TempPathFactory):
    """The test environment is the operator: paths a test's spec names for obsgen to write (rules_dir,
    config_file) lie under pytest's base temp directory, which it lists in OBSGEN_WRITE_DIRS."""
    saved = os.environ.get("OBSGEN_WRITE_DIRS")
    os.environ["OBSGEN_WRITE_DIRS"] = str(tmp_path_factory.getbasetemp())
    yield
    if saved is None:
        os.environ.pop("OBSGEN_WRITE_DIRS", None)
    else:
        os.environ["OBSGEN_WRITE_DIRS"] = saved


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run `obsgen ARGS...` in-process from the project root; returns exit code, stdout, stderr."""
    from obsgen.cli import main

    def run(*args: str, cwd: Path = ROOT) -> Result:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def require_tool(name: str) -> str:
    """The path of a backend binary; `make test` installs them, so a missing one fails loudly."""
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed: run `make test` (it installs the Debian packages "
                    f"prometheus, prometheus-alertmanager, prometheus-pushgateway)")
    return path


def run_tool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
