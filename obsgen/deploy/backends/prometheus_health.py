"""What Prometheus itself says around a reload: did its last reload fail, why does a reload fail, and which
written rules fail when they are evaluated.

A failed reload leaves Prometheus running the rules it had, and its answer names only the main config file
("one or more errors occurred while applying the new configuration"), unless the main config itself is
broken. So the cause is told apart here: when `promtool` is installed, every rule file in `rules_dir` is
checked with `promtool check rules`, and those it rejects are named, each as obsgen's or not. A rule can
also load and then fail at every evaluation (many-to-many matching, for one): Prometheus shows that only
after its first evaluation, up to one group interval later, so each written rule's expression is evaluated
once at once as an instant query (the same engine, the same data; at most QUERY_TIMEOUT each, a slower
one is said to be unchecked), and the groups are then watched for at most `OBSGEN_EVALUATION_WAIT` seconds
(default 0) for Prometheus's own first evaluation.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from obsgen.deploy.backends import rule_files
from obsgen.deploy.http import BackendError, Deadline, Http, parallel

RUNTIME = "/api/v1/status/runtimeinfo"
PROMTOOL_TIMEOUT = 30.0  # seconds for one `promtool check rules`
CHECKED = 200  # rule files checked with promtool at most
SHOWN = 4  # failing rules or files named in one message
NEVER = "0001-01-01T00:00:00Z"  # Prometheus's lastEvaluation of a group not evaluated yet


def last_reload_ok(http: Http) -> bool | None:
    """Prometheus's own word on its last reload (`reloadConfigSuccess`); None when it does not say."""
    response = http.request("GET", RUNTIME, ok=(200, 403, 404))  # a proxy may hide it: then unknown
    if response.status_code != 200:
        return None
    data = http.json(response, dict).get("data")
    value = data.get("reloadConfigSuccess") if isinstance(data, dict) else None
    return value if isinstance(value, bool) else None


def reload(http: Http) -> tuple[int, str]:
    """POST /-/reload: its status and its answer's text (Prometheus's reason when it is 500)."""
    response = http.request("POST", "/-/reload", ok=(200, 403, 500))
    return response.status_code, " ".join(response.text.split())[:600]


def broken_files(rules_dir: Path, marker: str) -> list[str]:
    """The rule files in rules_dir that `promtool check rules` rejects, each as `path (whose): error`;
    empty when none is, or when promtool is not installed."""
    promtool = shutil.which("promtool")
    if not promtool:
        return []
    try:
        paths = sorted(p for p in rules_dir.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())[:CHECKED]
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                                  timeout=PROMTOOL_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            continue
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        said = next((line.removeprefix(f"{path}:").strip() for line in lines if line.startswith(f"{path}:")),
                    lines[-1] if lines else "rejected")
        try:
            whose = "obsgen's" if rule_files.is_owned(path.read_bytes(), marker) else "not obsgen's"
        except OSError:
            whose = "unreadable"
        found.append(f"{path} ({whose}): {said[:300]}")
    return found


def cause(reason: str, rules_dir: Path, marker: str) -> str:
    """Prometheus's reason for a failed reload, with the rule files promtool rejects named."""
    broken = broken_files(rules_dir, marker)
    more = f" and {len(broken) - SHOWN} more" if len(broken) > SHOWN else ""
    return "; ".join([reason or "(no reason given)", *broken[:SHOWN]]) + more


QUERY_TIMEOUT = "5s"  # Prometheus's own limit on one check query; a rule slower than that is left unchecked
CHECK_TIMEOUT = 30.0  # seconds for all the check queries of one apply, their reads included


BATCH = 20  # rules of one group checked in one query; a batch that fails is checked rule by rule


