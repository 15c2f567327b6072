"""Figures 7 (`obsgen verify`) and 8 (the test suite's wall time, as the suite itself recorded it).

7: `obsgen verify --env dev` of the reference spec, and `obsgen verify` of the 1,000-step scaling spec (every
environment), each against its own fresh `obsgen build` (made outside the timing), beside promtool alone on
the same rule test files (the floor). The large one runs once, killed after `timeout` seconds and then shown
as a lower bound.
8: `make test` writes nothing the benchmark could time without running the whole suite again, so the suite
records its own wall time in bench/suite-time.json (a `pytest_sessionfinish` hook in tests/conftest.py, see
bench/README.md) and this reads it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import floors
import specgen
from measure import OBSGEN, ROOT, median, run_child
from writer import Figure

REFERENCE = "specs/selftest.yaml"
VERIFY_DEV_TARGET, VERIFY_LARGE_TARGET, SUITE_TARGET = 20.0, 180.0, 300.0
SUITE_TIME = ROOT / "bench" / "suite-time.json"
Log = Callable[[str], None]
PROMTOOL_FLOOR = ("promtool alone on the same rule test files, one `promtool test rules FILE` per file from its "
                  "directory, one per CPU at a time, as `obsgen verify` runs them (no obsgen start, no routing or "
                  "inhibition tests)")


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "OBSGEN_STATE_DIR": str(tmp / "state")}


def _build(spec: Path | str, out: Path, env: dict[str, str], timeout: float) -> str:
    """`obsgen build` into `out` (not timed); '' or how it failed."""
    child = run_child([OBSGEN, "build", "--spec", spec, "--out", out, "-q"], env=env, timeout=timeout)
    return "" if child.ok else f"obsgen build: {child.describe_failure()}"


def verify_figures(runs: int, timeout: float, case: tuple[int, int], log: Log) -> list[Figure]:
    """`obsgen verify --env dev` of the reference spec `runs` times (interleaved with its floor), then
    `obsgen verify` of the scaling spec of `case` (steps, SLOs) once within `timeout` s."""
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-verify-") as name:
        tmp = Path(name)
        env = _env(tmp)
        return [_verify_dev(tmp, env, runs, log), _verify_large(tmp, env, case, timeout, log)]


def _verify_dev(tmp: Path, env: dict[str, str], runs: int, log: Log) -> Figure:
    out = tmp / "reference"
    key, name = "verify-dev", "`obsgen verify --env dev` (reference spec)"
    target = f"≤ {VERIFY_DEV_TARGET:g} s"
    failure = _build(REFERENCE, out, env, 120)
    walls: list[float] = []
    floor_walls: list[float] = []
    for i in range(runs if not failure else 0):
        child = run_child([OBSGEN, "verify", "--spec", REFERENCE, "--out", out, "--env", "dev"], env=env,
                          timeout=300)
        if not child.ok:
            failure = f"obsgen verify: {child.describe_failure()}"
            break
        walls.append(child.wall)
        floor, why = floors.promtool_time(floors.rule_test_files(out, ["dev"]), 300)
        if floor is not None:
            floor_walls.append(floor)
        log(f"  verify --env dev {i + 1}/{runs}: {child.wall:.2f} s, promtool alone "
            + (f"{floor:.2f} s" if floor is not None else why))
    if failure:
        return Figure(key, 7, name, None, "s", [], target, None, failure)
    value = median(walls)
    return Figure(key, 7, name, value, "s", walls, target, value <= VERIFY_DEV_TARGET,  # type: ignore[operator]
                  "against a fresh `obsgen build` of the spec; rule, routing and inhibition tests",
                  floor=median(floor_walls), floor_how=PROMTOOL_FLOOR + f", median of {len(floor_walls)}")


def _verify_large(tmp: Path, env: dict[str, str], case: tuple[int, int], timeout: float, log: Log) -> Figure:
    steps, slos = case
    key, name = "verify-large", f"`obsgen verify` of the {steps:,}-step spec ({slos} SLOs, 3 environments)"
    target = f"≤ {VERIFY_LARGE_TARGET / 60:g} min"
    spec = specgen.write_spec(specgen.scaling_spec(steps, slos), tmp / "large.yaml", f"{steps} steps, {slos} SLOs")
    out = tmp / "large"
    failure = _build(spec, out, env, 300)
    if failure:
        return Figure(key, 7, name, None, "s", [], target, None, failure)
    files = floors.rule_test_files(out, ["dev", "staging", "prod"])
    size = sum(f.stat().st_size for f in files) / 2**20
    child = run_child([OBSGEN, "verify", "--spec", spec, "--out", out], env=env, timeout=timeout)
    log(f"  verify of {steps} x {slos}: {child.wall:.1f} s{' (killed)' if child.timed_out else ''}")
    if child.timed_out:
        return Figure(key, 7, name, child.wall, "s", [child.wall], target, False if child.wall > VERIFY_LARGE_TARGET else None,
                      f"killed after {timeout:g} s: a lower bound; {len(files)} rule test files, {size:.1f} MiB",
                      lower_bound=True, floor_how="not measured: verify did not finish")
    if not child.ok:
        return Figure(key, 7, name, None, "s", [], target, None, f"obsgen verify: {child.describe_failure()}")
    floor, why = floors.promtool_time(files, max(timeout, child.wall * 2))
    log(f"  promtool alone on its {len(files)} rule test files: " + (f"{floor:.1f} s" if floor is not None else why))
    return Figure(key, 7, name, child.wall, "s", [child.wall], target, child.wall <= VERIFY_LARGE_TARGET,
                  f"one run, against a fresh `obsgen build`; {len(files)} rule test files, {size:.1f} MiB",
                  floor=floor, floor_how=PROMTOOL_FLOOR + ("" if floor is not None else f"; not measured: {why}"))


def read_suite_time(path: Path = SUITE_TIME) -> dict[str, Any] | None:
    """{"seconds": float, "tests": int, "measured": ISO date} as the suite wrote it; None when the file is
    missing or not that shape."""
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) and isinstance(data.get("seconds"), (int, float)) else None
    except (OSError, ValueError):
        return None


def suite_figures(path: Path = SUITE_TIME) -> list[Figure]:
    """Figure 8: the last `make test` wall time, read from `path`."""
    name, target = "`make test`: wall time of the whole suite (as the suite recorded it)", f"< {SUITE_TARGET:g} s"
    data = read_suite_time(path)
    if data is None:
        return [Figure("suite", 8, name, None, "s", [], target, None,
                       f"no bench/{path.name}: the suite writes it at the end of a run (see bench/README.md)")]
    seconds = float(data["seconds"])
    return [Figure("suite", 8, name, seconds, "s", [], target, seconds < SUITE_TARGET,
                   f"{data.get('tests', '?')} tests, measured {data.get('measured', '?')}, read from "
                   f"bench/{path.name}: not measured by this run")]
