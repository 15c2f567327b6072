"""`make demo`: obsgen on a local stack, from apply to a page and a Slack message.

Starts real Prometheus, Alertmanager and Pushgateway on loopback, a local HTTP sink standing in for
PagerDuty and Slack, and the Grafana TEST DOUBLE (a stand-in that follows Grafana's HTTP API; no real
Grafana runs here). Applies dev of the reference spec (its channels pointed at the sink), publishes
a passing run, runs a kernel and a governance fire drill, prints where each alert landed and how
long it took, and ends with one line: `demo OK: ...` or `demo FAILED: ...`.

    python tests/demo.py               # make demo: everything it started is stopped at the end
    python tests/demo.py --keep        # make demo KEEP=1: the stack keeps running; prints a `cd` into
                                       # the demo's directory, the `export OBSGEN_...` lines and
                                       # commands to try
    python tests/demo.py --no-drills   # make demo DRILLS=0: start and apply only
    python tests/demo.py --stop        # make demo-stop: stop a kept demo (nothing running: a no-op)

The demo lives beside the user's checkout, never in it. Its temp dir is its working directory: its own
`specs/selftest.yaml`, `generated/` (built there) and state directory `state/` (ledger, locks), the
secrets, rules dir, Alertmanager config, logs and `sink.jsonl` (every notification the sink received).
The printed commands run there, where obsgen's default spec and output are the demo's; the exports
name the stack (URL, rules dir, config file and token overrides, never compiled into generated files)
and the demo's state directory, never a spec, so `build` and `check` in a checkout are unchanged.

The stack runs in a detached server process (`--serve DIR`, its own session), so a kept stack
survives `make`. The temp dir and the PIDs of the server and of each backend are recorded in
`demo.json` in the state directory the demo was started from ($OBSGEN_STATE_DIR, else
$XDG_STATE_HOME/obsgen, else ~/.local/state/obsgen) and in the demo's own (which the exports name);
`--stop` stops them by those PIDs (each checked against its recorded start time, so a reused PID is
never signalled) and removes the temp dir and both records.

DEMO_FAST=0 keeps the spec's real timing (1m evaluation, 30s group_wait, the alerts' `for`); the
default evaluates every second with `for: 0s` so the demo takes seconds.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

FAST = os.environ.get("DEMO_FAST", "1") != "0"
RECORD = "demo.json"       # in obsgen's state directory: what a kept demo runs, for --stop
SPEC = Path("specs", "selftest.yaml")  # in the demo's directory: obsgen's default spec path there
STATE = "state"            # in the demo's directory: its own state directory (ledger, locks)
STACK_INFO = "stack.json"  # written by the server into the temp dir once the stack is up
FAILED = "failed.txt"      # written by the server when the stack could not start
SINK_LOG = "sink.jsonl"    # every POST the sink received: {"t": unix time, "path": ..., "body": ...}
READY_TIMEOUT = 120.0      # the server: stack up (the Stack's own waits are bounded at 30 s each)
STOP_TIMEOUT = 30.0        # the server: SIGTERM -> exited (the Stack gives each backend 10 s)
ARRIVAL_TIMEOUT = 60.0     # a drill's notification at the sink, after the drill reported it sent
PAGERDUTY, SLACK = "/v2/enqueue", "/slack/slack-tickets"   # localstack.PAGERDUTY_PATH, slack_path(...)
TRY = (
    ("obsgen diff --env dev", "nothing to change: dev was just applied"),
    ("obsgen apply --env dev --dry-run", "the plan, recorded as a dry run"),
    ("obsgen drill --env dev --tier governance", "a fire drill: Slack is notified"),
    ('obsgen emit --env dev --report reports/kernel-failed.json',
     "a failing run pages PagerDuty"),
    ('obsgen emit --env dev --report reports/passing.json',
     "a passing run resolves it"),
    ("obsgen check", "the demo's generated/ matches its spec"),
    ("obsgen history --env dev", "the demo's applies (its own ledger)"),
)


class DemoFailed(Exception):
    """The demo cannot go on; the message ends up in the `demo FAILED: ...` line."""


# --- the processes a demo runs, and stopping them ----------------------------------------------------

def record_path() -> Path:
    from obsgen.output.files import state_dir

    return state_dir() / RECORD


def start_time(pid: int) -> str | None:
    """The start time of process `pid` (field 22 of /proc/PID/stat), None if there is none or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def process(name: str, pid: int) -> dict[str, Any]:
    return {"name": name, "pid": pid, "start": start_time(pid)}


