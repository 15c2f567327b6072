"""A kept demo lives beside the user's checkout, never in it.

`make demo KEEP=1` prints a `cd` into the demo's own directory (its own `specs/selftest.yaml`, its own
`generated/`, its own state directory) and `export` lines that point obsgen's live commands at the local
stack. Pasted into a shell, those exports must leave `build` and `check` in a checkout exactly as they are
without them: no drift, nothing rewritten (the issue: a demo that exported `OBSGEN_SPEC` made `check` report
27 drifted files and `build` rewrite them with demo values). The demo runs once for the module, without
the fire drills (`DRILLS=0`), from a shell without the venv on its PATH, as a user's would be.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import demo
import pytest
from conftest import ROOT, require_tool
from stack import BINARIES

BIN = Path(sys.executable).parent
DEMO = ROOT / "tests" / "demo.py"


@dataclass
class Kept:
    out: str
    base: dict[str, str]   # the environment the demo was started from (and is stopped from at the end)
    state: Path            # the state directory the demo was started with: where its record lies


def shell_environ(lines: list[str], home: Path) -> dict[str, str]:
    """The environment a plain shell has after running the printed `export` lines."""
    script = "\n".join(lines) + "\nenv -0\n"
    shell = subprocess.run(["bash", "-c", script], check=True, capture_output=True, timeout=30,
                           env={"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"})
    return dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if "=" in item)


def exports(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("export ")]


def cd_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("cd ")]


def obsgen(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["obsgen", *args], cwd=cwd, env=env, check=False, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory):
    for binary in BINARIES.values():
        require_tool(binary)
    state = tmp_path_factory.mktemp("beside-state")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    base = {**os.environ, "OBSGEN_STATE_DIR": str(state), "XDG_STATE_HOME": str(state / "xdg"), "PATH": path}
    try:
        # What `make demo KEEP=1 DRILLS=0` runs (see the Makefile's demo target).
        result = subprocess.run([sys.executable, str(DEMO), "--keep", "--no-drills"], cwd=ROOT, env=base,
                                check=False, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        yield Kept(result.stdout, base, state)
    finally:  # whatever a test did; a no-op when the last test stopped it already
        subprocess.run([sys.executable, str(DEMO), "--stop"], cwd=ROOT, env=base, check=False,
                       capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def shell(kept: Kept, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A user's shell after pasting the printed exports."""
    return shell_environ(exports(kept.out), tmp_path_factory.mktemp("home"))


def demo_dir(kept: Kept) -> Path:
    (line,) = cd_lines(kept.out)
    (_, directory) = shlex.split(line)
    return Path(directory)


def test_it_prints_a_cd_into_its_own_directory_and_exports_no_spec(kept: Kept, shell: dict[str, str]) -> None:
    directory = demo_dir(kept)
    assert (directory / "specs" / "selftest.yaml").is_file()
    assert (directory / "generated" / "dev" / "manifest.json").is_file()  # built there
    names = {line.split()[1].split("=", 1)[0] for line in exports(kept.out)}
    assert "OBSGEN_SPEC" not in names
    assert {"OBSGEN_GRAFANA_URL", "OBSGEN_DEV_GRAFANA_TOKEN", "OBSGEN_PROMETHEUS_URL", "OBSGEN_PROMETHEUS_RULES_DIR",
            "OBSGEN_ALERTMANAGER_URL", "OBSGEN_ALERTMANAGER_CONFIG_FILE", "OBSGEN_PUSHGATEWAY_URL",
            "OBSGEN_STATE_DIR", "PATH"} <= names
    # the demo's own state directory, inside its directory: its applies never enter the user's ledger
    assert Path(shell["OBSGEN_STATE_DIR"]).resolve().is_relative_to(directory.resolve())
    assert shutil.which("obsgen", path=shell["PATH"]) == str(BIN / "obsgen")
    assert "cd -" in kept.out


def test_check_and_build_in_a_checkout_are_unchanged_by_the_exports(kept: Kept, shell: dict[str, str],
                                                                     tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    for part in ("specs", "generated"):
        shutil.copytree(ROOT / part, checkout / part)
    # Without the exports: the checkout as obsgen builds it now (so this test is about the exports alone).
    plain = {**shell_environ([], tmp_path), "OBSGEN_STATE_DIR": str(tmp_path / "state"),
             "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin"}
    assert obsgen("build", cwd=checkout, env=plain).returncode == 0
    before = {p: p.read_bytes() for p in sorted((checkout / "generated").rglob("*")) if p.is_file()}

    check = obsgen("check", cwd=checkout, env=shell)
    assert (check.returncode, check.stderr) == (0, ""), check.stdout + check.stderr
    build = obsgen("build", cwd=checkout, env=shell)
    assert build.returncode == 0, build.stdout + build.stderr
    summary = build.stdout.splitlines()[-1]
    assert summary.startswith("obsgen build: ") and " from specs/selftest.yaml into generated/: 0 written, " \
        in summary, build.stdout
    after = {p: p.read_bytes() for p in sorted((checkout / "generated").rglob("*")) if p.is_file()}
    assert after == before


def test_diff_in_the_demo_directory_plans_against_the_demo_stack(kept: Kept, shell: dict[str, str]) -> None:
    diff = obsgen("diff", "--env", "dev", cwd=demo_dir(kept), env=shell)
    assert diff.returncode in (0, 1), diff.stdout + diff.stderr
    assert "obsgen: error" not in diff.stderr
    assert diff.stdout.startswith("dev: "), diff.stdout


def test_demo_stop_from_the_shell_with_the_exports_removes_the_demo(kept: Kept, shell: dict[str, str]) -> None:
    """A user who pasted the exports, went back with `cd -` and ran `make demo-stop` there."""
    directory = demo_dir(kept)
    stopped = subprocess.run([sys.executable, str(DEMO), "--stop"], cwd=ROOT, env=shell, check=False,
                             capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stopped.stdout.startswith("demo-stop: stopped PIDs "), stopped.stdout
    assert not directory.exists()
    assert not (kept.state / demo.RECORD).exists()  # nothing left for a later `make demo` to trip over
