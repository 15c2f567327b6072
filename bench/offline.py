"""Figures 1-3 (check, build, scaling) and the profiles of check and build: obsgen as a child process.

Every timing is one `obsgen` (or `python`) child process, started fresh, measured alone by
`measure.run_child`: what a user or CI pays, interpreter start and imports included.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import specgen
from measure import OBSGEN, PYTHON, ROOT, Child, median, ratio, run_child
from writer import Figure, Table

REFERENCE = "specs/selftest.yaml"
GENERATED = "generated"
CHECK_TARGET, CHECK_RATIO_TARGET, BUILD_TARGET = 0.15, 3.0, 0.6
SCALE_TARGET, GROWTH_TARGET = 5.0, 12.0
PIVOT_STEPS, PIVOT_SLOS = 100, 10  # the axes of the scaling grid cross here
STEP_AXIS, SLO_AXIS = (10, 100, 1000), (1, 10, 100)
Log = Callable[[str], None]


def _written(child: Child) -> int | None:
    match = re.search(r"(\d+) written", child.stdout)
    return int(match.group(1)) if match else None


# --- 1. check beside `import yaml` ------------------------------------------------------------------

def check_figures(runs: int, log: Log) -> list[Figure]:
    """`obsgen check` of the reference spec and `python -c "import yaml"`, interleaved, one warm-up each."""
    check = [str(OBSGEN), "check", "--spec", REFERENCE, "--out", GENERATED]
    yaml_import = [str(PYTHON), "-c", "import yaml"]
    run_child(check), run_child(yaml_import)  # warm the page cache and .pyc files
    checks: list[Child] = []
    imports: list[Child] = []
    for i in range(runs):
        checks.append(run_child(check))
        imports.append(run_child(yaml_import))
        log(f"  check run {i + 1}/{runs}: {checks[-1].wall:.3f} s, import yaml {imports[-1].wall:.3f} s")
    codes = sorted({c.returncode for c in checks})
    note = "" if codes == [0] else (
        f"check exited {codes}: generated/ does not match the spec here, so the time includes the diff; "
        + checks[-1].describe_failure())
    t_check = median([c.wall for c in checks])
    t_yaml = median([c.wall for c in imports])
    r = ratio(t_check, t_yaml)
    return [
        Figure("check", 1, "`obsgen check` (reference spec, 3 environments, committed generated/)", t_check, "s",
               [c.wall for c in checks], f"≤ {CHECK_TARGET} s", _le(t_check, CHECK_TARGET),
               note or f"peak RSS {max(c.max_rss_kib for c in checks) / 1024:.0f} MiB"),
        Figure("import-yaml", 1, "`python -c \"import yaml\"` (the venv's python), same run", t_yaml, "s",
               [c.wall for c in imports], "", None, "the floor: interpreter start plus one import"),
        Figure("check-ratio", 1, "check ÷ import yaml", r, "×", [], f"≤ {CHECK_RATIO_TARGET:g}×",
               _le(r, CHECK_RATIO_TARGET), "ratio of the two medians"),
    ]


# --- 2. full build ----------------------------------------------------------------------------------

def build_figures(runs: int, log: Log) -> list[Figure]:
    """`obsgen build` of the reference spec into a fresh, empty directory each run (every file written)."""
    walls, written, rss = [], set(), []
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-build-") as tmp:
        run_child([OBSGEN, "build", "--spec", REFERENCE, "--out", Path(tmp, "warm-up")])
        for i in range(runs):
            child = run_child([OBSGEN, "build", "--spec", REFERENCE, "--out", Path(tmp, f"out-{i}")])
            if not child.ok:
                return [Figure("build", 2, "`obsgen build` (reference spec, full regeneration)", None, "s", [],
                               f"≤ {BUILD_TARGET} s", False, child.describe_failure())]
            walls.append(child.wall)
            written.add(_written(child))
            rss.append(child.max_rss_kib)
            log(f"  build run {i + 1}/{runs}: {child.wall:.3f} s")
    t = median(walls)
    files = ", ".join(str(w) for w in sorted(written, key=str))
    return [Figure("build", 2, "`obsgen build` (reference spec, full regeneration into an empty directory)", t,
                   "s", walls, f"≤ {BUILD_TARGET} s", _le(t, BUILD_TARGET),
                   f"{files} files written per run; peak RSS {max(rss) / 1024:.0f} MiB")]


# --- 3. scaling -------------------------------------------------------------------------------------

@dataclass
class Case:
    steps: int
    slos: int
    valid: str = ""  # "" = `obsgen validate` passed, else its complaint
    walls: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    files: int | None = None
    failure: str = ""

    @property
    def time(self) -> float | None:
        return median(self.walls)

    @property
    def rss_mib(self) -> float | None:
        return max(self.rss_kib) / 1024 if self.rss_kib else None


def scaling_cases() -> list[tuple[int, int]]:
    """Steps 10/100/1000 at PIVOT_SLOS, SLOs 1/10/100 at PIVOT_STEPS, and both 1000-step x 100-SLO corners
    that the growth ratios need (100 x 100 and 1000 x 100)."""
    cases = [(n, PIVOT_SLOS) for n in STEP_AXIS] + [(PIVOT_STEPS, m) for m in SLO_AXIS]
    cases += [(STEP_AXIS[-1], SLO_AXIS[-1])]
    return sorted(set(cases))


def scaling_figures(runs: int, slow: float, timeout: float, log: Log) -> tuple[list[Figure], Table]:
    """Build each generated spec `runs` times (once when its first build takes more than `slow` s)."""
    cases = []
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-scale-") as tmp:
        for steps, slos in scaling_cases():
            case = Case(steps, slos)
            cases.append(case)
            spec = specgen.write_spec(specgen.scaling_spec(steps, slos), Path(tmp, f"spec-{steps}x{slos}.yaml"),
                                      f"{steps} steps, {slos} SLOs")
            check = run_child([OBSGEN, "validate", "--spec", spec], timeout=timeout)
            if not check.ok:
                case.valid = case.failure = f"obsgen validate: {check.describe_failure()}"
                log(f"  {steps} steps x {slos} SLOs: INVALID ({case.valid})")
                continue
            for i in range(runs):
                out = Path(tmp, f"out-{steps}x{slos}-{i}")
                child = run_child([OBSGEN, "build", "--spec", spec, "--out", out], timeout=timeout)
                shutil.rmtree(out, ignore_errors=True)
                if not child.ok:
                    case.failure = child.describe_failure()
                    if child.timed_out:
                        case.walls.append(child.wall)  # a lower bound, shown as "> N s"
                    break
                case.walls.append(child.wall)
                case.rss_kib.append(child.max_rss_kib)
                case.files = _written(child)
                log(f"  {steps} steps x {slos} SLOs run {i + 1}: {child.wall:.2f} s, "
                    f"{child.max_rss_kib / 1024:.0f} MiB")
                if child.wall > slow:
                    break
    by = {(c.steps, c.slos): c for c in cases}
    big = by.get((STEP_AXIS[-1], SLO_AXIS[-1]))
    figures = [Figure("scale-1000x100", 3, f"`obsgen build`, {big.steps:,} steps × {big.slos} SLOs, 3 environments",
                      big.time, "s", big.walls, f"≤ {SCALE_TARGET:g} s",
                      _le(big.time, SCALE_TARGET) if not big.failure else False,
                      _case_note(big))]
    for (a, b), what in ((((100, 10), (1000, 10)), "steps 100 → 1,000 at 10 SLOs"),
                         (((100, 100), (1000, 100)), "steps 100 → 1,000 at 100 SLOs"),
                         (((100, 10), (100, 100)), "SLOs 10 → 100 at 100 steps"),
                         (((1000, 10), (1000, 100)), "SLOs 10 → 100 at 1,000 steps")):
        small, large = by.get(a), by.get(b)
        if small is None or large is None:
            continue
        r = ratio(large.time, small.time)
        bad = large.failure or small.failure
        figures.append(Figure(f"growth-{a[0]}x{a[1]}-{b[0]}x{b[1]}", 3, f"growth, {what} (10× the input)", r, "×",
                              [], f"≤ {GROWTH_TARGET:g}×", False if bad else _le(r, GROWTH_TARGET),
                              (f"lower bound: {bad}" if bad else
                               f"{small.time:.2f} s → {large.time:.2f} s; peak RSS {small.rss_mib:.0f} → "
                               f"{large.rss_mib:.0f} MiB")))
    rows = [[f"{c.steps:,}", str(c.slos), "" if c.files is None else str(c.files),
             _seconds(c), str(len(c.walls)), "" if c.rss_mib is None else f"{c.rss_mib:.0f}",
             "" if not c.time else f"{c.time / c.steps * 1000:.1f}",
             c.failure or ("valid" if not c.valid else c.valid)] for c in cases]
    table = Table("scaling", "3. Scaling: `obsgen build` of generated specs (3 environments each)",
                  ["steps", "SLOs", "files written", "build time (median)", "runs", "peak RSS (MiB)",
                   "ms per step", "notes"], rows,
                  f"Each spec is the reference spec with that many steps (tiers in the reference's proportions) and "
                  f"SLOs (alternating pass_rate / latency), checked with `obsgen validate` first. Each build is a "
                  f"fresh child process writing into an empty directory; peak RSS is that child's own "
                  f"(`wait4`). A case whose first build took more than {slow:g} s was run once; a build still "
                  f"running after {timeout:g} s is killed and shown as a lower bound.")
    return figures, table


def _seconds(case: Case) -> str:
    if case.time is None:
        return "–"
    prefix = "> " if "timeout" in case.failure else ""
    return f"{prefix}{case.time:.2f} s"


def _case_note(case: Case) -> str:
    if case.failure:
        return case.failure
    return f"peak RSS {case.rss_mib:.0f} MiB; {case.files} files written"


def _le(value: float | None, target: float) -> bool | None:
    return None if value is None else value <= target


# --- where the time goes ----------------------------------------------------------------------------

# (label, file suffix, function): the phases of check and build, as cProfile names them
PHASES = [
    ("imports (all, nested ones once)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("load and validate the spec", "obsgen/spec/__init__.py", "load_spec"),
    ("  JSON Schema validation", "obsgen/spec/schema.py", "validate"),
    ("compile: Grafana dashboards", "obsgen/compile/grafana.py", "compile_grafana"),
    ("compile: OpenSLO", "obsgen/compile/openslo.py", "compile_openslo"),
    ("compile: Prometheus rules", "obsgen/compile/prometheus.py", "compile_prometheus"),
    ("compile: Alertmanager", "obsgen/compile/alertmanager.py", "compile_alertmanager"),
    ("compile: alert docs", "obsgen/compile/docs.py", "compile_docs"),
    ("compile: routing tests", "obsgen/compile/routing_tests.py", "compile_routing_tests"),
    ("compile: rule tests", "obsgen/compile/rule_tests.py", "compile_rule_tests"),
    ("compile: manifest", "obsgen/compile/manifest.py", "compile_manifest"),
    ("compare with the output directory", "obsgen/output/tree.py", "compare"),
    ("write the output directory", "obsgen/output/tree.py", "write"),
    ("(all YAML dumping: render.to_yaml)", "obsgen/render.py", "to_yaml"),
    ("(all YAML parsing: yaml.load / safe_load)", "yaml/__init__.py", "load"),
]

_PROFILE = """
import cProfile, contextlib, io, sys
from obsgen.cli import main
profile = cProfile.Profile()
with contextlib.redirect_stdout(io.StringIO()):
    profile.runcall(main, sys.argv[2:])
