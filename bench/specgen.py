"""Specs for the benchmarks, derived from the reference spec (`specs/selftest.yaml`).

- `scaling_spec(steps, slos)`: the reference spec with `steps` generated steps spread over its tiers in
  the reference's proportions (step i gets the tier of reference step i mod 10: 1 kernel, 7 governance,
  2 optional per 10, so every environment's tolerance stays below its tier's step count) and `slos` SLOs alternating between the `pass_rate` and `latency` kinds (latency thresholds
  cycle through THRESHOLDS, periods through 7d/14d/28d/30d). Environments,
  channels, alerts and the dashboard stay as in the reference spec.
- `apply_spec(dashboards, slos)`: the reference spec with `dashboards` copies of its overview dashboard
  and `slos` SLOs, for the apply benchmark (one Prometheus rule group file per SLO with 3 groups each,
  plus the 2 groups of the selftest rules).
- `write_spec(data, path)`: the spec as YAML, with a header saying what it was derived from.

Only the standard library and PyYAML are used, so the test suite can import this module.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SPEC = ROOT / "specs" / "selftest.yaml"
PERIODS = ("28d", "7d", "30d", "14d")


def reference() -> dict[str, Any]:
    """The reference spec as plain data (a fresh copy on every call)."""
    return yaml.safe_load(REFERENCE_SPEC.read_text())


def steps(count: int, tiers: list[str]) -> list[dict[str, Any]]:
    """`count` steps, the i-th in tier `tiers[i % len(tiers)]` (`tiers`: a cycle of tier ids)."""
    width = max(3, len(str(count)))
    out = []
    for i in range(count):
        tier = tiers[i % len(tiers)]
        step_id = f"step-{i:0{width}d}"
        out.append({"id": step_id, "tier": tier, "category": "correctness" if i % 2 else "governance",
                    "description": f"Generated {tier} step {i}",
                    "runbook": f"{step_id}-fails",
                    "remediation": f"Re-run {step_id} with --verbose and fix what it reports."})
    return out


THRESHOLDS = (5, 10, 20, 30, 60)  # seconds: the latency SLOs' thresholds, in turn


def slos(count: int) -> list[dict[str, Any]]:
    """`count` SLOs: even indexes `pass_rate`, odd ones `latency` (thresholds from THRESHOLDS in turn)."""
    bounds = list(THRESHOLDS)
    width = max(3, len(str(count)))
    out = []
    for i in range(count):
        kind = "pass_rate" if i % 2 == 0 else "latency"
        sli: dict[str, Any] = {"kind": kind}
        if kind == "latency":
            sli["threshold_seconds"] = bounds[(i // 2) % len(bounds)]
        slo_id = f"{kind.replace('_', '-')}-{i:0{width}d}"
        out.append({"id": slo_id, "description": f"Generated {kind} SLO {i}.",
                    "objective": (0.95, 0.99, 0.9, 0.995)[(i // 2) % 4], "period": PERIODS[(i // 2) % 4],
                    "sli": sli, "remediation": f"Look at what burns the budget of {slo_id}.",
                    "runbook": f"slo-{slo_id}"})
    return out


def scaling_spec(step_count: int, slo_count: int) -> dict[str, Any]:
    """The reference spec with `step_count` steps and `slo_count` SLOs (see the module docstring)."""
    data = reference()
    cycle = [s["tier"] for s in data["steps"]]
    if step_count < len(cycle):
        raise ValueError(f"need at least {len(cycle)} steps to keep the reference's tier proportions")
    if slo_count < 1:
        raise ValueError("need at least 1 SLO: the reference dashboard has SLO panels")
    data["steps"] = steps(step_count, cycle)
    data["slos"] = slos(slo_count)
    return frequent(data)


def apply_spec(dashboard_count: int, slo_count: int) -> dict[str, Any]:
    """The reference spec with `dashboard_count` dashboards (copies of its overview) and `slo_count` SLOs."""
    data = reference()
    template = data["dashboards"][0]
    width = max(3, len(str(dashboard_count)))
    boards = []
    for i in range(dashboard_count):
        board = copy.deepcopy(template)
        board.update(id=f"board-{i:0{width}d}", title=f"Selftest board {i:0{width}d}")
        boards.append(board)
    data["dashboards"] = boards
    data["slos"] = slos(slo_count)
    return frequent(data)


def frequent(data: dict[str, Any]) -> dict[str, Any]:
    """Every environment running every 5m: the generated SLOs' strictest objectives (99.5 % over 7d) need
    a budget of at least two runs, and the benchmarks measure size, not cadence."""
    for env in data["environments"]:
        env["cadence"] = {"every": "5m"}
    return data


def rule_groups(data: dict[str, Any]) -> int:
    """Rule groups one environment of `data` gets: recordings + alerts, and sli/period/alerts per SLO."""
    return 2 + 3 * len(data.get("slos") or [])


def rename_dashboard(data: dict[str, Any], index: int, title: str) -> dict[str, Any]:
    """A copy of `data` whose `index`-th dashboard has another title (same id, so the same uid)."""
    out = copy.deepcopy(data)
    out["dashboards"][index]["title"] = title
    return out


def write_spec(data: dict[str, Any], path: Path, what: str) -> Path:
    """Write `data` as YAML to `path` (parents created) with a header naming what it is; returns path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Benchmark spec derived from specs/{REFERENCE_SPEC.name}: {what}.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1 << 16))
    return path
