"""Figures 4-6: apply, rule cost and time to alert against real Prometheus and Alertmanager on loopback.

The stacks come from the test suite: `tests/stack.py` (Prometheus, Alertmanager, Pushgateway, the sink
standing in for PagerDuty and Slack), `tests/localstack.py` (the reference spec's dev pointed at them, fast
timing) and `tests/doubles/grafana.py` (the Grafana HTTP API double). Every wait is bounded.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import requests
import yaml

import specgen
from measure import OBSGEN, PYTHON, ROOT, median, ratio, run_child
from writer import Figure, Table

sys.path.insert(0, str(ROOT / "tests"))
from doubles.grafana import GrafanaDouble  # noqa: E402
from localstack import PAGERDUTY_PATH, LocalStack, environ  # noqa: E402
from stack import Stack  # noqa: E402

T = TypeVar("T")
Log = Callable[[str], None]
TOKEN = "glsa_bench_token_0123456789abcdef"
LATENCY = 0.05  # seconds the Grafana double waits before answering each request
DASHBOARDS, SLOS = 200, 16  # 2 + 3 x 16 = 50 rule groups
NOOP_TARGET = 3.0
FIRST_TARGET = 3.0  # the first apply, writes in parallel (issue 9: 13 s with one write at a time)
FIRST_BEFORE = "13.0 s in bench/results.md of 63cc753: parallel reads, one write at a time"
# `obsgen` as a child process with one request at a time, reads and writes: what one_request_at_a_time()
# does in-process, done before obsgen.cli is imported
SEQUENTIAL_OBSGEN = (
    "import sys\n"
    "from obsgen import http\n"
    "saved, http.READ_WORKERS = http.READ_WORKERS, 1\n"
    "http.parallel.__defaults__ = tuple(1 if d == saved else d for d in http.parallel.__defaults__ or ())\n"
    "from obsgen.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n")
WAIT = 60.0  # bound of every wait for an alert, a resolve or a quiet stack
PROMETHEUS_RELOAD = "prometheus_config_last_reload_success_timestamp_seconds"
ALERTMANAGER_RELOAD = "alertmanager_config_last_reload_success_timestamp_seconds"
NEVER = "0001-01-01"  # lastEvaluation of a group Prometheus has not evaluated yet


def poll(fn: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Call `fn` every `interval` s until it returns something truthy; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no {what} within {timeout:g} s")
        time.sleep(interval)


@contextlib.contextmanager
def state_dir(path: Path) -> Iterator[None]:
    """OBSGEN_STATE_DIR for in-process runs (obsgen reads it at every use)."""
    saved = os.environ.get("OBSGEN_STATE_DIR")
    os.environ["OBSGEN_STATE_DIR"] = str(path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OBSGEN_STATE_DIR", None)
        else:
            os.environ["OBSGEN_STATE_DIR"] = saved


def apply_in_process(*argv: str) -> tuple[float, int, str]:
    """`obsgen apply --env dev --yes ARGV` through `obsgen.cli.main`: (seconds, exit code, output)."""
    from obsgen.cli import main

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["apply", "--env", "dev", "--yes", *argv])
    return time.perf_counter() - start, code, out.getvalue()


class ClientRecorder:
    """Counts obsgen's own HTTP requests (writes by target, the most in flight at once) while active."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.writes: Counter[str] = Counter()
        self.in_flight = self.max_in_flight = 0

    def __enter__(self) -> "ClientRecorder":
        from obsgen import http as base

        self.original = original = base.Http.request
        recorder = self

        def request(http: Any, method: str, path: str, **kwargs: Any) -> Any:
            with recorder.lock:
                recorder.requests += 1
                recorder.in_flight += 1
                recorder.max_in_flight = max(recorder.max_in_flight, recorder.in_flight)
                if method not in ("GET", "HEAD"):
                    recorder.writes[f"{http.name.split(' ')[0]} {method} {path}"] += 1
            try:
                return original(http, method, path, **kwargs)
            finally:
                with recorder.lock:
                    recorder.in_flight -= 1

        base.Http.request = request  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from obsgen import http as base

        base.Http.request = self.original  # type: ignore[method-assign]