profile.dump_stats(sys.argv[1])
"""


def import_times(argv: list[str], top: int) -> tuple[float, list[tuple[str, float]]]:
    """Total import time of `argv` (an obsgen command) and its `top` costliest outermost imports."""
    child = run_child([PYTHON, "-X", "importtime", OBSGEN, *argv])
    total, rows = 0.0, []
    for line in child.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if not match:
            continue
        total += int(match.group(1)) / 1e6
        if not match.group(3):  # outermost: imported by the command itself, not by another import
            rows.append((match.group(4), int(match.group(2)) / 1e6))
    return total, sorted(rows, key=lambda r: -r[1])[:top]


def profile(argv: list[str], top: int) -> dict[str, object]:
    """cProfile of one obsgen command in a fresh child: its phases and its costliest functions (self time)."""
    import pstats

    with tempfile.TemporaryDirectory(prefix="obsgen-bench-prof-") as tmp:
        stats_file = Path(tmp, "stats")
        run_child([PYTHON, "-c", _PROFILE, stats_file, *argv])
        stats = pstats.Stats(str(stats_file))
    entries = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    phases = []
    for label, suffix, name in PHASES:
        for (file, _, func), (_, calls, _, cum, _) in entries.items():
            if func == name and file.replace("\\", "/").endswith(suffix):
                phases.append((label, calls, cum))
                break
    costly = sorted(((f"{Path(file).parent.name}/{Path(file).name}:{line} {func}" if file != "~" else func,
                      tt, calls) for (file, line, func), (_, calls, tt, _, _) in entries.items()),
                    key=lambda r: -r[1])[:top]
    return {"total": total, "phases": phases, "self": costly}


def where_time_goes(log: Log) -> tuple[list[Table], dict[str, object]]:
    """Import times of `obsgen check`, and cProfile phases and hot functions of check and build."""
    tables, data = [], {}
    total, imports = import_times(["check", "--spec", REFERENCE, "--out", GENERATED], 12)
    log(f"  imports of obsgen check: {total:.3f} s")
    data["imports"] = {"total_s": total, "outermost": imports}
    tables.append(Table("imports", f"`obsgen check`: imports ({total:.3f} s of self time in all, from "
                                   f"`python -X importtime`)", ["outermost import", "cumulative (ms)"],
                        [[f"`{name}`", f"{secs * 1000:.1f}"] for name, secs in imports],
                        "Outermost imports: the ones obsgen's code triggers itself (module level or lazily "
                        "inside a function); each line includes everything it imports in turn."))
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-prof-out-") as tmp:
        for name, argv in (("check", ["check", "--spec", REFERENCE, "--out", GENERATED]),
                           ("build", ["build", "--spec", REFERENCE, "--out", str(Path(tmp, "out"))])):
            result = profile(argv, 12)
            data[f"profile_{name}"] = result
            total_p = float(result["total"])  # type: ignore[arg-type]
            log(f"  profiled obsgen {name}: {total_p:.2f} s under cProfile")
            rows = [[label, str(calls), f"{cum:.3f}", f"{cum / total_p:.0%}"]
                    for label, calls, cum in result["phases"]]  # type: ignore[union-attr]
            tables.append(Table(f"phases-{name}", f"`obsgen {name}` of the reference spec under cProfile: phases "
                                                  f"({total_p:.2f} s in all, imports included)",
                                ["phase", "calls", "cumulative (s)", "share"], rows,
                                "cProfile slows Python code down about twice; read the shares, not the seconds. "
                                "Phases overlap where one calls another (rule tests compile the Prometheus rules "
                                "again; the YAML rows cut across every target)."))
            tables.append(Table(f"self-{name}", f"`obsgen {name}`: functions with the most self time",
                                ["function", "self (s)", "calls"],
                                [[f"`{f}`", f"{tt:.3f}", str(calls)]
                                 for f, tt, calls in result["self"]],  # type: ignore[union-attr]
                                ""))
    return tables, json.loads(json.dumps(data))
