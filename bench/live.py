"""Figure 4: apply against the Grafana double and real Prometheus and Alertmanager on loopback; the helpers
that figures 5-6 (bench/alerting.py) share with it.

The stacks come from the test suite: `tests/stack.py` (Prometheus, Alertmanager, Pushgateway, the sink
standing in for PagerDuty and Slack), `tests/localstack.py` (the reference spec's dev pointed at them, fast
timing) and `tests/doubles/grafana.py` (the Grafana HTTP API double). Every wait is bounded.

The applies run as users run them after `obsgen build`: each spec is built once (not timed) into
`<spec's directory>/generated`, and every apply gets `--out` that directory, so it reads dev's files from
there instead of compiling (obsgen/output/compiled.py).
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

import floors
import specgen
from measure import OBSGEN, PYTHON, ROOT, median, ratio, run_child
from writer import Figure, Table

sys.path.insert(0, str(ROOT / "tests"))
from doubles.grafana import GrafanaDouble  # noqa: E402
from localstack import environ  # noqa: E402
from stack import Stack  # noqa: E402

T = TypeVar("T")
Log = Callable[[str], None]
TOKEN = "glsa_bench_token_0123456789abcdef"
LATENCY = 0.05  # seconds the Grafana double waits before answering each request
DASHBOARDS, SLOS = 200, 16  # 2 + 3 x 16 = 50 rule groups
NOOP_TARGET = 1.2  # issue 19 (3 s before it)
FIRST_TARGET = 2.0  # the first apply, writes in parallel (issue 19; issue 9: 13 s with one write at a time)
FIRST_BEFORE = "13.0 s in bench/results.md of 63cc753: parallel reads, one write at a time"
# `obsgen` as a child process with one request at a time, reads and writes: what one_request_at_a_time()
# does in-process, done before obsgen.cli is imported
SEQUENTIAL_OBSGEN = (
    "import sys\n"
    "from obsgen.deploy import http\n"
    "saved, http.READ_WORKERS = http.READ_WORKERS, 1\n"
    "http.parallel.__defaults__ = tuple(1 if d == saved else d for d in http.parallel.__defaults__ or ())\n"
    "from obsgen.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n")
WAIT = 60.0  # bound of every wait for an alert, a resolve or a quiet stack
PROMETHEUS_RELOAD = "prometheus_config_last_reload_success_timestamp_seconds"
ALERTMANAGER_RELOAD = "alertmanager_config_last_reload_success_timestamp_seconds"
IMPORT_CLI = "import obsgen.cli"  # the interpreter start an apply cannot avoid (floors.apply_floor)


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
        from obsgen.deploy import http as base

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
        from obsgen.deploy import http as base

        base.Http.request = self.original  # type: ignore[method-assign]


@contextlib.contextmanager
def one_request_at_a_time() -> Iterator[bool]:
    """READ_WORKERS = 1 for the baseline. `parallel(..., workers=READ_WORKERS)` binds its default when the
    module is imported, so the module variable alone does not change it: that default is set to 1 as well.
    Yields whether that second step was needed."""
    from obsgen.deploy import http as base

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


def read_time(spec: Path, out: Path) -> tuple[float, bool]:
    """Seconds to load `spec` and take dev's deployed files from `out` in this process (what an apply after
    `obsgen build` does instead of compiling), and whether they were read (False: it compiled instead)."""
    from obsgen.compile import DEPLOYED
    from obsgen.generate import deployable

    start = time.perf_counter()
    _, read = deployable(str(spec), "dev", tuple(DEPLOYED), out)
    return time.perf_counter() - start, read


def generated(spec: Path) -> Path:
    """Where the benchmark builds a spec for the applies: `generated/` beside it."""
    return spec.parent / "generated"


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
    read_times: list[float] = field(default_factory=list)
    read_refused: bool = False  # deployable() compiled instead of reading generated/dev at least once
    start_times: list[float] = field(default_factory=list)  # `python -c "import obsgen.cli"`

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
        child = run_child([*command, "apply", "--env", "dev", "--yes", "--spec", spec, "--out", generated(spec)],
                          env={**os.environ, **self.overrides()}, timeout=300)
        return child.wall, child.ok, child.describe_failure(), None

    def in_process(self, sequential: bool) -> tuple[float, bool, str, ClientRecorder]:
        """`obsgen.cli.main` in this process, with parallel reads as shipped or one request at a time."""
        with environ(self.overrides()), state_dir(self.state), ClientRecorder() as recorder:
            with one_request_at_a_time() if sequential else contextlib.nullcontext(False):
                wall, code, output = apply_in_process("--spec", str(self.spec), "--out", str(generated(self.spec)))
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
    for path in (spec, renamed):  # apply after build, as users run it; the build is not timed
        child = run_child([OBSGEN, "build", "--spec", path, "--out", generated(path), "-q"],
                          env={**os.environ, "OBSGEN_STATE_DIR": str(tmp / "state-build")}, timeout=300)
        if not child.ok:
            raise RuntimeError(f"obsgen build of the apply spec {path}: {child.describe_failure()}")
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
    for i in range(runs):  # interleaved with the interpreter start of the floor
        p = bench.measure("noop-cli", lambda: bench.cli(bench.spec))
        bench.start_times.append(run_child([PYTHON, "-c", IMPORT_CLI]).wall)
        log(f"  no-op re-apply (CLI) {i + 1}/{runs}: {p.wall:.2f} s, {p.writes} writes {p.detail}; "
            f"python -c \"{IMPORT_CLI}\" {bench.start_times[-1]:.3f} s")
    bench.in_process(False)  # warm-up: imports and caches of the in-process runs
    bench.compile_times = [compile_time(bench.spec) for _ in range(runs)]
    log(f"  compile only (dev, in-process): {median(bench.compile_times):.2f} s")
    reads = [read_time(bench.spec, generated(bench.spec)) for _ in range(runs)]
    bench.read_times, bench.read_refused = [t for t, _ in reads], not all(read for _, read in reads)
    log(f"  load the spec and read generated/dev (in-process): {median(bench.read_times):.2f} s"
        + (" -- REFUSED: it compiled" if bench.read_refused else ""))
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
    first_requests = max((p.grafana_requests for p in first), default=0)
    start = median(bench.start_times)
    read = None if bench.read_refused else median(bench.read_times)
    fig = [
        Figure("apply-first", 4, f"first apply (CLI): {DASHBOARDS} dashboards, {groups} rule groups, routing; "
               f"writes in parallel (as shipped)", wall.get("first"), "s", samples.get("first", []),
               f"≤ {FIRST_TARGET:g} s", None if wall.get("first") is None else wall["first"] <= FIRST_TARGET,
               failed.get("first") or (f"{first[-1].grafana_writes} Grafana writes, at most {first_flight} requests "
                                       f"in flight at the double; Prometheus and Alertmanager reloaded once each; a "
                                       f"fresh double and empty rules for every run; before: {FIRST_BEFORE}"
                                       if first else ""),
               extra={"grafana_requests": first_requests, "workers": first_flight, "latency": LATENCY},
               floor=floors.apply_floor(first_requests, LATENCY, start),
               floor_how=_floor_how(first_requests, start)),
        Figure("apply-first-sequential", 4, "first apply (CLI), one request at a time (READ_WORKERS = 1: reads and "
               "writes)", wall.get("first-sequential"), "s", samples.get("first-sequential", []), "", None,
               failed.get("first-sequential") or f"the baseline; at most {seq_first_flight} request in flight at the "
                                                 f"double; same spec, fresh double and empty rules"),
        Figure("apply-first-speedup", 4, "parallel reads and writes: speed-up of the first apply",
               ratio(wall.get("first-sequential"), wall.get("first")), "×", [], "", None,
               "one request at a time ÷ as shipped, CLI medians"),
        Figure("apply-noop", 4, "no-op re-apply (CLI)", wall.get("noop-cli"), "s", samples.get("noop-cli", []),
               f"≤ {NOOP_TARGET:g} s", None if wall.get("noop-cli") is None else wall["noop-cli"] <= NOOP_TARGET,
               failed.get("noop-cli") or f"`obsgen apply --env dev --yes --out DIR` after `obsgen build` in a child "
                                         f"process, imports included; {noop_gets} requests to Grafana per run",
               extra={"grafana_requests": noop_gets, "workers": par_flight, "latency": LATENCY},
               floor=floors.apply_floor(noop_gets, LATENCY, start), floor_how=_floor_how(noop_gets, start)),
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
        Figure("apply-compile", 4, "load and compile dev of the spec, in-process (no HTTP): what an apply did "
               "before reading `generated/`", median(bench.compile_times), "s", bench.compile_times, "", None,
               "`obsgen.generate.compile_spec(spec, [\"dev\"])`, every target; an apply with `--compile` (or with "
               "no up-to-date build) compiles only the deployed ones"),
        Figure("apply-read", 4, "of which: load the spec and read generated/dev, in-process (no HTTP)", read, "s",
               [] if read is None else bench.read_times, "read from the build, not compiled",
               None if not bench.read_times else not bench.read_refused,
               "could not be measured: `deployable()` compiled instead of reading the build (its manifest did "
               "not match), so the applies above compiled too" if bench.read_refused else
               "`obsgen.generate.deployable(spec, \"dev\", DEPLOYED, out)` returned the files read from the "
               "build, the first thing every apply above does"),
        Figure("apply-start", 4, f"`python -c \"{IMPORT_CLI}\"`: interpreter start with obsgen's CLI imported",
               start, "s", bench.start_times, "", None, "interleaved with the CLI no-op re-applies; part of the "
                                                        "apply floors"),
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
                  f"SLOs, so dev has {DASHBOARDS} dashboards and {groups} rule groups. Each spec (and the changed "
                  f"one) was built once, untimed, with `obsgen build --out <its directory>/generated`, and every "
                  f"apply gets `--out` that directory: the applies read dev's files from the build (apply after "
                  f"build). The Grafana double answers "
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


def _floor_how(requests: int, start: float | None) -> str:
    rounds = -(-requests // floors.IN_FLIGHT)
    return (f"ceil({requests} requests counted at the double ÷ {floors.IN_FLIGHT} in flight) = {rounds} round trips "
            f"× {LATENCY * 1000:.0f} ms, plus `python -c \"{IMPORT_CLI}\"` "
            + ("(not measured)" if start is None else f"({start:.3f} s)"))