@contextlib.contextmanager
def one_request_at_a_time() -> Iterator[bool]:
    """READ_WORKERS = 1 for the baseline. `parallel(..., workers=READ_WORKERS)` binds its default when the
    module is imported, so the module variable alone does not change it: that default is set to 1 as well.
    Yields whether that second step was needed."""
    from obsgen import http as base

    saved, defaults = base.READ_WORKERS, base.parallel.__defaults__
    base.READ_WORKERS = 1
    bound = bool(defaults) and saved in defaults  # type: ignore[operator]
    if bound:
        base.parallel.__defaults__ = tuple(1 if d == saved else d for d in defaults)  # type: ignore[union-attr]
    try:
        yield bound
    finally:
        base.READ_WORKERS = saved
        base.parallel.__defaults__ = defaults


def compile_time(spec: Path) -> float:
    """Seconds to load and compile dev of `spec` in this process: the part of an apply that is not HTTP."""
    from obsgen.generate import compile_spec

    start = time.perf_counter()
    compile_spec(str(spec), ["dev"])
    return time.perf_counter() - start


def reload_stamp(url: str, metric: str) -> float | None:
    """The last successful config reload of a Prometheus or Alertmanager (unix seconds, sub-second)."""
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(metric + " "):
            return float(line.split()[1])
    return None


# --- 4. apply -------------------------------------------------------------------------------------

@dataclass
class Phase:
    """One apply run: its time and what it changed, counted at the servers (and in-process at the client)."""

    wall: float
    ok: bool
    grafana_writes: int
    grafana_requests: int
    prometheus_reloaded: bool
    alertmanager_reloaded: bool
    grafana_in_flight: int = 0  # the most requests the double handled at once
    client_writes: int | None = None  # in-process runs only
    max_in_flight: int | None = None  # in-process runs only
    detail: str = ""

    @property
    def writes(self) -> int:
        return self.grafana_writes + self.prometheus_reloaded + self.alertmanager_reloaded


@dataclass
class ApplyBench:
    """The stack, the Grafana double and the two specs of figure 4."""

    stack: Stack
    spec: Path
    renamed: Path
    state: Path
    grafana: GrafanaDouble | None = None
    initial_alertmanager: str = ""
    phases: dict[str, list[Phase]] = field(default_factory=dict)
    compile_times: list[float] = field(default_factory=list)

    def overrides(self) -> dict[str, str]:
        assert self.grafana is not None
        return {"OBSGEN_DEV_GRAFANA_TOKEN": TOKEN, "OBSGEN_GRAFANA_URL": self.grafana.url,
                "OBSGEN_PROMETHEUS_URL": self.stack.prometheus_url,
                "OBSGEN_PROMETHEUS_RULES_DIR": str(self.stack.rules_dir),
                "OBSGEN_ALERTMANAGER_URL": self.stack.alertmanager_url,
                "OBSGEN_ALERTMANAGER_CONFIG_FILE": str(self.stack.alertmanager_config_file),
                "OBSGEN_STATE_DIR": str(self.state)}

    def fresh_grafana(self) -> None:
        """A new, empty Grafana double with the injected latency; the live rules and routing emptied too."""
        if self.grafana is not None:
            self.grafana.stop()
        for path in self.stack.rules_dir.glob("*"):
            path.unlink()
        self.stack.reload_prometheus()
        self.stack.write_alertmanager_config(self.initial_alertmanager)
        self.stack.reload_alertmanager()
        self.grafana = GrafanaDouble(token=TOKEN).start()
        self.grafana.latency(LATENCY)

    def measure(self, name: str, run: Callable[[], tuple[float, bool, str, ClientRecorder | None]]) -> Phase:
        """Run one apply and count its writes at the double and the reloads at Prometheus and Alertmanager."""
        assert self.grafana is not None
        self.grafana.reset_requests()
        before = (reload_stamp(self.stack.prometheus_url, PROMETHEUS_RELOAD),
                  reload_stamp(self.stack.alertmanager_url, ALERTMANAGER_RELOAD))
        wall, ok, detail, recorder = run()
        after = (reload_stamp(self.stack.prometheus_url, PROMETHEUS_RELOAD),
                 reload_stamp(self.stack.alertmanager_url, ALERTMANAGER_RELOAD))
        writes = [r for r in self.grafana.requests if r[0] not in ("GET", "HEAD")]
        phase = Phase(wall, ok, len(writes), len(self.grafana.requests), before[0] != after[0],
                      before[1] != after[1], grafana_in_flight=self.grafana.max_in_flight, detail=detail)
        if recorder is not None:
            phase.client_writes = sum(recorder.writes.values())
            phase.max_in_flight = recorder.max_in_flight
        self.phases.setdefault(name, []).append(phase)
        return phase

    def cli(self, spec: Path, sequential: bool = False) -> tuple[float, bool, str, None]:
        """`obsgen apply` in a child process, as a user runs it (or with one request at a time)."""
        command = [PYTHON, "-c", SEQUENTIAL_OBSGEN] if sequential else [OBSGEN]
        child = run_child([*command, "apply", "--env", "dev", "--yes", "--spec", spec],
                          env={**os.environ, **self.overrides()}, timeout=300)
        return child.wall, child.ok, child.describe_failure(), None

    def in_process(self, sequential: bool) -> tuple[float, bool, str, ClientRecorder]:
        """`obsgen.cli.main` in this process, with parallel reads as shipped or one request at a time."""
        with environ(self.overrides()), state_dir(self.state), ClientRecorder() as recorder:
            with one_request_at_a_time() if sequential else contextlib.nullcontext(False):
                wall, code, output = apply_in_process("--spec", str(self.spec))
        return wall, code == 0, "" if code == 0 else output.strip().splitlines()[-1], recorder


