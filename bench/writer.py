"""The results: figures and tables, written as bench/results.md (for people) and bench/results.json."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SECTIONS = {
    1: "1. obsgen check",
    2: "2. obsgen build",
    3: "3. Scaling",
    4: "4. Apply (Grafana double with 50 ms per request, live Prometheus and Alertmanager)",
    5: "5. Rule cost",
    6: "6. Time to alert (live stack, 1 s scrape and evaluation)",
    7: "7. obsgen verify (the generated rule and routing tests, promtool and amtool)",
    8: "8. Test suite (`make test`)",
}


@dataclass
class Figure:
    """One measured figure: the median of `samples` (or a derived value), its target and whether it is met."""

    key: str
    section: int
    name: str
    value: float | None
    unit: str  # s, ms, ×, rules, writes, reloads, MiB
    samples: list[float] = field(default_factory=list)
    target: str = ""  # "" = reported, no target
    met: bool | None = None  # None = no target, or not measured
    note: str = ""
    why: str = ""  # for a missed target: where the time goes, from the profiles of the same run
    extra: dict[str, float] = field(default_factory=dict)  # numbers the explanations use
    lower_bound: bool = False  # the value is a lower bound (a build was killed at its timeout)
    floor: float | None = None  # the least the work could take here, in `unit` (bench/floors.py)
    floor_how: str = ""  # how the floor was computed, for the notes

    @property
    def floor_ratio(self) -> float | None:
        """value ÷ floor: how many times the least the work could take."""
        return self.value / self.floor if self.value is not None and self.floor else None

    def floor_shown(self) -> str:
        return "–" if self.floor is None else show(self.floor, self.unit)

    def floor_ratio_shown(self) -> str:
        r = self.floor_ratio
        return "–" if r is None else ("> " if self.lower_bound else "") + f"{r:.1f}×"

    @property
    def runs(self) -> int:
        return len(self.samples)

    def shown(self) -> str:
        return ("> " if self.lower_bound and self.value is not None else "") + show(self.value, self.unit)


@dataclass
class Table:
    """A detail table under its section (or under "Where the time goes")."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Results:
    machine: dict[str, Any]
    runs: dict[str, int]
    figures: list[Figure] = field(default_factory=list)
    tables: dict[int, list[Table]] = field(default_factory=dict)  # by section; 0 = where the time goes
    notes: list[str] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"
    if unit == "×":
        return f"{value:.1f}×"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if unit in ("rules", "writes", "reloads", "requests"):
        return f"{value:g} {unit[:-1] if value == 1 else unit}"
    return f"{value:g} {unit}".strip()


def _met(figure: Figure) -> str:
    if not figure.target:
        return "–"
    if figure.met is None:
        return "not known" if figure.value is not None else "not measured"
    return "yes" if figure.met else "**NO**"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(columns: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _machine_rows(machine: dict[str, Any]) -> list[list[str]]:
    labels = {"measured_at": "measured", "cpu_model": "CPU", "cpu_count": "CPUs", "memory_gib": "memory (GiB)",
              "os": "OS", "python": "Python", "obsgen": "obsgen", "prometheus": "Prometheus",
              "alertmanager": "Alertmanager", "pushgateway": "Pushgateway"}
    return [[labels.get(k, k), str(v)] for k, v in machine.items()]


def markdown(results: Results) -> str:
    r = results
    out = ["# obsgen benchmarks", "",
           "Produced by `make bench` (`bench/run.py`; see `bench/README.md`), which rewrites this file and "
           "`bench/results.json` on every run. Each figure is the **median** of the runs given in its row; "
           "timings of obsgen commands are fresh child processes, interpreter start and imports included.", "",
           "## Machine", ""]
    out += _table(["", ""], _machine_rows(r.machine))
    out += ["", f"Runs per figure: " + ", ".join(f"{k} {v}" for k, v in r.runs.items())
            + f". The whole benchmark took {r.duration_s / 60:.1f} min.", "", "## Summary", ""]
    rows = [[str(f.section), f.name, f.shown(), str(f.runs) if f.runs else "–", f.target or "–", _met(f),
             f.floor_shown(), f.floor_ratio_shown(), f.note] for f in r.figures]
    out += _table(["#", "figure", "median", "runs", "target", "met", "floor", "× floor", "notes"], rows)
    floors = [f for f in r.figures if f.floor_how]
    if floors:
        out += ["", "Floors (the least the work could take on this machine, measured in the same run; "
                    "see bench/README.md):", ""]
        out += [f"- {f.name}: {f.floor_how}" for f in floors]
    failed = [f for f in r.figures if f.target and f.met is False]
    unmeasured = [f for f in r.figures if f.target and f.met is None]
    broken = [f for f in r.figures if f.key.startswith("failed-")]
    out += ["", "## Targets not met", ""]
    if not failed and not unmeasured and not broken:
        out.append("Every target is met.")
    for f in failed:
        out.append(f"- **{f.name}**: {f.shown()} against a target of {f.target}." + (f" {f.note}." if f.note else "")
                   + (f" Why: {f.why}" if f.why else ""))
    for f in unmeasured:
        what = "not measured" if f.value is None else f"at least {show(f.value, f.unit)}"
        out.append(f"- **{f.name}**: {what} ({f.note or 'see the log'}); its target ({f.target}) "
                   f"is not known to be met.")
    for f in broken:
        out.append(f"- **{f.name}**: {f.note}; none of its targets is known to be met.")
    for section in sorted(s for s in r.tables if s):
        out += ["", f"## {SECTIONS.get(section, section)}"]
        for table in r.tables[section]:
            out += ["", f"### {table.title}", ""] + _table(table.columns, table.rows)
            if table.note:
                out += ["", table.note]
    if r.tables.get(0):
        out += ["", "## Where the time goes", "",
                "Measured in the same run (import times and cProfile of child processes); the same data is in "
                "results.json under `profile`."]
        for table in r.tables[0]:
            out += ["", f"### {table.title}", ""] + _table(table.columns, table.rows)
            if table.note:
                out += ["", table.note]
    if r.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in r.notes]
    return "\n".join(out) + "\n"


def to_json(results: Results) -> str:
    data = asdict(results)
    for figure, raw in zip(results.figures, data["figures"]):
        raw["runs"] = figure.runs
        raw["shown"] = figure.shown()
        raw["floor_ratio"] = figure.floor_ratio
    data["tables"] = {str(k): v for k, v in data["tables"].items()}
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def write(results: Results, directory: Path) -> tuple[Path, Path]:
    md, js = directory / "results.md", directory / "results.json"
    directory.mkdir(parents=True, exist_ok=True)
    md.write_text(markdown(results))
    js.write_text(to_json(results))
    return md, js
