"""`make demo KEEP=1` leaves a working local stack; `make demo-stop` stops it and leaves nothing behind.

The kept demo runs once for the module (without the fire drills: `DRILLS=0`, so it takes seconds) in a
state directory of its own; its printed `export` lines are then used from a separate shell.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import demo
import pytest
from conftest import ROOT, require_tool
from stack import BINARIES

BIN = Path(sys.executable).parent
# What a user needs to point obsgen at the local stack (URLs, rules dir, config file, Grafana token,
# Pushgateway, the demo's state dir); the spec is the demo's by its path in the demo's directory (a `cd`).
EXPORTS = {"OBSGEN_GRAFANA_URL", "OBSGEN_DEV_GRAFANA_TOKEN", "OBSGEN_PROMETHEUS_URL",
           "OBSGEN_PROMETHEUS_RULES_DIR", "OBSGEN_ALERTMANAGER_URL", "OBSGEN_ALERTMANAGER_CONFIG_FILE",
           "OBSGEN_PUSHGATEWAY_URL", "OBSGEN_STATE_DIR"}


@dataclass
class Kept:
    code: int
    out: str
    err: str
    state: Path
    environ: dict[str, str]
    record: dict | None


def make(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # -o: never reinstall the package from here; BIN: the Python running these tests.
    return subprocess.run(["make", "-s", "-o", ".venv/.installed", f"BIN={BIN}", *args], cwd=ROOT, env=environ,
                          check=False, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory):
    for binary in BINARIES.values():
        require_tool(binary)
    state = tmp_path_factory.mktemp("demo-state")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    environ = {**os.environ, "OBSGEN_STATE_DIR": str(state), "XDG_STATE_HOME": str(state / "xdg"), "PATH": path}
    try:
        # capture_output: `make` returns only if the stack it leaves running holds none of its pipes.
        result = make("demo", "KEEP=1", "DRILLS=0", environ=environ)
        record = json.loads((state / demo.RECORD).read_text()) if (state / demo.RECORD).exists() else None
        yield Kept(result.returncode, result.stdout, result.stderr, state, environ, record)
    finally:
        make("demo-stop", environ=environ)  # whatever a test did; a no-op when it is stopped already


def exports(out: str) -> list[str]:
    """The printed `cd` into the demo's directory and the `export` lines, as a user pastes them."""
    return [line for line in out.splitlines() if line.startswith(("export ", "cd "))]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (zombies have none)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append(argv)
    return found


def test_kept_demo_returns_to_the_shell_with_the_stack_running_and_one_summary_line(kept: Kept) -> None:
    assert kept.code == 0, kept.out + kept.err
    created = [line for line in kept.out.splitlines() if line.startswith("+ ")]
    assert kept.out.splitlines()[-1] == f"demo OK: dev applied ({len(created)} changes); fire drills skipped"
    assert kept.record is not None
    names = {p["name"] for p in kept.record["processes"]}
    assert names == {"server", "prometheus", "alertmanager", "pushgateway"}
    assert all(demo.running(p) for p in kept.record["processes"])
    assert Path(kept.record["dir"]).is_dir()


def test_it_prints_the_exports_and_the_commands_to_try(kept: Kept) -> None:
    names = {line.split()[1].split("=", 1)[0] for line in exports(kept.out) if line.startswith("export ")}
    assert EXPORTS <= names
    # the demo's own state directory: its applies never enter the user's ledger
    assert f"export OBSGEN_STATE_DIR={kept.record['dir']}/state" in kept.out
    tries = [line.split()[:2] for line in kept.out.splitlines() if line.startswith("  obsgen ")]
    assert {verb for _, verb in tries} >= {"diff", "apply", "emit", "drill", "history"}
    assert "make demo-stop" in kept.out