def apply_figures(tmp: Path, runs: int, long_runs: int, log: Log) -> tuple[list[Figure], Table]:
    """Figure 4: `runs` runs of the no-op (by CLI and in-process) and changed applies; `long_runs` of the
    first apply and of the one-request-at-a-time baseline, which take several times longer."""
    data = specgen.apply_spec(DASHBOARDS, SLOS)
    what = f"{DASHBOARDS} dashboards, {SLOS} SLOs"
    # the same file name for both: every dashboard's description names the spec file it came from
    spec = specgen.write_spec(data, tmp / "apply" / "selftest.yaml", what)
    renamed = specgen.write_spec(specgen.rename_dashboard(data, 7, "Selftest board 007, renamed"),
                                 tmp / "apply-renamed" / "selftest.yaml", what + ", one dashboard renamed")
    with Stack(components=("alertmanager", "prometheus")) as stack:
        bench = ApplyBench(stack, spec, renamed, tmp / "state-apply")
        bench.initial_alertmanager = stack.alertmanager_config_file.read_text()
        try:
            return _apply_runs(bench, runs, long_runs, log)
        finally:
            if bench.grafana is not None:
                bench.grafana.stop()


def _apply_runs(bench: ApplyBench, runs: int, long_runs: int, log: Log) -> tuple[list[Figure], Table]:
    for i in range(long_runs):  # parallel and sequential first applies interleaved, the parallel one last
        for sequential in (True, False):
            bench.fresh_grafana()
            p = bench.measure("first-sequential" if sequential else "first", lambda: bench.cli(bench.spec, sequential))
            log(f"  first apply {i + 1}/{long_runs}{', one request at a time' if sequential else ''}: {p.wall:.2f} s, "
                f"{p.grafana_writes} Grafana writes, at most {p.grafana_in_flight} requests in flight at the "
                f"double {p.detail}")
    groups = len(bench.stack.rule_groups())
    for i in range(runs):
        p = bench.measure("noop-cli", lambda: bench.cli(bench.spec))
        log(f"  no-op re-apply (CLI) {i + 1}/{runs}: {p.wall:.2f} s, {p.writes} writes {p.detail}")
    bench.in_process(False)  # warm-up: imports and caches of the in-process runs
    bench.compile_times = [compile_time(bench.spec) for _ in range(runs)]
    log(f"  compile only (dev, in-process): {median(bench.compile_times):.2f} s")
    for i in range(runs):  # parallel and sequential runs interleaved
        for sequential in (False, True) if i < long_runs else (False,):
            name = "noop-sequential" if sequential else "noop-parallel"
            p = bench.measure(name, lambda: bench.in_process(sequential))
            log(f"  no-op re-apply in-process, {'sequential' if sequential else 'parallel'}: {p.wall:.2f} s, "
                f"at most {p.max_in_flight} in flight, {p.writes} writes {p.detail}")
    with one_request_at_a_time() as bound:
        pass
    for i in range(runs):
        spec = bench.renamed if i % 2 == 0 else bench.spec
        p = bench.measure("changed", lambda: bench.cli(spec))
        log(f"  one changed dashboard {i + 1}/{runs}: {p.wall:.2f} s, {p.writes} writes {p.detail}")
    return _apply_results(bench, groups, bound)


