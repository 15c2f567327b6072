"""obsgen benchmarks: `make bench` (or `.venv/bin/python bench/run.py`) writes bench/results.md and .json.

Order: the live stacks first (time to alert, apply, then rule cost, whose 5-minute groups need time to be
evaluated once), then, with no server running, check, build and scaling, and the profiles of check and
build. A figure that cannot be measured is reported as such; the others still are. See bench/README.md.
"""
from __future__ import annotations

import argparse
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
from writer import Figure, Results, Table, write  # noqa: E402


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
                   help="runs of each apply figure, the sequential baseline included (default 3)")
    p.add_argument("--alert-runs", type=int, default=5, help="fire drills for the time to alert (default 5)")
    p.add_argument("--skip-live", action="store_true", help="only figures 1-3 (no Prometheus/Alertmanager)")
    p.add_argument("--out", type=Path, default=BENCH, help="directory for results.md and results.json")
    return p.parse_args(argv)


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
    import live

    try:
        with live.local_stack(tmp, log) as (local, loaded):
            _guard(6, "time to alert", results, lambda: _one(live.time_to_alert(local, args.alert_runs, log)))
            _guard(4, "apply", results, lambda: _one(live.apply_figures(tmp, args.apply_runs, log)))
            _guard(5, "rule cost", results, lambda: _one(live.rule_cost(local, loaded, 5, log)))
    except Exception as exc:  # noqa: BLE001 - the local stack itself did not come up
        traceback.print_exc()
        for section, what in ((4, "apply"), (5, "rule cost"), (6, "time to alert")):
            if not any(f.section == section for f in results.figures):
                results.figures.append(Figure(f"failed-{section}", section, what, None, "", [], "", None,
                                              f"could not be measured: {type(exc).__name__}: {str(exc)[:300]}"))


def _one(pair: tuple[list[Figure], Table]) -> tuple[list[Figure], list[Table]]:
    return pair[0], [pair[1]]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.monotonic()
    results = Results(machine.describe(), {
        "check and import yaml": args.runs * 2, "build": args.runs,
        "scaling": args.scaling_runs, "apply (each kind)": args.apply_runs, "fire drills": args.alert_runs,
        "rule evaluation samples": 5})
    log(f"machine: {results.machine}")
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-") as tmp:
        if not args.skip_live:
            _live(args, results, Path(tmp))
    _guard(1, "check", results, lambda: (offline.check_figures(args.runs * 2, log), []))
    _guard(2, "build", results, lambda: (offline.build_figures(args.runs, log), []))
    _guard(3, "scaling", results, lambda: _one(offline.scaling_figures(args.scaling_runs, args.slow,
                                                                       args.build_timeout, log)))
    log("[profile] where the time goes")
    try:
        tables, results.profile = offline.where_time_goes(log)
        results.tables[0] = tables
    except Exception:  # noqa: BLE001 - the figures stand without the profile
        traceback.print_exc()
    results.figures.sort(key=lambda f: f.section)
    results.notes = notes(results)
    results.duration_s = time.monotonic() - started
    md, js = write(results, args.out)
    log(f"wrote {md} and {js} in {results.duration_s / 60:.1f} min")
    for f in results.figures:
        mark = "" if not f.target else ("  met" if f.met else "  NOT MET" if f.met is False else "  not measured")
        log(f"  {f.section}. {f.name}: {f.shown()}{mark}")
    return 0


def notes(results: Results) -> list[str]:
    """The caveats every reader of results.md needs, plus what the profile says about the misses."""
    out = [
        "Timings are wall-clock on a shared 2-core virtual machine; expect a few percent of noise between "
        "runs of `make bench`. Medians, not means.",
        "Prometheus 2.42 forgets its Alertmanagers for about 5 s after every reload (tests/stack.py), so the "
        "fire drills start only after that gap has passed and Prometheus lists its Alertmanager again.",
        "Figures 4-6 run first, while figures 1-3 run with no server left: the local stack of figures 5-6 "
        "stays up (idle, 1 s evaluation) during figure 4 so that its 5-minute period groups get evaluated "
        "once without a separate wait.",
        "Writes in figure 4 are counted at the servers: every Grafana request other than GET/HEAD at the "
        "double, and a Prometheus or Alertmanager reload when its "
        "`*_config_last_reload_success_timestamp_seconds` changed during the run (a reload is counted once "
        "even if repeated).",
    ]
    imports = results.profile.get("imports") if results.profile else None
    if imports:
        top = ", ".join(f"{name} {secs * 1000:.0f} ms" for name, secs in imports["outermost"][:4])
        out.append(f"`obsgen check` spends {imports['total_s']:.2f} s importing (largest: {top}); the rest of "
                   f"its time is the full compile of every target for every environment (see the phase tables).")
    return out


if __name__ == "__main__":
    sys.exit(main())