def running(proc: dict[str, Any]) -> bool:
    """The recorded process still runs: its PID exists and started when the recorded one did."""
    return proc.get("start") is not None and start_time(proc["pid"]) == proc["start"]


def read_record(path: Path | None = None) -> dict[str, Any] | None:
    path = path or record_path()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DemoFailed(f"cannot read {path}: {exc}") from None


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def stop_processes(record: dict[str, Any], server: subprocess.Popen[bytes] | None = None) -> list[int]:
    """Stop a demo's processes and remove its temp dir; return the PIDs that were still running.

    The server gets SIGTERM and stops the stack itself (each backend SIGTERMed, waited for, its temp
    dir removed). Whatever of the recorded processes still runs after STOP_TIMEOUT -- or when the
    server was gone already -- gets SIGKILL to its process group (each was started as a group leader)."""
    procs = list(record.get("processes", []))
    info = Path(record["dir"]) / STACK_INFO if record.get("dir") else None
    if info and info.is_file():  # the backends' PIDs, if the server came up but they were never recorded
        try:
            known = {p["pid"] for p in procs}
            procs += [p for p in json.loads(info.read_text())["processes"] if p["pid"] not in known]
        except (OSError, ValueError, KeyError):
            pass
    alive = [p for p in procs if running(p)]
    server_proc = next((p for p in alive if p["name"] == "server"), None)
    if server_proc:
        _signal_group(server_proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and running(server_proc):
            if server is not None and server.poll() is not None:  # our own child: reap it
                break
            time.sleep(0.1)
    if server is not None:
        try:
            server.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    for proc in procs:
        if running(proc):
            _signal_group(proc, signal.SIGKILL)
    if server is not None and server.poll() is None:
        server.wait(timeout=STOP_TIMEOUT)
    if record.get("dir"):
        shutil.rmtree(record["dir"], ignore_errors=True)
    return [p["pid"] for p in alive]


def _signal_group(proc: dict[str, Any], sig: signal.Signals) -> None:
    try:
        os.killpg(proc["pid"], sig)   # the process and anything it started in its group
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(proc["pid"], sig)


def save_record(record: dict[str, Any]) -> None:
    """Record the demo in the state directory it was started with and in its own, which its exports name:
    each copy names the other (`records`), so `--stop` from either shell removes both."""
    record["records"] = [str(record_path()), str(Path(record["dir"]) / STATE / RECORD)]
    for path in record["records"]:
        write_json(Path(path), record)


def forget_record(record: dict[str, Any], path: Path) -> None:
    for recorded in {str(path), *record.get("records", ())}:
        Path(recorded).unlink(missing_ok=True)


def stop() -> int:
    """`make demo-stop`."""
    path = record_path()
    record = read_record(path)
    if record is None:
        print(f"demo-stop: no kept demo to stop ({path} does not exist)")
        return 0
    stopped = stop_processes(record)
    forget_record(record, path)
    pids = ", ".join(str(p) for p in stopped)
    print(f"demo-stop: stopped {f'PIDs {pids}' if stopped else 'nothing (no recorded process was running)'}; "
          f"removed {record.get('dir')}")
    return 0


# --- the server: the local stack, in its own detached process ----------------------------------------

def serve(directory: Path) -> int:
    """Run the LocalStack until SIGTERM; its URLs and PIDs go to STACK_INFO once it is up."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    tempfile.tempdir = str(directory)  # the Stack's own temp dir (rules, config, data) goes inside ours
    from localstack import LocalStack

    try:
        with LocalStack(directory, fast=FAST) as local:
            recorder = threading.Thread(target=_record_arrivals, args=(local.sink, directory / SINK_LOG, done),
                                        daemon=True)
            recorder.start()
            spec = directory / SPEC  # the demo's own spec, at obsgen's default path in its directory
            spec.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local.spec, spec)
            # no OBSGEN_SPEC (the demo's spec is found by its path in its directory) and no state directory
            # (the client sets the demo's own): what is left names only the stack
            environ = {k: v for k, v in local.environ.items() if k not in ("OBSGEN_SPEC", "OBSGEN_STATE_DIR")}
            write_json(directory / STACK_INFO, {
                "environ": environ, "sink": local.sink.url, "grafana": local.grafana.url, "fast": FAST,
                "processes": [process("server", os.getpid())]
                + [process(name, pid) for name, pid in local.stack.pids.items()]})
            while not done.wait(0.5):
                pass
            recorder.join(timeout=2)
    except Exception as exc:  # noqa: BLE001 - the client reports it as the demo's one line
        (directory / FAILED).write_text(f"{type(exc).__name__}: {exc}\n")
        return 1
    return 0


def _record_arrivals(sink, path: Path, done: threading.Event) -> None:  # noqa: ANN001 - a stack.Sink
    seen = 0
    with open(path, "a") as fh:
        while not done.is_set():
            records = sink.received()
            for record in records[seen:]:
                fh.write(json.dumps({"t": time.time(), "path": record.path, "body": record.body}) + "\n")
            fh.flush()
            seen = len(records)
            done.wait(0.05)


# --- the demo ----------------------------------------------------------------------------------------

def start_server() -> tuple[dict[str, Any], subprocess.Popen[bytes]]:
    """Start the detached server; record it at once (so --stop finds it whatever happens next)."""
    directory = Path(tempfile.mkdtemp(prefix="obsgen-demo-"))
    with open(directory / "server.log", "wb") as log:
        server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(directory)],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=directory,
                                  start_new_session=True)
    record = {"dir": str(directory), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "processes": [process("server", server.pid)]}
    try:
        save_record(record)
    except OSError as exc:
        stop_processes(record, server)
        forget_record(record, record_path())
        raise DemoFailed(f"cannot record the demo in {record_path()}: {exc.strerror} (set OBSGEN_STATE_DIR to a "
                         f"writable directory)") from None
    return record, server


def wait_ready(record: dict[str, Any], server: subprocess.Popen[bytes]) -> dict[str, Any]:
    directory = Path(record["dir"])
    deadline = time.monotonic() + READY_TIMEOUT
    while not (directory / STACK_INFO).is_file():
        if server.poll() is not None:
            failed = directory / FAILED
            log = (directory / "server.log").read_text(errors="replace").strip().splitlines()
            why = failed.read_text().strip() if failed.is_file() else (log[-1] if log else f"exit {server.returncode}")
            raise DemoFailed(f"the local stack did not start: {why}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"the local stack was not up after {READY_TIMEOUT:g} s (log: {directory}/server.log)")
        time.sleep(0.1)
    info = json.loads((directory / STACK_INFO).read_text())
    record["processes"] = info["processes"]
    save_record(record)
    return info


def sink_arrival(directory: Path, since: float, match: Callable[[dict[str, Any]], bool],
                 timeout: float) -> dict[str, Any] | None:
    """The first notification at the sink at or after `since` (unix time) that `match`es."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = (directory / SINK_LOG).read_text().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # a line being written
                continue
            if record["t"] >= since and match(record):
                return record
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def _firing(record: dict[str, Any]) -> bool:
    body = record["body"] if isinstance(record["body"], dict) else {}
    if "event_action" in body:
        return body["event_action"] == "trigger" and body["payload"]["custom_details"].get("step_id") != "all"
    return "FIRING" in str((body.get("attachments") or [{}])[0].get("title", ""))


def _summary(record: dict[str, Any]) -> str:
    body = record["body"]
    if "event_action" in body:
        details = body["payload"]["custom_details"]
        return f"trigger '{body['payload']['summary']}' (step_id {details['step_id']}, tier {details['tier']})"
    return f"{body.get('channel')} '{body['attachments'][0]['title']}'"


def _wait_for_alertmanager(prometheus_url: str, timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = requests.get(f"{prometheus_url}/api/v1/alertmanagers", timeout=5).json()
            if answer["data"]["activeAlertmanagers"]:
                return
        except (requests.RequestException, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise DemoFailed(f"Prometheus did not find its Alertmanager within {timeout:g} s")
        time.sleep(0.2)


def demo(info: dict[str, Any], directory: Path, state: Path, drills: bool, keep: bool) -> str:
    """Build and apply dev in the demo's directory and run the drills on the running stack; return the
    `demo OK: ...` line. obsgen runs as the printed commands do: in the demo's directory, where its default
    spec and output are the demo's."""
    from localstack import environ

    from obsgen.run import emit
    from obsgen.cli import main as cli
    from obsgen.deploy import ledger
    from obsgen.deploy.state import ledger_path
    from obsgen.spec import load_spec

    env = info["environ"]
    print(f"== local stack ({'kept running: make demo-stop stops it' if keep else 'stopped when the demo ends'})")
    print(f"   Prometheus    {env['OBSGEN_PROMETHEUS_URL']}")
    print(f"   Alertmanager  {env['OBSGEN_ALERTMANAGER_URL']}")
    print(f"   Pushgateway   {env['OBSGEN_PUSHGATEWAY_URL']}")
    print(f"   PagerDuty and Slack: a local sink at {info['sink']}")
    print(f"   Grafana: the obsgen Grafana TEST DOUBLE at {info['grafana']} (not a real Grafana)")
    print(f"   the demo's directory: {directory}")
    print(f"   spec: {SPEC} there, the reference spec with dev's channels pointed at the sink"
          f"{', fast timing (1s evaluation, for: 0s)' if info['fast'] else ', the spec timing'}")
    print(f"   state directory (ledger): {state}")
    with environ({**env, "OBSGEN_STATE_DIR": str(state)}), contextlib.chdir(directory):
        print(f"\n== obsgen build -q   (in the demo's directory: {SPEC} into generated/)")
        code = cli(["build", "-q"])
        if code != 0:
            raise DemoFailed(f"obsgen build exited {code}")
        print("\n== obsgen apply --env dev --yes")
        code = cli(["apply", "--env", "dev", "--yes"])
        if code != 0:
            raise DemoFailed(f"obsgen apply --env dev exited {code}")
        last = ledger.history(ledger_path(), "dev", 1)
        applied = len(last[0].changes) if last else 0
        headline = f"dev applied ({applied} change{'' if applied == 1 else 's'})"
        if not drills:
            return f"demo OK: {headline}; fire drills skipped"
        model = load_spec(str(SPEC))
        passing = emit.Report(source="demo baseline", duration_seconds=10.0, mode="strict",
                              steps=tuple(emit.StepResult(s.id, s.tier, "PASS", 1.0) for s in model.steps))
        emit.emit_to_pushgateway(model, "dev", passing, env["OBSGEN_PUSHGATEWAY_URL"])
        print("\n== a passing run published (obsgen.run.emit); waiting for Prometheus to find its Alertmanager")
        _wait_for_alertmanager(env["OBSGEN_PROMETHEUS_URL"])
        time.sleep(6)  # Prometheus 2.42 forgets its Alertmanagers for ~5 s after the apply's reload
        landed = []
        for tier, path, what in (("kernel", PAGERDUTY, "PagerDuty"), ("governance", SLACK, "Slack")):
            print(f"\n== obsgen drill --env dev --tier {tier}")
            start = time.time()
            code = cli(["drill", "--env", "dev", "--tier", tier])
            if code != 0:
                raise DemoFailed(f"the {tier} drill failed (obsgen drill exited {code})")
            hit = sink_arrival(directory, start, lambda r, p=path: r["path"].startswith(p) and _firing(r),
                               ARRIVAL_TIMEOUT)
            if hit is None:
                raise DemoFailed(f"the {tier} drill: nothing reached the {what} sink within {ARRIVAL_TIMEOUT:g} s")
            landed.append((tier, what, hit, hit["t"] - start))
    print("\n== where each alert landed")
    for tier, what, hit, seconds in landed:
        print(f"   {tier:<10} {what} sink {hit['path']} {seconds:.1f} s after the failing run was pushed: "
              f"{_summary(hit)}")
    (_, _, _, paged), (_, _, _, slacked) = landed
    return (f"demo OK: {headline}, kernel drill paged PagerDuty in {paged:.1f} s, governance drill reached "
            f"Slack in {slacked:.1f} s")


def print_exports(info: dict[str, Any], record: dict[str, Any], state: Path, user_spec: str | None) -> None:
    """The `cd` into the demo's directory, the exports (the stack and the demo's state directory, never a
    spec: see the module's docstring) and the commands to try there."""
    env = {**info["environ"], "OBSGEN_STATE_DIR": str(state)}
    print("\n== the stack keeps running. In your shell:")
    print(f"cd {shlex.quote(record['dir'])}")
    for key in sorted(env):
        print(f"export {key}={shlex.quote(env[key])}")
    venv_obsgen = Path(sys.executable).parent / "obsgen"
    if venv_obsgen.exists() and shutil.which("obsgen") != str(venv_obsgen):
        print(f'export PATH={shlex.quote(str(venv_obsgen.parent))}:"$PATH"')
    if user_spec:
        print(f"(your OBSGEN_SPEC={shlex.quote(user_spec)} would win over the demo's {SPEC}: unset it for the "
              f"commands below)")
    print(f"\nthen try, in the demo's directory (its {SPEC} and generated/ are obsgen's defaults there):")
    fresh_reports(Path(record["dir"]) / "reports", time.time())
    width = max(len(command) for command, _ in TRY if len(command) <= 40)
    for command, why in TRY:
        print(f"  {command:<{width}}  # {why}")
    print("\n`cd -` goes back to your checkout, where build and check do what they always do: the exports only "
          "point live commands (diff, apply, doctor, drill, emit, history) at the demo stack and its ledger.")
    print(f"what PagerDuty and Slack receive: tail -f {Path(record['dir']) / SINK_LOG}")
    pids = ", ".join(f"{p['name']} {p['pid']}" for p in record["processes"])
    print(f"make demo-stop (in your checkout) stops it ({pids}) and removes {record['dir']}\n")


def fresh_reports(directory: Path, now: float) -> Path:
    """The sample reports of tests/reports the demo suggests emitting, dated now (the failing run one second
    on, the passing run two), in the order the commands come: each is newer than the demo's own passing run,
    so `obsgen emit` counts them, and the last-run time they set is the moment of the demo, not the day the
    samples were written."""
    directory.mkdir(parents=True, exist_ok=True)
    for offset, name in enumerate(("kernel-failed.json", "passing.json"), 1):
        report = json.loads((ROOT / "tests" / "reports" / name).read_text())
        report.setdefault("metadata", {})["timestamp"] = \
            datetime.fromtimestamp(int(now) + offset, timezone.utc).isoformat()
        (directory / name).write_text(json.dumps(report, indent=2) + "\n")
    return directory


def run(keep: bool, drills: bool) -> int:
    # The user's own spec, if any, is not the demo's: the demo's is found by its path in its directory.
    user_spec = os.environ.pop("OBSGEN_SPEC", None)
    previous = read_record()
    if previous is not None:
        if any(running(p) for p in previous.get("processes", [])):
            print(f"demo FAILED: a kept demo is still running ({previous.get('dir')}): run `make demo-stop` first")
            return 1
        stop_processes(previous)  # a record left behind by a demo that is gone: clean up after it
        forget_record(previous, record_path())
    record, server = start_server()
    state = Path(record["dir"]) / STATE  # the demo's own: its applies never enter the user's ledger
    kept, line = False, "demo FAILED: interrupted"
    try:
        info = wait_ready(record, server)
        line = demo(info, Path(record["dir"]), state, drills, keep)
        if keep:
            print_exports(info, record, state, user_spec)
            kept = True
    except DemoFailed as exc:
        line = f"demo FAILED: {exc}"
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - the demo ends with its one line whatever happened
        line = f"demo FAILED: {type(exc).__name__}: {exc}"
    finally:
        if not kept:
            print("\n== stopping the stack")
            stop_processes(record, server)
            forget_record(record, record_path())
    print(line)
    return 0 if line.startswith("demo OK") else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/demo.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--keep", action="store_true", help="leave the stack running and print how to use it")
    mode.add_argument("--stop", action="store_true", help="stop a kept demo and remove its temp dir")
    mode.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--no-drills", action="store_true", help="start the stack and apply dev only")
    args = parser.parse_args(argv)
    if args.serve:
        return serve(Path(args.serve))
    try:
        return stop() if args.stop else run(args.keep, not args.no_drills)
    except DemoFailed as exc:
        print(f"demo FAILED: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