def _apply_results(bench: ApplyBench, groups: int, bound: bool) -> tuple[list[Figure], Table]:
    ph = bench.phases
    wall = {k: median([p.wall for p in v if p.ok]) for k, v in ph.items()}
    samples = {k: [p.wall for p in v if p.ok] for k, v in ph.items()}
    failed = {k: next((p.detail for p in v if not p.ok), "") for k, v in ph.items()}
    noop_writes = max((p.writes for p in ph.get("noop-cli", [])), default=None)
    changed_writes = sorted({p.writes for p in ph.get("changed", [])})
    first = ph.get("first", [])
    first_flight = max((p.grafana_in_flight for p in first), default=0)
    seq_first_flight = max((p.grafana_in_flight for p in ph.get("first-sequential", [])), default=0)
    seq_flight = max((p.max_in_flight or 0 for p in ph.get("noop-sequential", [])), default=0)
    par_flight = max((p.max_in_flight or 0 for p in ph.get("noop-parallel", [])), default=0)
    speedup = ratio(wall.get("noop-sequential"), wall.get("noop-parallel"))
    noop_gets = max((p.grafana_requests for p in ph.get("noop-cli", [])), default=0)
    fig = [
        Figure("apply-first", 4, f"first apply (CLI): {DASHBOARDS} dashboards, {groups} rule groups, routing; "
               f"writes in parallel (as shipped)", wall.get("first"), "s", samples.get("first", []),
               f"≤ {FIRST_TARGET:g} s", None if wall.get("first") is None else wall["first"] <= FIRST_TARGET,
               failed.get("first") or (f"{first[-1].grafana_writes} Grafana writes, at most {first_flight} requests "
                                       f"in flight at the double; Prometheus and Alertmanager reloaded once each; a "
                                       f"fresh double and empty rules for every run; before: {FIRST_BEFORE}"
                                       if first else ""),
               extra={"grafana_requests": first[-1].grafana_requests if first else 0, "workers": first_flight,
                      "latency": LATENCY}),
        Figure("apply-first-sequential", 4, "first apply (CLI), one request at a time (READ_WORKERS = 1: reads and "
               "writes)", wall.get("first-sequential"), "s", samples.get("first-sequential", []), "", None,
               failed.get("first-sequential") or f"the baseline; at most {seq_first_flight} request in flight at the "
                                                 f"double; same spec, fresh double and empty rules"),
        Figure("apply-first-speedup", 4, "parallel reads and writes: speed-up of the first apply",
               ratio(wall.get("first-sequential"), wall.get("first")), "×", [], "", None,
               "one request at a time ÷ as shipped, CLI medians"),
        Figure("apply-noop", 4, "no-op re-apply (CLI)", wall.get("noop-cli"), "s", samples.get("noop-cli", []),
               f"≤ {NOOP_TARGET:g} s", None if wall.get("noop-cli") is None else wall["noop-cli"] <= NOOP_TARGET,
               failed.get("noop-cli") or f"`obsgen apply --env dev --yes` in a child process, imports included; "
                                         f"{noop_gets} requests to Grafana per run",
               extra={"grafana_requests": noop_gets, "workers": par_flight, "latency": LATENCY}),
        Figure("apply-noop-writes", 4, "no-op re-apply: writes (Grafana requests other than GET, Prometheus and "
               "Alertmanager reloads), most in any run", noop_writes, "writes", [], "0 writes",
               None if noop_writes is None else noop_writes == 0, "counted at the double and from the reload "
               "timestamps the servers export"),
        Figure("apply-noop-parallel", 4, "no-op re-apply in-process, parallel reads (as shipped)",
               wall.get("noop-parallel"), "s", samples.get("noop-parallel", []), "", None,
               f"`obsgen.cli.main`; at most {par_flight} requests in flight"),
        Figure("apply-noop-sequential", 4, "no-op re-apply in-process, one request at a time (READ_WORKERS = 1)",
               wall.get("noop-sequential"), "s", samples.get("noop-sequential", []), "", None,
               f"at most {seq_flight} request in flight"
               + ("; `parallel`'s default worker count was also set to 1 (it binds READ_WORKERS at import)"
                  if bound else "")),
        Figure("apply-compile", 4, "of which: load and compile dev of the spec, in-process (no HTTP)",
               median(bench.compile_times), "s", bench.compile_times, "", None,
               "`obsgen.generate.compile_spec(spec, [\"dev\"])`, the same work every apply does first"),
        Figure("apply-speedup", 4, "parallel reads: speed-up of the no-op re-apply", speedup, "×", [], "", None,
               "sequential ÷ parallel, in-process medians"),
        Figure("apply-changed", 4, "one changed dashboard (CLI)", wall.get("changed"), "s", samples.get("changed", []),
               "", None, failed.get("changed") or "one dashboard's title changed, alternately there and back"),
        Figure("apply-changed-writes", 4, "one changed dashboard: writes", changed_writes[-1] if changed_writes else None,
               "writes", [], "exactly 1 write", None if not changed_writes else changed_writes == [1],
               f"writes per run: {', '.join(str(p.writes) for p in ph.get('changed', []))}"),
    ]
    rows = []
    labels = {"first": "first apply (CLI)", "first-sequential": "first apply (CLI), one request at a time",
              "noop-cli": "no-op re-apply (CLI)",
              "noop-parallel": "no-op re-apply, in-process, parallel",
              "noop-sequential": "no-op re-apply, in-process, one request at a time",
              "changed": "one changed dashboard (CLI)"}
    for key, label in labels.items():
        for i, p in enumerate(ph.get(key, [])):
            rows.append([label if i == 0 else "", f"{p.wall:.2f}", str(p.grafana_writes),
                         "yes" if p.prometheus_reloaded else "no", "yes" if p.alertmanager_reloaded else "no",
                         "–" if p.client_writes is None else str(p.client_writes),
                         "–" if p.max_in_flight is None else str(p.max_in_flight), str(p.grafana_in_flight),
                         p.detail or "ok"])
    table = Table("apply", "4. Every apply run",
                  ["run", "seconds", "Grafana writes", "Prometheus reloaded", "Alertmanager reloaded",
                   "obsgen's write requests", "most requests in flight", "most in flight at the double", "result"],
                  rows,
                  f"The spec: the reference spec with {DASHBOARDS} dashboards (copies of its overview) and {SLOS} "
                  f"SLOs, so dev has {DASHBOARDS} dashboards and {groups} rule groups. The Grafana double answers "
                  f"every request after {LATENCY * 1000:.0f} ms; Prometheus and Alertmanager run for real "
                  f"(`tests/stack.py`), so the {groups} rule groups are rule files and one reload, not "
                  f"{groups} requests. 'obsgen's write requests' and 'most requests in flight' are counted in "
                  f"obsgen's HTTP client (in-process runs only); 'most in flight at the double' by the Grafana "
                  f"double. The one-request-at-a-time runs set READ_WORKERS (and `parallel`'s default) to 1 "
                  f"before obsgen is imported. The changed spec keeps the file name of the original: every dashboard's "
                  f"description names the spec file, so a spec under another name would rewrite all of them. "
                  f"The double runs inside the benchmark's own process, so in-process applies share its "
                  f"interpreter lock with it, parallel and sequential runs alike.")
    return fig, table