def query_errors(http: Http, rules: list[tuple[str, str, str]]) -> tuple[list[str], int]:
    """Evaluate each (group, rule name, expression) once as an instant query: `group/rule: error` for
    those Prometheus fails to evaluate now, and how many it did not finish within QUERY_TIMEOUT.

    The rules of a group go BATCH at a time as one query, `(e1) or (e2) or …`: a set operation evaluates
    every operand and never fails by itself, so a batch answered 200 proves each of its rules evaluates;
    any other answer (a rule failing, a scalar expression `or` cannot take, a timeout) sends that batch's
    rules one by one, so the failing ones are named exactly as before."""
    deadline = Deadline.after(CHECK_TIMEOUT)

    def one(rule: tuple[str, str, str]) -> str | None:
        group, name, expr = rule
        # 422: the engine failed evaluating it; 503: timed out or cancelled. A 400 (bad data) is not the
        # rule's fault -- Prometheus loaded it -- so it is an error of the check, named as such by `request`
        response = http.request("POST", "/api/v1/query", ok=(200, 422, 503), deadline=deadline,
                                data={"query": expr, "timeout": QUERY_TIMEOUT})
        if response.status_code == 200:
            return ""
        body = http.json(response, dict)
        if response.status_code == 503:
            return None
        return f"{group}/{name}: {' '.join(str(body.get('error') or body.get('errorType') or 'error').split())}"

    def batch(rules: list[tuple[str, str, str]]) -> list[str | None]:
        if len(rules) > 1:
            query = " or ".join(f"({expr})" for _, _, expr in rules)
            response = http.request("POST", "/api/v1/query", ok=(200, 400, 422, 503), deadline=deadline,
                                    data={"query": query, "timeout": QUERY_TIMEOUT})
            if response.status_code == 200:
                return [""] * len(rules)
        return [one(rule) for rule in rules]

    batches: list[list[tuple[str, str, str]]] = []
    for group in dict.fromkeys(g for g, _, _ in rules):
        mine = [r for r in rules if r[0] == group]
        batches += [mine[i:i + BATCH] for i in range(0, len(mine), BATCH)]
    results = [error for errors in parallel(batch, batches) for error in errors]
    return [error for error in results if error], sum(1 for error in results if error is None)


def evaluation_wait(intervals: list[float]) -> float:
    """Seconds to wait for Prometheus's own first evaluation of the written groups: OBSGEN_EVALUATION_WAIT
    (default 0), and never more than the longest group interval plus a 5 s margin."""
    try:
        wanted = float(os.environ.get("OBSGEN_EVALUATION_WAIT") or 0)
    except ValueError:
        raise BackendError(f"OBSGEN_EVALUATION_WAIT must be a number of seconds, not "
                           f"{os.environ['OBSGEN_EVALUATION_WAIT']!r}") from None
    return max(0.0, min(wanted, max(intervals, default=0.0) + 5.0))


def evaluated(group: dict[str, Any], before: str | None) -> bool:
    """Prometheus has evaluated the group since it was (re)loaded: its lastEvaluation is set and is not the
    one listed before the reload."""
    last = group.get("lastEvaluation")
    return isinstance(last, str) and not last.startswith("0001-") and last != before


def failing(groups: list[dict[str, Any]]) -> list[str]:
    """`group/rule: lastError` for every rule Prometheus reports in error."""
    return [f"{g['name']}/{r.get('name')}: {' '.join(str(r.get('lastError') or 'health err').split())}"
            for g in groups for r in g.get("rules", []) if isinstance(r, dict) and r.get("health") == "err"]


GROUPS_SHOWN = 8  # group names named in one message before "and N more"


def unconfirmed(label: str, rules_dir: Path, within_s: float, missing: list[tuple[str, str]],
                differ: list[tuple[str, str]], stale: list[tuple[str, str]]) -> str:
    """Why the wait for a reload's groups ended: (file, group) pairs not listed, listed but not as written,
    and deleted but still listed, at the last read."""
    def files(pairs: list[tuple[str, str]]) -> str:
        return ", ".join(sorted({n for n, _ in pairs}))

    def groups(pairs: list[tuple[str, str]]) -> str:
        names = [g for _, g in pairs]
        more = f" and {len(names) - GROUPS_SHOWN} more" if len(names) > GROUPS_SHOWN else ""
        return ", ".join(names[:GROUPS_SHOWN]) + more

    within = f"within {within_s:g} s"
    parts = []
    if missing:
        parts.append(f"{label} did not load {groups(missing)} from {files(missing)} {within}: is "
                     f"{rules_dir} inside its rule_files globs?")
    if differ:
        parts.append(f"{label} lists {groups(differ)} from {files(differ)} but not as written {within}")
    if stale:
        parts.append(f"{label} still lists the deleted {groups(stale)} from {files(stale)} {within}")
    return "; ".join(parts)