def test_the_exports_let_obsgen_diff_run_from_another_shell(kept: Kept, tmp_path: Path) -> None:
    script = "\n".join(exports(kept.out)) + "\nobsgen diff --env dev --exit-code && obsgen history --env dev\n"
    shell = subprocess.run(["bash", "-c", script], cwd=tmp_path, check=False, capture_output=True, text=True,
                           timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"})
    assert shell.returncode == 0, shell.stdout + shell.stderr   # --exit-code: 0 means nothing to change
    diff, history = shell.stdout.split("\n", 1)
    assert diff.startswith("dev: No changes: the live state matches the spec")
    # the demo's apply is in the demo's own ledger, so `history` there shows it
    assert re.search(r"\bdev +apply +ok\b", history), history
    assert (Path(kept.record["dir"]) / "state" / "ledger.sqlite").is_file()


def test_the_suggested_emits_count_in_order_and_carry_times_of_the_moment(kept: Kept, tmp_path: Path) -> None:
    """The sample reports the demo suggests are dated at the demo, so emitting them in the order shown counts
    each (a failing run, then the passing run) without a warning that a run is late or old; the failing
    one emitted again is a replay of a recent run: already counted."""
    emits = [line.split("  # ")[0].strip() for line in kept.out.splitlines() if line.startswith("  obsgen emit ")]
    assert len(emits) == 2
    script = "\n".join(exports(kept.out)) + "\n" + "\n".join(f"{cmd}; echo \"exit $?\"" for cmd in
                                                            [*emits, emits[0]]) + "\n"
    shell = subprocess.run(["bash", "-c", script], cwd=tmp_path, check=False, capture_output=True, text=True,
                           timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"})
    out = shell.stdout.splitlines()
    assert out[0].startswith("obsgen emit: dev run fail (") and out[1] == "exit 0", shell.stdout + shell.stderr
    assert out[2].startswith("obsgen emit: dev run pass (") and out[3] == "exit 0", shell.stdout + shell.stderr
    assert out[4].startswith("obsgen emit: dev run of ") and " already counted, nothing pushed" in out[4]
    assert out[5:] == ["exit 0"], shell.stdout + shell.stderr
    assert shell.stderr == ""


def test_a_second_demo_refuses_while_one_is_kept(kept: Kept) -> None:
    again = subprocess.run([sys.executable, str(ROOT / "tests" / "demo.py"), "--keep"], env=kept.environ,
                           check=False, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1
    assert again.stdout.splitlines()[-1].startswith("demo FAILED: a kept demo is still running")
    assert all(demo.running(p) for p in kept.record["processes"])


def test_demo_stop_stops_every_process_and_removes_the_temp_dir_and_is_idempotent(kept: Kept) -> None:
    stopped = make("demo-stop", environ=kept.environ)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    # Stopped: no recorded PID runs as the recorded process any more (a zombie waiting for init to reap it
    # counts as gone), and no process is left that uses the demo's temp dir.
    assert [p for p in kept.record["processes"] if demo.running(p)] == []
    assert processes_mentioning(kept.record["dir"]) == []
    assert not Path(kept.record["dir"]).exists()
    assert not (kept.state / demo.RECORD).exists()
    again = make("demo-stop", environ=kept.environ)
    assert (again.returncode, again.stdout.startswith("demo-stop: no kept demo to stop")) == (0, True)


# --- the stop machinery, without a stack -----------------------------------------------------------

def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "300"], start_new_session=True)


def test_stop_signals_a_recorded_process_and_removes_its_temp_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    directory = tmp_path / "obsgen-demo-x"
    directory.mkdir()
    proc = sleeper()
    try:
        recorded = demo.process("server", proc.pid)
        demo.write_json(tmp_path / "state" / demo.RECORD, {"dir": str(directory), "processes": [recorded]})
        assert demo.main(["--stop"]) == 0
        assert proc.wait(timeout=30) == -signal.SIGTERM
        assert not directory.exists() and not (tmp_path / "state" / demo.RECORD).exists()
    finally:
        proc.kill()
        proc.wait()


def test_stop_never_signals_a_pid_that_now_belongs_to_another_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    proc = sleeper()
    try:
        stranger = {"name": "server", "pid": proc.pid, "start": "1"}  # the same PID, another start time
        demo.write_json(tmp_path / "state" / demo.RECORD, {"dir": str(tmp_path / "gone"), "processes": [stranger]})
        assert demo.main(["--stop"]) == 0
        assert proc.poll() is None  # still running: it is not the process the demo recorded
        assert not (tmp_path / "state" / demo.RECORD).exists()
    finally:
        proc.kill()
        proc.wait()


def test_stop_with_nothing_recorded_does_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path))
    assert demo.main(["--stop"]) == 0
    assert capsys.readouterr().out.startswith("demo-stop: no kept demo to stop")