# --- 5 and 6: the local stack with dev applied ----------------------------------------------------

@contextlib.contextmanager
def local_stack(tmp: Path, log: Log) -> Iterator[tuple[LocalStack, float]]:
    """`LocalStack(fast=True)` with dev applied; yields it and the time (unix) its rules were loaded."""
    directory = tmp / "local"
    directory.mkdir()
    with LocalStack(directory, fast=True) as local:
        with local.environment(), state_dir(directory / "state"):
            wall, code, output = apply_in_process()
        if code != 0:
            raise RuntimeError(f"obsgen apply of the local stack's dev failed: {output.strip()[-500:]}")
        loaded = time.time()
        from obsgen.spec import load_spec

        local.model = load_spec(str(local.spec))  # type: ignore[attr-defined]
        log(f"  local stack up, dev applied in {wall:.2f} s")
        yield local, loaded


def _step_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if "slo" not in a.get("labels", {})]


def _quiet(local: LocalStack) -> None:
    """Wait until no step alert is pending or firing in Prometheus nor active in Alertmanager."""
    poll(lambda: not _step_alerts(local.stack.alerts()) and not _step_alerts(local.stack.prometheus_alerts()),
         WAIT, "quiet stack (every step alert resolved)", interval=0.2)


def _pagerduty(local: LocalStack, action: str, **match: str) -> list[dict[str, Any]]:
    out = []
    for record in local.sink.received(PAGERDUTY_PATH):
        body = record.body if isinstance(record.body, dict) else {}
        details = (body.get("payload") or {}).get("custom_details") or {}
        if body.get("event_action") == action and all(
                (details.get(k) if k != "dedup_key" else body.get(k)) == v for k, v in match.items()):
            out.append(body)
    return out


