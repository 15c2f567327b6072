"""Checking a selftest report: every problem at once, each named by its JSON path.

First against the shipped JSON Schema (`schema_text()`), then what a schema cannot say: no step twice,
tiers of the spec (or the runner's, without a spec), each step of the spec with the spec's tier, a real
time, and `summary` counts that agree with the results. Each check runs on whatever the others leave it
to look at, so a report with a missing field, a wrong type, an unknown step and a summary that
disagrees gets all four at once, not one kind per attempt: a step's spec check needs only its step_id
and tier, the summary's counts only the results they count.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from obsgen.errors import closest
from obsgen.model import Model

STATUSES = ("PASS", "FAIL", "SKIP", "TIMEOUT")
FAILED = ("FAIL", "TIMEOUT")
RUNNER_TIERS = ("kernel", "governance", "optional")  # the runner's own vocabulary, used without a spec
RUNNER_SEVERITY = {"kernel": "critical", "governance": "warning", "optional": "info"}
SCHEMA = ("schemas", "report", "selftest-report.schema.json")  # inside the obsgen package

JsonPath = tuple[Any, ...]  # keys and indexes, e.g. ("results", 3, "tier")


def schema_text() -> str:
    """The JSON Schema of the report, as shipped in the package (`obsgen emit --print-schema`)."""
    from importlib import resources

    return resources.files("obsgen").joinpath(*SCHEMA).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_text()))


class Row(NamedTuple):
    """One result the checks accepted."""

    step_id: str
    tier: str
    status: str
    duration_seconds: float
    severity: str
    end: float  # timestamp_end, 0.0 without one


@dataclass(frozen=True)
class Checked:
    """What the checks found: `problems` ("path: message", in the order a reader meets them), else the rows."""

    problems: list[str]
    rows: list[Row]
    timestamp: float | None
    mode: str
    total_ms: float | None


def examine(data: object, model: Model | None = None) -> Checked:
    """Every problem of a decoded report at once (see the module docstring), and what it holds."""
    found = _schema_problems(data)
    if () in found or not isinstance(data, dict):  # the schema's first rule: a JSON object
        return Checked([found.get((), "expected a JSON object")], [], None, "", None)
    problems: list[tuple[JsonPath, str]] = list(found.items())
    rows: list[Row] = []
    results = data.get("results")
    if isinstance(results, list) and ("results",) not in found:
        rows = _results(results, found, model, problems)
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    timestamp = None
    if ("metadata",) not in found and ("metadata", "timestamp") not in found:
        timestamp = _timestamp(meta, [row.end for row in rows], problems)
    mode = meta.get("mode") if isinstance(meta.get("mode"), str) else ""
    summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    total_ms = summary.get("total_duration_ms")
    if total_ms is not None and ("summary", "total_duration_ms") not in found and not _finite(total_ms):
        problems.append((("summary", "total_duration_ms"), f"expected a number >= 0, got {_kind(total_ms)}"))
    if summary and ("summary",) not in found and isinstance(results, list) and ("results",) not in found:
        _check_summary(summary, results, model, found, problems)
    ordered = sorted(problems, key=lambda p: _order(p[0]))
    return Checked([f"{_at(at)}: {message}" for at, message in ordered], rows, timestamp, mode, total_ms)


def spec_problem(model: Model, step_id: str, tier: str) -> tuple[str, str] | None:
    """(field, message) when the spec has no such step, or gives it another tier."""
    known = {s.id: s for s in model.steps}
    if step_id not in known:
        close = closest(step_id, known)
        hint = f" (did you mean {close}?)" if close else ""
        return "step_id", f"unknown step {step_id}; the spec has no such step{hint}"
    if known[step_id].tier != tier:
        return "tier", f"step {step_id} is {known[step_id].tier} in the spec, not {tier}"
    return None


def _schema_problems(data: object) -> dict[JsonPath, str]:
    """One message per JSON path the schema finds wrong, in obsgen's words (the schema's `x-expected`)."""
    found: dict[JsonPath, str] = {}
    for error in _validator().iter_errors(data):
        at = tuple(error.absolute_path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        if error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    found.setdefault(at + (name,), _MISSING.get(at + (name,), "missing"))
            continue
        if at in found:
            continue
        expected = schema.get("x-expected")
        if expected is None and error.validator == "enum":
            expected = "one of " + ", ".join(str(v) for v in error.validator_value)
        elif expected is None and error.validator == "type":
            expected = _TYPE_NAMES.get(str(error.validator_value), str(error.validator_value))
        found[at] = f"expected {expected}, got {_kind(error.instance)}" if expected else error.message
    return found


_MISSING = {("results",): "missing; emit needs the per-step results of the full `selftest --json-v2` report, "
                          "not only its summary"}
_TYPE_NAMES = {"object": "object", "array": "array", "string": "string", "number": "number",
               "integer": "a whole number"}
_TOP = {"version": 0, "results": 1, "metadata": 2, "summary": 3}
_FIELDS = {"step_id": 0, "tier": 1, "status": 2, "duration_ms": 3}


def _order(path: JsonPath) -> tuple[Any, ...]:
    """Problems in the order a reader meets them: version, each result by index and field, metadata, summary."""
    if not path:
        return (-1,)
    rest = tuple(p if isinstance(p, int) else _FIELDS.get(p, 9) for p in path[1:])  # ties: as found
    return (_TOP.get(path[0], 4), *rest)


def _at(path: JsonPath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _results(results: list[Any], found: dict[JsonPath, str], model: Model | None,
             problems: list[tuple[JsonPath, str]]) -> list[Row]:
    """A row per entry every check accepted; the checks a schema cannot make, each on the fields it needs."""
    tiers = tuple(t.id for t in model.tiers) if model else RUNNER_TIERS
    seen: dict[str, int] = {}
    rows = []
    for i, item in enumerate(results):
        if not isinstance(item, dict):
            continue
        bad = any(p[:2] == ("results", i) for p in found)
        step_id, tier = item.get("step_id"), item.get("tier")
        named = isinstance(step_id, str) and bool(step_id) and ("results", i, "step_id") not in found
        tiered = isinstance(tier, str) and bool(tier) and ("results", i, "tier") not in found
        if named and step_id in seen:
            problems.append((("results", i, "step_id"), f"duplicate step {step_id} (also results[{seen[step_id]}])"))
            bad, named = True, False
        elif named:
            seen[step_id] = i
        if tiered and tier not in tiers:
            problems.append((("results", i, "tier"), f"expected one of {', '.join(tiers)}, got {_kind(tier)}"))
            bad, tiered = True, False
        for key in ("duration_ms", "timestamp_end"):
            if item.get(key) is not None and ("results", i, key) not in found and not _finite(item[key]):  # NaN
                problems.append((("results", i, key), f"expected a number >= 0, got {_kind(item[key])}"))
                bad = True
        if model and named and tiered and (problem := spec_problem(model, step_id, tier)):
            problems.append((("results", i, problem[0]), problem[1]))
            bad = True
        if bad:
            continue
        rows.append(Row(step_id, tier, item["status"], item["duration_ms"] / 1000, _severity(item, model) or "",
                        float(item.get("timestamp_end") or 0.0)))
    return rows


def _severity(item: dict[str, Any], model: Model | None) -> str | None:
    """A result's severity: its own, else its tier's (the spec's, or the runner's without a spec); None
    when neither can be told."""
    if isinstance(item.get("severity"), str):
        return item["severity"]
    tiers = {t.id: t.severity for t in model.tiers} if model else RUNNER_SEVERITY
    tier = item.get("tier")
    return tiers.get(tier) if isinstance(tier, str) else None


def _check_summary(summary: dict[str, Any], results: list[Any], model: Model | None, found: dict[JsonPath, str],
                   problems: list[tuple[JsonPath, str]]) -> None:
    """The summary's counts against the results they count -- every entry, accepted or not, as the runner
    counted them; a count is checked when every entry it needs can be counted."""
    _agree(summary.get("total"), len(results), ("summary", "total"), "step", found, problems)
    statuses = [item.get("status") if isinstance(item, dict) else None for item in results]
    if all(status in STATUSES for status in statuses):
        counts = {"passed": (sum(s == "PASS" for s in statuses), "passed "),
                  "failed": (sum(s in FAILED for s in statuses), "failed "),
                  "skipped": (sum(s == "SKIP" for s in statuses), "skipped ")}
        for key, (n, what) in counts.items():
            _agree(summary.get(key), n, ("summary", key), f"{what}step", found, problems)
    by_severity = summary.get("by_severity")
    if not isinstance(by_severity, dict) or ("summary", "by_severity") in found:
        return
    failing = [_severity(item, model) for item, status in zip(results, statuses) if status in FAILED]
    if None in failing or not all(status in STATUSES for status in statuses):
        return  # some failure's severity cannot be told: the per-severity counts cannot be checked
    for severity, entry in by_severity.items():
        if isinstance(entry, dict):
            _agree(entry.get("failed"), failing.count(severity), ("summary", "by_severity", severity, "failed"),
                   f"failed {severity} step", found, problems)


def _agree(value: Any, n: int, at: JsonPath, what: str, found: dict[JsonPath, str],
           problems: list[tuple[JsonPath, str]]) -> None:
    if value is not None and value != n and at not in found:
        problems.append((at, f"{value}, but results has {n} {what}{'' if n == 1 else 's'}"))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _timestamp(meta: dict[str, Any], ends: list[float], problems: list[tuple[JsonPath, str]]) -> float | None:
    text = meta.get("timestamp")
    if text is None:
        return max(ends) if ends and max(ends) > 0 else None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        expected = "an ISO 8601 time with a UTC offset (e.g. 2025-11-30T15:30:00+00:00)"
        problems.append((("metadata", "timestamp"), f"expected {expected}, got {_kind(text)}"))
        return None
    return when.timestamp()


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    name = names.get(type(value), "number")
    if isinstance(value, (dict, list)):
        return f"{name} ({len(value)} {'keys' if isinstance(value, dict) else 'items'})"
    shown = json.dumps(value)
    return f"{name} {shown if len(shown) <= 40 else shown[:37] + '...'}"
