"""An apply killed or stopped half-way: SIGTERM and SIGHUP roll back like Ctrl-C, SIGKILL is recorded and repaired.

Real Prometheus and Alertmanager on loopback, the Grafana double, and `obsgen apply` as a real child process.
Between the child and Prometheus sits a small forwarding server (`ReloadLatch`) that holds the child's POST
/-/reload: at that moment Grafana has the folder and the dashboards and the rule files are written, so a signal
sent then lands in the middle of the apply, every time, without timing.

Exit codes (README, "Interrupted applies"): an apply ended by a signal rolls back, then exits 128 + the
signal's number -- 143 for SIGTERM, 129 for SIGHUP, 130 for Ctrl-C -- with one `obsgen: error:` line
saying what was restored; the ledger records it as rolled-back. A ledger that cannot be written after the
changes is a warning beside the apply's own result and exit code.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
import yaml
from conftest import ROOT
from doubles.grafana import GrafanaDouble
from doubles.server import LoopbackServer
from stack import Stack, wait_until

TOKEN = "glsa_interrupt_test_token_0123456789"
DASHBOARD = "selftest-dev-selftest-overview"
FOLDER = "obsgen-selftest-dev"
WAIT = 60.0  # upper bound for any one wait on the child (it normally takes a few seconds)


class ReloadLatch:
    """Forwards every request to `target`; the next `hold` POSTs to /-/reload wait until `release()`
    (then go on to Prometheus), and `held` counts those that arrived."""

    def __init__(self, target: str, held_request: tuple[str, str] = ("POST", "/-/reload")) -> None:
        self.target, self.hold, self.held = target, 0, 0
        self.held_request = held_request
        self._cond = threading.Condition()
        self._released = threading.Event()
        latch = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                method, prefix = latch.held_request
                if self.command == method and self.path.startswith(prefix):
                    with latch._cond:
                        wait = latch.held < latch.hold
                        latch.held += 1
                        latch._cond.notify_all()
                    if wait:
                        latch._released.wait(WAIT)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                answer = requests.request(self.command, latch.target + self.path, data=body, headers=headers,
                                          timeout=10)
                try:
                    self.send_response(answer.status_code)
                    self.send_header("Content-Type", answer.headers.get("Content-Type", "text/plain"))
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except OSError:
                    pass  # the client was killed while its request was held

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self._server = LoopbackServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def wait_held(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.held >= count, WAIT), f"no reload #{count} within {WAIT} s"

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def stack():
    with Stack(components=("alertmanager", "prometheus"), discover=False) as s:
        s.initial_alertmanager_config = s.alertmanager_config_file.read_text()
        yield s


@pytest.fixture
def world(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """An empty Grafana and rules directory, the stack's own Alertmanager config; the OBSGEN_* variables
    point at them (Prometheus directly: the child gets the latch instead)."""
    for rules in stack.rules_dir.glob("*"):
        rules.unlink()
    stack.reload_prometheus()
    stack.write_alertmanager_config(stack.initial_alertmanager_config)
    assert stack.reload_alertmanager() == 200
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)
    latch = ReloadLatch(stack.prometheus_url)
    with GrafanaDouble(token=TOKEN) as double:
        for name, value in (("GRAFANA_URL", double.url), ("PROMETHEUS_URL", stack.prometheus_url),
                            ("PROMETHEUS_RULES_DIR", str(stack.rules_dir)),
                            ("ALERTMANAGER_URL", stack.alertmanager_url),
                            ("ALERTMANAGER_CONFIG_FILE", str(stack.alertmanager_config_file))):
            monkeypatch.setenv(f"OBSGEN_{name}", value)
        double.latch = latch
        try:
            yield double
        finally:
            latch.close()


def child(grafana: GrafanaDouble, *args: str) -> subprocess.Popen[str]:
    """`obsgen apply --env dev --yes ARGS` as a process of its own, its Prometheus requests through the latch."""
    env = {**os.environ, "OBSGEN_PROMETHEUS_URL": grafana.latch.url, "NO_COLOR": "1"}
    return subprocess.Popen([sys.executable, "-m", "obsgen", "apply", "--env", "dev", "--yes", *args], cwd=ROOT,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def snapshot(stack: Stack, grafana: GrafanaDouble) -> dict:
    return {
        "grafana": (grafana.dashboard(DASHBOARD), folder_exists(grafana)),
        "rule files": {p.name: p.read_bytes() for p in stack.rules_dir.glob("*")},
        "rule groups": sorted(g["name"] for g in stack.rule_groups()),
        "alertmanager file": stack.alertmanager_config_file.read_text(),
        "alertmanager loaded": stack.alertmanager_loaded_config(),
    }


def folder_exists(grafana: GrafanaDouble) -> bool:
    answer = requests.get(f"{grafana.url}/api/folders/{FOLDER}", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=5)
    return answer.status_code == 200


def ledger(tmp_path: Path) -> list[tuple[str, str, list[str], list[str], str]]:
    """(mode, result, planned titles, applied titles, error) of every entry, oldest first, as stored."""
    with sqlite3.connect(tmp_path / "state/ledger.sqlite") as db:
        rows = db.execute("SELECT mode, result, planned, changes, error FROM applies ORDER BY id").fetchall()
    return [(m, r, json.loads(p), json.loads(c), e) for m, r, p, c, e in rows]


def mid_apply(stack: Stack, grafana: GrafanaDouble, reloads: int = 1) -> subprocess.Popen[str]:
    """A child apply held at its reload: Grafana and the rule files are changed, Prometheus not yet reloaded."""
    grafana.latch.hold = reloads
    proc = child(grafana)
    try:
        grafana.latch.wait_held(1)
    except AssertionError:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the child never reached its reload: {err}") from None
    assert folder_exists(grafana) and grafana.dashboard(DASHBOARD) is not None
    assert {p.name for p in stack.rules_dir.glob("*")} == {"selftest-dev-selftest.rules.yaml",
                                                          "selftest-dev-selftest-steps.rules.yaml",
                                                          "selftest-dev-slo-pass-rate.rules.yaml",
                                                          "selftest-dev-slo-run-duration.rules.yaml"}
    return proc


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_mid_apply_rolls_back_every_backend_and_exits_128_plus_its_number(stack, world, tmp_path,
                                                                                   signum, code) -> None:
    before = snapshot(stack, world)
    proc = mid_apply(stack, world)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=WAIT)
    line = f"terminated by {signum.name}; restored prometheus, grafana to the state before this apply"
    assert (proc.returncode, err) == (code, f"obsgen: error: {line}\n")
    assert "dev: applied" not in out
    assert snapshot(stack, world) == before
    (mode, result, planned, applied, error), = ledger(tmp_path)
    assert (mode, result, error) == ("apply", "rolled-back", line)
    assert f"+ grafana dashboard {DASHBOARD}" in applied and "+ alertmanager route selftest/dev" in planned


def test_a_second_signal_during_the_rollback_does_not_stop_it(stack, world, tmp_path) -> None:
    before = snapshot(stack, world)
    proc = mid_apply(stack, world, reloads=2)  # the rollback's own reload is held too
    proc.send_signal(signal.SIGTERM)
    world.latch.wait_held(2)  # rolling back: the rule files are back, Grafana is being or has been restored
    proc.send_signal(signal.SIGTERM)  # what a CI runner does when the job still runs
    proc.send_signal(signal.SIGHUP)
    world.latch.release()
    out, err = proc.communicate(timeout=WAIT)
    assert (proc.returncode, err) == (143, "obsgen: error: terminated by SIGTERM; restored prometheus, grafana to "
                                           "the state before this apply\n")
    assert snapshot(stack, world) == before
    assert [row[1] for row in ledger(tmp_path)] == ["rolled-back"]


def without_run_duration(tmp_path: Path) -> Path:
    spec = yaml.safe_load((ROOT / "specs/selftest.yaml").read_text())
    spec["slos"] = [slo for slo in spec["slos"] if slo["id"] != "run-duration"]
    path = tmp_path / "spec" / "selftest.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_an_apply_killed_outright_is_in_history_and_the_next_apply_names_and_repairs_what_it_left(
        run_cli, stack, world, tmp_path) -> None:
    proc = mid_apply(stack, world)
    proc.kill()  # SIGKILL: no handler runs, nothing is rolled back
    proc.communicate(timeout=WAIT)
    assert proc.returncode == -signal.SIGKILL
    (mode, result, planned, applied, error), = ledger(tmp_path)
    assert (mode, result, applied) == ("apply", "started", [])  # written before the first write
    assert f"+ grafana dashboard {DASHBOARD}" in planned and "+ alertmanager route selftest/dev" in planned

    history = run_cli("history", "--env", "dev")
    assert history.code == 0
    first, second = history.out.splitlines()
    assert first.split()[1:4] == ["dev", "apply", "interrupted"]
    assert second == ("    error: never finished: the process ended without recording how (killed?); what it "
                      "changed is still there until an apply repairs it")

    # the leftovers are recognised as obsgen's: with a spec that no longer has the run-duration SLO, its
    # written (never loaded) rule file shows as obsgen's groups to delete, not as something foreign
    spec = str(without_run_duration(tmp_path))
    diff = run_cli("diff", "--env", "dev", "--spec", spec)
    assert diff.code == 0, diff.err
    note = diff.err.splitlines()[0]
    assert note.startswith("obsgen: note: the apply to dev started ") and " never finished (killed?)" in note
    assert re.search(r" \(ledger entry 1\) never finished \(killed\?\); it planned \d+ changes: \+ grafana ", note)
    assert f"+ grafana dashboard {DASHBOARD}" in note
    assert note.endswith("what it left is in the plan below; an apply repairs it")
    assert not [line for line in diff.out.splitlines() if line.startswith("! ")]
    left = yaml.safe_load((ROOT / "generated/dev/prometheus/slo-run-duration.rules.yaml").read_text())["groups"]
    assert sorted(line for line in diff.out.splitlines() if line.startswith("- ")) == sorted(
        f"- prometheus rule-group selftest-dev-slo-run-duration.rules.yaml/{group['name']}" for group in left)

    apply = run_cli("apply", "--env", "dev", "--yes", "--prune", "--spec", spec)
    assert apply.code == 0, apply.err
    assert apply.err.splitlines()[0].startswith("obsgen: note: the apply to dev started ")
    assert apply.out.splitlines()[-1].startswith("dev: applied ")
    assert not (stack.rules_dir / "selftest-dev-slo-run-duration.rules.yaml").exists()
    rows = ledger(tmp_path)
    assert [(m, r) for m, r, *_ in rows] == [("apply", "interrupted"), ("apply", "ok")]
    assert rows[0][4].startswith("never finished: the process ended without recording how (killed?); superseded "
                                 "by ledger entry 2")
    again = run_cli("diff", "--env", "dev", "--spec", spec, "--exit-code")
    assert again.code == 0  # nothing left to repair: no note but that no cluster was compared (conftest)
    assert [line for line in again.err.splitlines() if "Kubernetes resources not compared" not in line] == []


def test_a_ledger_that_cannot_be_written_after_the_changes_is_a_warning_beside_the_result(stack, world,
                                                                                           tmp_path) -> None:
    proc = mid_apply(stack, world)
    path = tmp_path / "state/ledger.sqlite"
    path.rename(path.with_suffix(".moved"))
    path.mkdir()  # the ledger cannot be opened any more
    world.latch.release()
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1].startswith("dev: applied ")
    assert err == (f"obsgen: warning: the ledger did not record the end of this apply (ok): cannot open the "
                   f"ledger {path}: unable to open database file (set OBSGEN_STATE_DIR to a writable directory)\n")


def test_a_ledger_failure_does_not_hide_a_failed_restore(run_cli, stack, world, tmp_path, monkeypatch) -> None:
    from obsgen.deploy.backends.alertmanager import AlertmanagerBackend
    from obsgen.deploy.backends.grafana import GrafanaBackend

    path = tmp_path / "state/ledger.sqlite"

    def broken(self, changes, *, force=False):
        path.rename(path.with_suffix(".moved"))
        path.mkdir()
        raise RuntimeError("disk on fire")

    def cannot(self, applied):
        raise RuntimeError("Grafana went away")

    monkeypatch.setattr(AlertmanagerBackend, "apply", broken)
    monkeypatch.setattr(GrafanaBackend, "restore", cannot)
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    assert result.err == ("obsgen: error: unexpected RuntimeError: disk on fire; restored prometheus to the state "
                          "before this apply; COULD NOT RESTORE grafana: unexpected RuntimeError: Grafana went away "
                          "-- run `obsgen diff` to see what is left\n"
                          f"obsgen: warning: the ledger did not record the end of this apply (could-not-restore): "
                          f"cannot open the ledger {path}: unable to open database file (set OBSGEN_STATE_DIR to a "
                          f"writable directory)\n")


def test_ctrl_c_mid_apply_rolls_back_and_exits_130_like_the_other_signals(run_cli, stack, world, tmp_path,
                                                                          monkeypatch) -> None:
    from obsgen.deploy.backends.alertmanager import AlertmanagerBackend

    before = snapshot(stack, world)

    def pressed(self, changes, *, force=False):
        raise KeyboardInterrupt  # what Python raises for SIGINT in the main thread

    monkeypatch.setattr(AlertmanagerBackend, "apply", pressed)
    result = run_cli("apply", "--env", "dev", "--yes")
    line = "interrupted; restored prometheus, grafana to the state before this apply"
    assert (result.code, result.err) == (130, f"obsgen: error: {line}\n")
    assert snapshot(stack, world) == before
    assert [(r, e) for _, r, _, _, e in ledger(tmp_path)] == [("rolled-back", line)]


def test_a_signal_before_the_first_write_changes_nothing_and_is_recorded(stack, world, tmp_path) -> None:
    before = snapshot(stack, world)
    world.latch.held_request, world.latch.hold = ("GET", "/api/v1/rules"), 1  # the child is still reading
    proc = child(world)
    world.latch.wait_held(1)
    proc.send_signal(signal.SIGTERM)
    world.latch.release()
    out, err = proc.communicate(timeout=WAIT)
    assert (proc.returncode, err) == (143, "obsgen: error: terminated by SIGTERM\n")
    assert snapshot(stack, world) == before
    assert [(m, r, c, e) for m, r, _, c, e in ledger(tmp_path)] == [("apply", "failed", [], "terminated by SIGTERM")]


def test_a_signal_during_the_amtool_check_leaves_no_temporary_file(stack, world, tmp_path) -> None:
    """amtool runs in prepare, before the first write: a slow stand-in holds the child there."""
    bin_dir, tmp_dir, started = tmp_path / "bin", tmp_path / "tmp", tmp_path / "amtool-started"
    bin_dir.mkdir()
    tmp_dir.mkdir()
    amtool = bin_dir / "amtool"
    amtool.write_text(f"#!/bin/sh\ntouch {started}\nexec sleep {WAIT}\n")
    amtool.chmod(0o755)
    before = snapshot(stack, world)
    beside = sorted(p.name for p in stack.alertmanager_config_file.parent.iterdir())
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_dir), "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "obsgen", "apply", "--env", "dev", "--yes"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(started.exists, WAIT, "the child to run amtool")
    finally:
        if not started.exists():
            proc.kill()
    assert list(tmp_dir.iterdir())  # amtool's private copy of the merged config exists now
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=WAIT)
    assert (proc.returncode, err) == (143, "obsgen: error: terminated by SIGTERM\n")
    assert list(tmp_dir.iterdir()) == []
    assert sorted(p.name for p in stack.alertmanager_config_file.parent.iterdir()) == beside
    assert snapshot(stack, world) == before
    assert [(r, c) for _, r, _, c, _ in ledger(tmp_path)] == [("failed", [])]