def time_to_alert(local: LocalStack, runs: int, log: Log) -> tuple[list[Figure], Table]:
    from obsgen import emit

    model = local.model  # type: ignore[attr-defined]
    url = local.stack.pushgateway_url
    # Prometheus 2.42 forgets its Alertmanagers for ~5 s after every reload (see tests/stack.py)
    time.sleep(6)
    poll(lambda: requests.get(f"{local.stack.prometheus_url}/api/v1/alertmanagers", timeout=5)
         .json()["data"]["activeAlertmanagers"], WAIT, "Alertmanager known to Prometheus", interval=0.2)
    passing = emit.synthetic_report(model, "dev", "kernel", failing=0)
    emit.emit_to_pushgateway(model, "dev", passing, url)
    _quiet(local)
    alerts, resolves, rows = [], [], []
    for i in range(runs):
        local.sink.clear()
        failing = emit.synthetic_report(model, "dev", "kernel")
        step = failing.failing[0]
        start = time.monotonic()
        emit.emit_to_pushgateway(model, "dev", failing, url)
        trigger = poll(lambda: _pagerduty(local, "trigger", step_id=step), WAIT, f"PagerDuty trigger for {step}")[0]
        alerts.append(time.monotonic() - start)
        start = time.monotonic()
        emit.emit_to_pushgateway(model, "dev", passing, url)
        poll(lambda: _pagerduty(local, "resolve", dedup_key=trigger.get("dedup_key")), WAIT, "PagerDuty resolve")
        resolves.append(time.monotonic() - start)
        rows.append([str(i + 1), step, f"{alerts[-1]:.2f}", f"{resolves[-1]:.2f}"])
        log(f"  time to alert {i + 1}/{runs}: {alerts[-1]:.2f} s, to resolve {resolves[-1]:.2f} s")
        _quiet(local)
    figures = [
        Figure("time-to-alert", 6, "time to alert: failing kernel run pushed → PagerDuty trigger at the sink",
               median(alerts), "s", alerts, "", None,
               "1 s scrape and evaluation, `for: 0s`, 1 s group_wait (LocalStack fast); measured after waiting "
               "out Prometheus 2.42's ~5 s without Alertmanagers after the apply's reload"),
        Figure("time-to-resolve", 6, "time to resolve: passing run pushed → PagerDuty resolve at the sink",
               median(resolves), "s", resolves, "", None, "same stack, between the runs"),
    ]
    table = Table("alert", "6. Every fire drill", ["run", "failing step", "to trigger (s)", "to resolve (s)"], rows,
                  "Runs are published with `obsgen.emit` (`synthetic_report(model, \"dev\", \"kernel\")` and a passing "
                  "run) to the Pushgateway; the sink is polled every 20 ms. The stack is quiet (no step alert "
                  "pending or firing) before every run.")
    return figures, table


