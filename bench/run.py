"""obsgen benchmarks: `make bench` (or `.venv/bin/python bench/run.py`) writes bench/results.md and .json.

Order: the live stacks first (time to alert, apply, then rule cost, whose 5-minute groups need time to be
evaluated once), then, with no server running, check, build and scaling, verify, the test suite's recorded
time, and the profiles of check and build. `--only` picks sections (e.g. `--only 1,4 --out /tmp/b` for the
check and apply figures alone). A figure that cannot be measured is reported as such; the others still are.
See bench/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import machine  # noqa: E402
import offline  # noqa: E402
import verify_bench  # noqa: E402
from writer import SECTIONS, Figure, Results, Table, write  # noqa: E402


def log(message: str) -> None:
    print(message, flush=True)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="runs per figure (check: twice this; default 5)")
    p.add_argument("--scaling-runs", type=int, default=3, help="builds per scaling case (default 3)")
    p.add_argument("--slow", type=float, default=10.0,
                   help="a scaling case whose first build takes longer is not repeated (default 10 s)")
    p.add_argument("--build-timeout", type=float, default=60.0,
                   help="kill a scaling build after this many seconds; reported as a lower bound (default 60)")
    p.add_argument("--apply-runs", type=int, default=3,
                   help="runs of the first apply and of the one-request-at-a-time baseline (default 3); the "
                        "other applies run --runs times")
    p.add_argument("--alert-runs", type=int, default=5, help="fire drills for the time to alert (default 5)")
    p.add_argument("--verify-runs", type=int, default=3,
                   help="runs of `obsgen verify --env dev` of the reference spec (default 3)")
    p.add_argument("--verify-timeout", type=float, default=600.0,
                   help="kill the verify of the large spec after this many seconds; reported as a lower bound "
                        "(default 600)")
    p.add_argument("--verify-case", type=_case, default=(1000, 100), metavar="STEPSxSLOS",
                   help="the large spec of figure 7 (default 1000x100, the largest scaling case)")
    p.add_argument("--skip-live", action="store_true", help="leave out figures 4-6 (no Prometheus/Alertmanager)")
    p.add_argument("--only", type=_sections, default=frozenset(SECTIONS), metavar="N,N",
                   help="run only these sections (1-8; default all); the profiles run with all of 1-3 only")
    p.add_argument("--out", type=Path, default=BENCH, help="directory for results.md and results.json")
    return p.parse_args(argv)


def _case(text: str) -> tuple[int, int]:
    steps, _, slos = text.partition("x")
    return int(steps), int(slos)


def _sections(text: str) -> frozenset[int]:
    chosen = frozenset(int(n) for n in text.split(",") if n.strip())
    if not chosen <= set(SECTIONS):
        raise argparse.ArgumentTypeError(f"sections are {min(SECTIONS)}-{max(SECTIONS)}")
    return chosen


def _guard(section: int, what: str, results: Results, fn: Callable[[], tuple[list[Figure], list[Table]]]) -> None:
    """Run one figure group; on failure record it as not measured and go on."""
    log(f"[{section}] {what}")
    try:
        figures, tables = fn()
    except Exception as exc:  # noqa: BLE001 - reported in results.md, the other figures still run
        traceback.print_exc()
        figures, tables = [Figure(f"failed-{section}-{what}", section, what, None, "", [], "", None,
                                  f"could not be measured: {type(exc).__name__}: {str(exc)[:300]}")], []
    results.figures.extend(figures)
    for table in tables:
        results.tables.setdefault(section, []).append(table)


def _live(args: argparse.Namespace, results: Results, tmp: Path) -> None:
    """Figures 6, 4 and 5 (those of `args.only`), in that order; the apply (4) still runs when the local stack
    cannot start."""
    def failed(sections: tuple[int, ...], exc: Exception) -> None:
        traceback.print_exc()
        for section in sections:
            results.figures.append(Figure(f"failed-{section}", section, SECTIONS[section], None, "", [], "", None,
                                          f"could not be measured: {type(exc).__name__}: {str(exc)[:300]}"))

    try:
        import alerting
        import live
    except Exception as exc:  # noqa: BLE001 - e.g. a missing dependency of tests/stack.py
        failed(tuple(sorted(args.only & {4, 5, 6})), exc)
        return
    with contextlib.ExitStack() as stacks:
        local = None
        if args.only & {5, 6}:
            try:
                local, loaded = stacks.enter_context(alerting.local_stack(tmp, log))
            except Exception as exc:  # noqa: BLE001 - e.g. the Debian backends are not installed
                failed(tuple(sorted(args.only & {5, 6})), exc)
        if local is not None and 6 in args.only:
            _guard(6, "time to alert", results, lambda: _one(alerting.time_to_alert(local, args.alert_runs, log)))
        if 4 in args.only:
            _guard(4, "apply", results, lambda: _one(live.apply_figures(tmp, args.runs, args.apply_runs, log)))
        if local is not None and 5 in args.only:
            _guard(5, "rule cost", results, lambda: _one(alerting.rule_cost(local, loaded, 5, log)))


def _one(pair: tuple[list[Figure], Table]) -> tuple[list[Figure], list[Table]]:
    return pair[0], [pair[1]]


def tree_state() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file the figures depend on: obsgen's code, the spec, the committed output."""
    root = BENCH.parent
    files = [root / "pyproject.toml", *(root / "obsgen").rglob("*.py"), *(root / "obsgen").rglob("*.json"),
             *(root / "specs").rglob("*"), *(root / "generated").rglob("*")]
    out = {}
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file():
            out[path.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.monotonic()
    before = tree_state()
    results = Results(machine.describe(), {
        "check and import yaml": args.runs * 2, "build": args.runs,
        "scaling": args.scaling_runs, "no-op and changed applies": args.runs,
        "first apply and sequential baseline": args.apply_runs, "fire drills": args.alert_runs,
        "rule evaluation samples": 5, "verify of the reference spec": args.verify_runs, "verify of the large spec": 1})
    log(f"machine: {results.machine}")
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-") as tmp:
        if not args.skip_live and args.only & {4, 5, 6}:
            _live(args, results, Path(tmp))
    if 1 in args.only:
        _guard(1, "check", results, lambda: (offline.check_figures(args.runs * 2, log), []))
    if 2 in args.only:
        _guard(2, "build", results, lambda: (offline.build_figures(args.runs, log), []))
    if 3 in args.only:
        _guard(3, "scaling", results, lambda: _one(offline.scaling_figures(args.scaling_runs, args.slow,
                                                                           args.build_timeout, log)))
    if 7 in args.only:
        _guard(7, "verify", results, lambda: (verify_bench.verify_figures(
            args.verify_runs, args.verify_timeout, args.verify_case, log), []))
    if 8 in args.only:
        _guard(8, "test suite", results, lambda: (verify_bench.suite_figures(), []))
    if {1, 2, 3} <= args.only:
        log("[profile] where the time goes")
        try:
            tables, results.profile = offline.where_time_goes(log)
            results.tables[0] = tables
        except Exception:  # noqa: BLE001 - the figures stand without the profile
            traceback.print_exc()
    results.figures.sort(key=lambda f: f.section)
    explain(results)
    results.notes = notes(results)
    if args.only != frozenset(SECTIONS):
        results.notes.insert(0, f"**A partial run** (`--only {','.join(map(str, sorted(args.only)))}`): the other "
                                f"sections were not measured.")
    after = tree_state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        results.notes.insert(0, f"**The sources changed while this ran** ({len(changed)} "
                                f"file{'' if len(changed) == 1 else 's'}, e.g. "
                                f"{', '.join(changed[:5])}): figures measured before and after the change mix; "
                                f"run `make bench` again on a quiet tree.")
        log(f"warning: {len(changed)} files under obsgen/, specs/ or generated/ changed during the run")
    results.duration_s = time.monotonic() - started
    md, js = write(results, args.out)
    log(f"wrote {md} and {js} in {results.duration_s / 60:.1f} min")
    for f in results.figures:
        mark = "" if not f.target else ("  met" if f.met else "  NOT MET" if f.met is False
                                        else "  not known" if f.value is not None else "  not measured")
        log(f"  {f.section}. {f.name}: {f.shown()}{mark}")
    return 0


def notes(results: Results) -> list[str]:
    """The caveats every reader of results.md needs."""
    out = [
        "Timings are wall-clock on a shared 2-core virtual machine; expect a few percent of noise between "
        "runs of `make bench`. Medians, not means.",
        "Prometheus 2.42 forgets its Alertmanagers for about 5 s after every reload (tests/stack.py), so the "
        "fire drills start only after that gap has passed and Prometheus lists its Alertmanager again.",
        "Figures 4-6 run first, figures 1-3 and 7 after them with no server left: the local stack of figures 5-6 "
        "stays up (idle, 1 s evaluation) during figure 4 so that its 5-minute period groups get evaluated "
        "once without a separate wait.",
        "Writes in figure 4 are counted at the servers: every Grafana request other than GET/HEAD at the "
        "double, and a Prometheus or Alertmanager reload when its "
        "`*_config_last_reload_success_timestamp_seconds` changed during the run (a reload is counted once "
        "even if repeated).",
    ]
    imports = results.profile.get("imports") if results.profile else None
    if imports:
        top = ", ".join(f"`{name}` {secs * 1000:.0f} ms" for name, secs in imports["outermost"][:4])
        out.append(f"`obsgen check` imports for {imports['total_s']:.3f} s in all (largest outermost imports: "
                   f"{top}).")
    return out


def _phases(results: Results, key: str, count: int = 3) -> str:
    """The `count` costliest phases of a profile as text: 'compile: rule tests 75%, ...; YAML dumping 56%'."""
    prof = results.profile.get(key) if results.profile else None
    if not prof or not prof.get("total"):
        return ""
    total = prof["total"]
    main = sorted(((label.strip(), cum) for label, _, cum in prof["phases"] if not label.startswith(("(", " "))),
                  key=lambda r: -r[1])
    across = [(label.strip("()").split(":")[0], cum) for label, _, cum in prof["phases"] if label.startswith("(")]
    return (", ".join(f"{label} {cum / total:.0%}" for label, cum in main[:count])
            + (" of the time under cProfile" if main else "")
            + ("; across targets, " + ", ".join(f"{label} {cum / total:.0%}" for label, cum in across)
               if across else ""))


def explain(results: Results) -> None:
    """Fill `why` of every missed target from the profiles and the other figures of the same run."""
    by = {f.key: f for f in results.figures}
    scaling_told = False
    for f in results.figures:
        if not f.target or f.met is not False:
            continue
        if f.key in ("check", "check-ratio"):
            f.why = _phases(results, "profile-check") + "."
        elif f.key == "check-cold":
            f.why = ("with no stamp to trust, check compiles every target and compares: "
                     + _phases(results, "profile-check-cold") + ".")
        elif f.key == "build":
            f.why = _phases(results, "profile-build") + "."
        elif f.key.startswith(("scale-", "growth-")):
            case = next((k for k in results.profile if k.startswith("profile-build-")), "")
            if scaling_told or not case:
                f.why = "as for the first scaling row above." if scaling_told else ""
                continue
            scaling_told = True
            steps, slos = case.removeprefix("profile-build-").split("x")
            f.why = (f"the build of {steps} steps × {slos} SLOs, profiled: {_phases(results, case)}. The output "
                     f"column of the scaling table shows what grows faster than the input.")
        elif f.key in ("apply-first", "apply-noop"):
            f.why = _apply_why(f, by)
        elif f.key.startswith("verify-") and f.floor:
            f.why = (f"promtool alone on the same rule test files takes {f.floor:.1f} s (the floor): "
                     + ("most of the time is promtool evaluating the generated tests; the tests, not obsgen, "
                        "must shrink." if f.value and f.floor > 0.7 * f.value else
                        "the rest is obsgen's start, the routing tests (amtool) and the inhibition cases."))


def _apply_why(f: Figure, by: dict[str, Figure]) -> str:
    """Where a missed apply target's time goes: the requests' floor, reading (or compiling) dev, the rest."""
    read = by["apply-read"].value if "apply-read" in by else None
    start = by["apply-start"].value if "apply-start" in by else None
    requests, latency = f.extra.get("grafana_requests"), f.extra.get("latency")
    if not f.value or not requests or not latency:
        return ""
    rounds = -(-int(requests) // 16)
    parts = [f"{requests:g} Grafana requests at {latency * 1000:.0f} ms need at least {rounds * latency:.2f} s at 16 "
             f"in flight"]
    if start is not None:
        parts.append(f"the interpreter start with obsgen's CLI imported takes {start:.2f} s")
    if read is not None:
        parts.append(f"loading the spec and reading generated/dev takes {read:.2f} s (in-process)")
    else:
        parts.append("generated/dev was not read (the apply compiled: see 'apply-read')")
    known = rounds * latency + (start or 0) + (read or 0)
    rest = ("writing the rule files, the two reloads and planning" if f.key == "apply-first"
            else "planning and waiting on requests beyond the round trips")
    par = by["apply-noop-parallel"].value if "apply-noop-parallel" in by else None
    return ("; ".join(parts) + f"; the other {max(f.value - known, 0):.2f} s are imports of the apply itself, "
            f"{rest}." + (" The in-process parallel run is hardly faster: there obsgen's HTTP client shares the "
                          "interpreter lock with the Grafana double."
                          if f.key == "apply-noop" and par and par > 0.9 * f.value else ""))

if __name__ == "__main__":
    sys.exit(main())
