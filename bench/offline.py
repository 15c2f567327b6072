"""Figures 1-3 (check, build, scaling) and the profiles of check and build: obsgen as a child process.

Every timing is one `obsgen` (or `python`) child process, started fresh, measured alone by
`measure.run_child`: what a user or CI pays, interpreter start and imports included. Every child gets its
own OBSGEN_STATE_DIR in a temp dir, so the check stamps obsgen keeps there (its fast path) are the
benchmark's own: never read from, nor written to, the project's `.obsgen/`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import floors
import specgen
from measure import OBSGEN, PYTHON, Child, median, ratio, run_child
from writer import Figure, Table

REFERENCE = "specs/selftest.yaml"
GENERATED = "generated"
CHECK_TARGET, CHECK_RATIO_TARGET, BUILD_TARGET = 0.15, 3.0, 0.6
CHECK_COLD_TARGET = 0.3  # issue 19: a CI check on a fresh clone
SCALE_TARGET, SCALE_BYTES_TARGET, GROWTH_TARGET = 5.0, 40.0, 12.0  # s, MiB, ×
PIVOT_STEPS, PIVOT_SLOS = 100, 10  # the axes of the scaling grid cross here
STEP_AXIS, SLO_AXIS = (10, 100, 1000), (1, 10, 100)
Log = Callable[[str], None]


def state(directory: Path) -> dict[str, str]:
    """The environment of a child whose obsgen state (check stamps, ledger) lives in `directory`."""
    return {**os.environ, "OBSGEN_STATE_DIR": str(directory)}


def _written(child: Child) -> int | None:
    match = re.search(r"(\d+) written", child.stdout)
    return int(match.group(1)) if match else None


# --- 1. check beside `import yaml` ------------------------------------------------------------------

def check_figures(runs: int, log: Log) -> list[Figure]:
    """`obsgen check` of the reference spec with its stamp (after one full check, as on a developer's machine)
    and without (a fresh state directory every run, as in CI on a fresh clone), and `python -c "import yaml"`,
    all interleaved."""
    check = [str(OBSGEN), "check", "--spec", REFERENCE, "--out", GENERATED]
    yaml_import = [str(PYTHON), "-c", "import yaml"]
    warm: list[Child] = []
    cold: list[Child] = []
    imports: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-check-") as tmp:
        stamped = state(Path(tmp, "stamped"))
        run_child(check, env=stamped), run_child(yaml_import)  # the stamp; warm page cache and .pyc files
        for i in range(runs):
            warm.append(run_child(check, env=stamped))
            cold.append(run_child(check, env=state(Path(tmp, f"fresh-{i}"))))
            imports.append(run_child(yaml_import))
            log(f"  check run {i + 1}/{runs}: {warm[-1].wall:.3f} s, without a stamp {cold[-1].wall:.3f} s, "
                f"import yaml {imports[-1].wall:.3f} s")
    t_warm, t_cold = median([c.wall for c in warm]), median([c.wall for c in cold])
    t_yaml = median([c.wall for c in imports])
    r = ratio(t_warm, t_yaml)
    serialise, documents, artifacts = floors.serialisation_time(REFERENCE, runs)
    log(f"  serialising the documents of one compile (in-process): {serialise:.3f} s")
    cold_floor = t_yaml + serialise if t_yaml is not None and serialise is not None else None
    return [
        Figure("check", 1, "`obsgen check` (reference spec, 3 environments, committed generated/), after one "
                           "full check", t_warm, "s", [c.wall for c in warm], f"≤ {CHECK_TARGET} s",
               _le(t_warm, CHECK_TARGET), _check_note(warm), floor=t_yaml,
               floor_how="`python -c \"import yaml\"`, interleaved with the checks: with the stamp, check "
                         "need only start, read the stamp and hash the files"),
        Figure("import-yaml", 1, "`python -c \"import yaml\"` (the venv's python), same run", t_yaml, "s",
               [c.wall for c in imports], "", None, "the floor: interpreter start plus one import"),
        Figure("check-ratio", 1, "check ÷ import yaml", r, "×", [], f"≤ {CHECK_RATIO_TARGET:g}×",
               _le(r, CHECK_RATIO_TARGET), "ratio of the two medians"),
        Figure("check-cold", 1, "`obsgen check` without a stamp (empty state directory: a fresh clone, CI)", t_cold,
               "s", [c.wall for c in cold], f"≤ {CHECK_COLD_TARGET} s", _le(t_cold, CHECK_COLD_TARGET),
               _check_note(cold) + f"; {ratio(t_cold, t_yaml) or 0:.1f}× import yaml", floor=cold_floor,
               floor_how=f"`python -c \"import yaml\"` ({t_yaml or 0:.3f} s) plus serialising the documents of "
                         f"one compile of the reference spec ({serialise or 0:.3f} s: `render.to_yaml`/`to_json` "
                         f"of the {documents} of {artifacts} artifacts they write, replayed in-process, median of "
                         f"{runs}); the spec loading and the compile logic a check must do are left out"),
    ]


def _check_note(children: list[Child]) -> str:
    codes = sorted({c.returncode for c in children})
    if codes != [0]:
        return (f"check exited {codes}: generated/ does not match the spec here, so the time includes the diff; "
                + children[-1].describe_failure())
    return f"peak RSS {max(c.max_rss_kib for c in children) / 1024:.0f} MiB"


# --- 2. full build ----------------------------------------------------------------------------------

def build_figures(runs: int, log: Log) -> list[Figure]:
    """`obsgen build` of the reference spec into a fresh, empty directory each run (every file written)."""
    walls, written, rss = [], set(), []
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-build-") as tmp:
        env = state(Path(tmp, "state"))
        run_child([OBSGEN, "build", "--spec", REFERENCE, "--out", Path(tmp, "warm-up")], env=env)
        for i in range(runs):
            child = run_child([OBSGEN, "build", "--spec", REFERENCE, "--out", Path(tmp, f"out-{i}")], env=env)
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
    output_bytes: int | None = None
    failure: str = ""
    needed_bytes: int | None = None  # output outside tests/ (floors.needed_bytes)
    write_floor: float | None = None  # seconds to write the same output (floors.write_time)

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
        env = state(Path(tmp, "state"))
        for steps, slos in scaling_cases():
            case = Case(steps, slos)
            cases.append(case)
            spec = specgen.write_spec(specgen.scaling_spec(steps, slos), Path(tmp, f"spec-{steps}x{slos}.yaml"),
                                      f"{steps} steps, {slos} SLOs")
            check = run_child([OBSGEN, "validate", "--spec", spec], env=env, timeout=timeout)
            if not check.ok:
                case.valid = case.failure = f"obsgen validate: {check.describe_failure()}"
                log(f"  {steps} steps x {slos} SLOs: INVALID ({case.valid})")
                continue
            for i in range(runs):
                out = Path(tmp, f"out-{steps}x{slos}-{i}")
                child = run_child([OBSGEN, "build", "--spec", spec, "--out", out], env=env, timeout=timeout)
                if child.ok:
                    case.output_bytes = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
                if child.ok and (steps, slos) == (STEP_AXIS[-1], SLO_AXIS[-1]) and case.write_floor is None:
                    files = floors.read_tree(out)
                    case.needed_bytes = floors.needed_bytes(files)
                    case.write_floor = floors.write_time(files, 3)
                    log(f"  writing the same {len(files)} files again: {case.write_floor:.2f} s")
                    del files
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
    timed_out = big.failure.startswith("killed")
    figures = [Figure("scale-1000x100", 3, f"`obsgen build`, {big.steps:,} steps × {big.slos} SLOs, 3 environments",
                      big.time, "s", big.walls, f"≤ {SCALE_TARGET:g} s",
                      False if big.failure and not (timed_out and (big.time or 0) <= SCALE_TARGET)
                      else _le(big.time, SCALE_TARGET), _case_note(big), lower_bound=timed_out,
                      floor=big.write_floor,
                      floor_how="writing the same files (the build's own output, read back into memory) into a "
                                "fresh directory, in-process, median of 3"),
               _bytes_figure(big)]
    for (a, b), what in ((((100, 10), (1000, 10)), "steps 100 → 1,000 at 10 SLOs"),
                         (((100, 100), (1000, 100)), "steps 100 → 1,000 at 100 SLOs"),
                         (((100, 10), (100, 100)), "SLOs 10 → 100 at 100 steps"),
                         (((1000, 10), (1000, 100)), "SLOs 10 → 100 at 1,000 steps")):
        small, large = by.get(a), by.get(b)
        if small is None or large is None:
            continue
        key, name = f"growth-{a[0]}x{a[1]}-{b[0]}x{b[1]}", f"growth, {what} (10× the input)"
        target = f"≤ {GROWTH_TARGET:g}×"
        if small.failure or large.failure and not large.failure.startswith("killed"):
            figures.append(Figure(key, 3, name, None, "×", [], target, None,
                                  small.failure or large.failure))
            continue
        r = ratio(large.time, small.time)
        if large.failure:  # killed at the timeout: the ratio is a lower bound
            figures.append(Figure(key, 3, name, r, "×", [], target, False if r and r > GROWTH_TARGET else None,
                                  f"lower bound: the larger build was {large.failure}", lower_bound=True))
            continue
        figures.append(Figure(key, 3, name, r, "×", [], target, _le(r, GROWTH_TARGET),
                              f"{small.time:.2f} s → {large.time:.2f} s; output {_mib(small)} → {_mib(large)} MiB; "
                              f"peak RSS {small.rss_mib:.0f} → {large.rss_mib:.0f} MiB"))
    rows = [[f"{c.steps:,}", str(c.slos), "" if c.files is None else str(c.files),
             "" if c.output_bytes is None else f"{c.output_bytes / 2**20:.1f}",
             _seconds(c), str(len(c.walls)), "" if c.rss_mib is None else f"{c.rss_mib:.0f}",
             c.failure or "ok"] for c in cases]
    table = Table("scaling", "3. Scaling: `obsgen build` of generated specs (3 environments each)",
                  ["steps", "SLOs", "files written", "output (MiB)", "build time (median)", "runs",
                   "peak RSS (MiB)", "notes"], rows,
                  f"Each spec is the reference spec with that many steps (tiers in the reference's proportions) and "
                  f"SLOs (alternating pass_rate / latency), checked with `obsgen validate` first. Each build is a "
                  f"fresh child process writing into an empty directory; peak RSS is that child's own "
                  f"(`wait4`). A case whose first build took more than {slow:g} s was run once; a build still "
                  f"running after {timeout:g} s is killed and shown as a lower bound.")
    return figures, table


def _bytes_figure(big: Case) -> Figure:
    """The 1,000 × 100 build's output size against its target, and the bytes outside tests/ as its floor."""
    mib = None if big.output_bytes is None else big.output_bytes / 2**20
    return Figure("scale-1000x100-bytes", 3, f"output of that build ({big.steps:,} steps × {big.slos} SLOs)", mib,
                  "MiB", [], f"≤ {SCALE_BYTES_TARGET:g} MiB", _le(mib, SCALE_BYTES_TARGET),
                  big.failure or f"{big.files} files", floor=None if big.needed_bytes is None
                  else big.needed_bytes / 2**20,
                  floor_how="the bytes a user deploys or reads: every file but the generated tests "
                            "(`<env>/tests/`), which only `obsgen verify` reads")


def _mib(case: Case) -> str:
    return "?" if case.output_bytes is None else f"{case.output_bytes / 2**20:.1f}"


def _seconds(case: Case) -> str:
    if case.time is None:
        return "–"
    prefix = "> " if "timeout" in case.failure else ""
    return f"{prefix}{case.time:.2f} s"


def _case_note(case: Case) -> str:
    if case.failure:
        return case.failure
    return f"peak RSS {case.rss_mib:.0f} MiB; {case.files} files, {_mib(case)} MiB written"


def _le(value: float | None, target: float) -> bool | None:
    return None if value is None else value <= target


# --- where the time goes ----------------------------------------------------------------------------

# (label, file suffix, function): the phases of check and build, as cProfile names them
PHASES = [
    ("imports", "<frozen importlib._bootstrap>", "_find_and_load"),
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
    ("(all YAML dumping: render.to_yaml)", "obsgen/compile/render.py", "to_yaml"),
    ("(all YAML parsing: yaml.load / safe_load)", "yaml/__init__.py", "load"),
]

PHASE_NOTE = ("cProfile slows Python code down about twice; read the shares, not the seconds. Phases overlap "
              "where one calls another (a target may compile another target's output again to derive its own; "
              "the YAML rows cut across every target). A phase that does not run is not listed.")
PROFILED_CASE = (300, 10)  # steps, SLOs: large enough to show what grows faster than the input

_PROFILE = """
import cProfile, contextlib, io, sys
from obsgen.cli import main
profile = cProfile.Profile()
with contextlib.redirect_stdout(io.StringIO()):
    profile.runcall(main, sys.argv[2:])
profile.dump_stats(sys.argv[1])
"""


def import_times(argv: list[str], top: int, env: dict[str, str]) -> tuple[float, list[tuple[str, float]]]:
    """Total import time of `argv` (an obsgen command) and its `top` costliest outermost imports."""
    child = run_child([PYTHON, "-X", "importtime", OBSGEN, *argv], env=env)
    total, rows = 0.0, []
    for line in child.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if not match:
            continue
        total += int(match.group(1)) / 1e6
        if not match.group(3):  # outermost: imported by the command itself, not by another import
            rows.append((match.group(4), int(match.group(2)) / 1e6))
    return total, sorted(rows, key=lambda r: -r[1])[:top]


def profile(argv: list[str], top: int, env: dict[str, str]) -> dict[str, object]:
    """cProfile of one obsgen command in a fresh child: its phases and its costliest functions (self time)."""
    import pstats

    with tempfile.TemporaryDirectory(prefix="obsgen-bench-prof-") as tmp:
        stats_file = Path(tmp, "stats")
        run_child([PYTHON, "-c", _PROFILE, stats_file, *argv], env=env)
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
    """Import times of `obsgen check`; cProfile phases and hot functions of check and build of the reference
    spec and of the build of one generated spec (PROFILED_CASE)."""
    tables: list[Table] = []
    data: dict[str, object] = {}
    check = ["check", "--spec", REFERENCE, "--out", GENERATED]
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-prof-out-") as tmp:
        stamped = state(Path(tmp, "stamped"))
        run_child([OBSGEN, *check], env=stamped)  # the stamp the fast path reads
        total, imports = import_times(check, 12, stamped)
        log(f"  imports of obsgen check: {total:.3f} s")
        data["imports"] = {"total_s": total, "outermost": imports}
        tables.append(Table("imports", f"`obsgen check`: imports ({total:.3f} s of self time in all, from "
                                       f"`python -X importtime`, after one full check)",
                            ["outermost import", "cumulative (ms)"],
                            [[f"`{name}`", f"{secs * 1000:.1f}"] for name, secs in imports],
                            "Outermost imports: the ones obsgen's code triggers itself (module level or lazily "
                            "inside a function); each line includes everything it imports in turn."))
        steps, slos = PROFILED_CASE
        scaled = specgen.write_spec(specgen.scaling_spec(steps, slos), Path(tmp, "scaled.yaml"),
                                    f"{steps} steps, {slos} SLOs")
        runs = (("check", "check", "the reference spec, after one full check", check, stamped),
                ("check-cold", "check", "the reference spec, without a stamp", check, state(Path(tmp, "fresh"))),
                ("build", "build", "the reference spec", ["build", "--spec", REFERENCE, "--out", str(Path(tmp, "out"))],
                 stamped),
                (f"build-{steps}x{slos}", "build", f"a generated spec of {steps} steps × {slos} SLOs",
                 ["build", "--spec", str(scaled), "--out", str(Path(tmp, "out-scaled"))], stamped))
        for key, command, what, argv, env in runs:
            result = profile(argv, 12, env)
            data[f"profile-{key}"] = result
            total_p = float(result["total"])  # type: ignore[arg-type]
            log(f"  profiled obsgen {command} of {what}: {total_p:.2f} s under cProfile")
            rows = [[label, str(calls), f"{cum:.3f}", f"{cum / total_p:.0%}"]
                    for label, calls, cum in result["phases"]]  # type: ignore[union-attr]
            tables.append(Table(f"phases-{key}", f"`obsgen {command}` of {what}: phases under cProfile "
                                                 f"({total_p:.2f} s in all, imports included)",
                                ["phase", "calls", "cumulative (s)", "share"], rows, PHASE_NOTE))
            tables.append(Table(f"self-{key}", f"`obsgen {command}` of {what}: functions with the most self time",
                                ["function", "self (s)", "calls"],
                                [[f"`{f}`", f"{tt:.3f}", str(calls)]
                                 for f, tt, calls in result["self"]],  # type: ignore[union-attr]
                                ""))
    return tables, json.loads(json.dumps(data))