def rules_per_slo() -> dict[str, int]:
    """Rules in each generated dev/prometheus/slo-*.rules.yaml of the committed reference output."""
    out = {}
    for path in sorted((ROOT / "generated" / "dev" / "prometheus").glob("slo-*.rules.yaml")):
        groups = (yaml.safe_load(path.read_text()) or {}).get("groups") or []
        out[path.name.removesuffix(".rules.yaml").removeprefix("slo-")] = sum(len(g.get("rules") or []) for g in groups)
    return out


def rule_cost(local: LocalStack, loaded: float, samples: int, log: Log) -> tuple[list[Figure], Table]:
    """Rules per SLO (committed output) and the evaluationTime Prometheus reports for every generated group."""
    counts = rules_per_slo()
    rules_dir = local.stack.rules_dir.resolve()

    def ours() -> list[dict[str, Any]]:
        return [g for g in local.stack.rule_groups() if Path(g["file"]).resolve().parent == rules_dir]

    longest = max((float(g.get("interval") or 0) for g in ours()), default=0.0)
    deadline = loaded + longest + 30  # a group's first evaluation comes at most one interval after loading
    log(f"  waiting up to {max(deadline - time.time(), 0):.0f} s for every group's first evaluation")
    poll(lambda: all(not str(g.get("lastEvaluation", NEVER)).startswith(NEVER) for g in ours())
         or time.time() > deadline, max(deadline - time.time(), 0) + 10, "evaluation of every group", 1.0)
    times: dict[str, list[float]] = {}
    meta: dict[str, dict[str, Any]] = {}
    for i in range(samples):
        for g in ours():
            if not str(g.get("lastEvaluation", NEVER)).startswith(NEVER):
                times.setdefault(g["name"], []).append(float(g["evaluationTime"]) * 1000)
            meta[g["name"]] = g
        if i + 1 < samples:
            time.sleep(1.1)
    never = sorted(set(meta) - set(times))
    per_group = {name: median(v) for name, v in times.items()}
    total = sum(v for v in per_group.values() if v is not None)
    slo_ids = [s.id for s in local.model.slos]  # type: ignore[attr-defined]
    per_slo = [sum(per_group.get(f"slo-{s}-{part}") or 0 for part in ("sli", "period", "alerts")) for s in slo_ids]
    log(f"  rule groups evaluated: {len(times)}, never: {never}, total {total:.2f} ms per round")
    figures = [
        Figure("rules-per-slo", 5, "rules emitted per SLO (generated dev slo-*.rules.yaml)",
               max(counts.values()) if counts else None, "rules", [], "≤ 17 rules (Sloth)",
               None if not counts else max(counts.values()) <= 17,
               ", ".join(f"{k}: {v}" for k, v in counts.items())),
        Figure("eval-per-slo", 5, "evaluation time per SLO (its sli + period + alerts groups)",
               median(per_slo) if per_slo else None, "ms", [], "", None,
               f"evaluationTime from /api/v1/rules, read {samples} times; median over the {len(per_slo)} SLOs "
               f"of each SLO's sum ({', '.join(f'{v:.2f}' for v in per_slo)} ms)"),
        Figure("eval-all", 5, "evaluation time of every generated group, one round (sum of group medians)",
               total if times else None, "ms", [], "", None,
               f"{len(times)} groups" + (f"; never evaluated within the wait: {', '.join(never)}" if never else "")),
    ]
    rows = [[f"`{name}`", str(meta[name].get("interval")), str(len(meta[name].get("rules") or [])),
             "–" if name not in times else f"{per_group[name]:.3f}", str(len(times.get(name, [])))]
            for name in sorted(meta)]
    table = Table("rule-cost", "5. evaluationTime of every generated group (dev, live)",
                  ["group", "interval (s)", "rules", "evaluationTime (ms, median)", "samples"], rows,
                  f"The local stack's dev (the reference spec, fast timing) after the fire drills of figure 6, so "
                  f"the TSDB holds a few runs only: this is the per-rule overhead, not query cost at production "
                  f"cardinality. Groups are read {samples} times 1.1 s apart once every group has been evaluated at "
                  f"least once (the 5-minute period groups first run up to 5 minutes after they are loaded, so "
                  f"their samples repeat one evaluation).")
    return figures, table
