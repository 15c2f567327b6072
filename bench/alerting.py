"""Figures 5 and 6: rule cost and time to alert, on `tests/localstack.py` (the reference spec's dev applied to
real Prometheus, Alertmanager and Pushgateway on loopback, fast timing). Every wait is bounded."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator

import requests
import yaml

from live import WAIT, Log, apply_in_process, poll, state_dir
from localstack import PAGERDUTY_PATH, LocalStack
from measure import ROOT, median
from writer import Figure, Table

NEVER = "0001-01-01"  # lastEvaluation of a group Prometheus has not evaluated yet


# --- 5 and 6: the local stack with dev applied ----------------------------------------------------

@contextlib.contextmanager
def local_stack(tmp: Path, log: Log) -> Iterator[tuple[LocalStack, float]]:
    """`LocalStack(fast=True)` with dev applied; yields it and the time (unix) its rules were loaded."""
    directory = tmp / "local"
    directory.mkdir()
    with LocalStack(directory, fast=True) as local:
        with local.environment(), state_dir(directory / "state"):
            wall, code, output = apply_in_process("--compile")  # whatever generated/ holds
        if code != 0:
            raise RuntimeError(f"obsgen apply of the local stack's dev failed: {output.strip()[-500:]}")
        loaded = time.time()
        from obsgen.spec import load_spec

        local.model = load_spec(str(local.spec))  # type: ignore[attr-defined]
        log(f"  local stack up, dev applied in {wall:.2f} s")
        yield local, loaded


def _step_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if "slo" not in a.get("labels", {})]


def _quiet(local: LocalStack) -> None:
    """Wait until no step alert is pending or firing in Prometheus nor active in Alertmanager."""
    poll(lambda: not _step_alerts(local.stack.alerts()) and not _step_alerts(local.stack.prometheus_alerts()),
         WAIT, "quiet stack (every step alert resolved)", interval=0.2)


def _pagerduty(local: LocalStack, action: str, **match: str) -> list[dict[str, Any]]:
    out = []
    for record in local.sink.received(PAGERDUTY_PATH):
        body = record.body if isinstance(record.body, dict) else {}
        details = (body.get("payload") or {}).get("custom_details") or {}
        if body.get("event_action") == action and all(
                (details.get(k) if k != "dedup_key" else body.get(k)) == v for k, v in match.items()):
            out.append(body)
    return out


def time_to_alert(local: LocalStack, runs: int, log: Log) -> tuple[list[Figure], Table]:
    from obsgen.run import emit

    model = local.model  # type: ignore[attr-defined]
    url = local.stack.pushgateway_url
    # Prometheus 2.42 forgets its Alertmanagers for ~5 s after every reload (see tests/stack.py)
    time.sleep(6)
    poll(lambda: requests.get(f"{local.stack.prometheus_url}/api/v1/alertmanagers", timeout=5)
         .json()["data"]["activeAlertmanagers"], WAIT, "Alertmanager known to Prometheus", interval=0.2)
    passing = emit.synthetic_report(model, "dev", "kernel", failing=0)
    emit.emit_to_pushgateway(model, "dev", passing, url)
    _quiet(local)
    alerts, resolves, rows = [], [], []
    for i in range(runs):
        local.sink.clear()
        failing = emit.synthetic_report(model, "dev", "kernel")
        step = failing.failing[0]
        start = time.monotonic()
        emit.emit_to_pushgateway(model, "dev", failing, url)
        trigger = poll(lambda: _pagerduty(local, "trigger", step_id=step), WAIT, f"PagerDuty trigger for {step}")[0]
        alerts.append(time.monotonic() - start)
        start = time.monotonic()
        emit.emit_to_pushgateway(model, "dev", passing, url)
        poll(lambda: _pagerduty(local, "resolve", dedup_key=trigger.get("dedup_key")), WAIT, "PagerDuty resolve")
        resolves.append(time.monotonic() - start)
        rows.append([str(i + 1), step, f"{alerts[-1]:.2f}", f"{resolves[-1]:.2f}"])
        log(f"  time to alert {i + 1}/{runs}: {alerts[-1]:.2f} s, to resolve {resolves[-1]:.2f} s")
        _quiet(local)
    figures = [
        Figure("time-to-alert", 6, "time to alert: failing kernel run pushed → PagerDuty trigger at the sink",
               median(alerts), "s", alerts, "", None,
               "1 s scrape and evaluation, `for: 0s`, 1 s group_wait (LocalStack fast); measured after waiting "
               "out Prometheus 2.42's ~5 s without Alertmanagers after the apply's reload"),
        Figure("time-to-resolve", 6, "time to resolve: passing run pushed → PagerDuty resolve at the sink",
               median(resolves), "s", resolves, "", None, "same stack, between the runs"),
    ]
    table = Table("alert", "6. Every fire drill", ["run", "failing step", "to trigger (s)", "to resolve (s)"], rows,
                  "Runs are published with `obsgen.run.emit` (`synthetic_report(model, \"dev\", \"kernel\")` and a passing "
                  "run) to the Pushgateway; the sink is polled every 20 ms. The stack is quiet (no step alert "
                  "pending or firing) before every run.")
    return figures, table


def rules_per_slo() -> dict[str, int]:
    """Rules in each generated dev/prometheus/slo-*.rules.yaml of the committed reference output."""
    out = {}
    for path in sorted((ROOT / "generated" / "dev" / "prometheus").glob("slo-*.rules.yaml")):
        groups = (yaml.safe_load(path.read_text()) or {}).get("groups") or []
        out[path.name.removesuffix(".rules.yaml").removeprefix("slo-")] = sum(len(g.get("rules") or []) for g in groups)
    return out


def rule_cost(local: LocalStack, loaded: float, samples: int, log: Log) -> tuple[list[Figure], Table]:
    """Rules per SLO (committed output) and the evaluationTime Prometheus reports for every generated group."""
    counts = rules_per_slo()
    rules_dir = local.stack.rules_dir.resolve()

    def ours() -> list[dict[str, Any]]:
        return [g for g in local.stack.rule_groups() if Path(g["file"]).resolve().parent == rules_dir]

    longest = max((float(g.get("interval") or 0) for g in ours()), default=0.0)
    deadline = loaded + longest + 30  # a group's first evaluation comes at most one interval after loading
    log(f"  waiting up to {max(deadline - time.time(), 0):.0f} s for every group's first evaluation")
    poll(lambda: all(not str(g.get("lastEvaluation", NEVER)).startswith(NEVER) for g in ours())
         or time.time() > deadline, max(deadline - time.time(), 0) + 10, "evaluation of every group", 1.0)
    times: dict[str, list[float]] = {}
    meta: dict[str, dict[str, Any]] = {}
    for i in range(samples):
        for g in ours():
            if not str(g.get("lastEvaluation", NEVER)).startswith(NEVER):
                times.setdefault(g["name"], []).append(float(g["evaluationTime"]) * 1000)
            meta[g["name"]] = g
        if i + 1 < samples:
            time.sleep(1.1)
    never = sorted(set(meta) - set(times))
    per_group = {name: median(v) for name, v in times.items()}
    total = sum(v for v in per_group.values() if v is not None)
    slo_ids = [s.id for s in local.model.slos]  # type: ignore[attr-defined]
    per_slo = [sum(per_group.get(f"slo-{s}-{part}") or 0 for part in ("sli", "period", "alerts")) for s in slo_ids]
    log(f"  rule groups evaluated: {len(times)}, never: {never}, total {total:.2f} ms per round")
    figures = [
        Figure("rules-per-slo", 5, "rules emitted per SLO (generated dev slo-*.rules.yaml)",
               max(counts.values()) if counts else None, "rules", [], "≤ 17 rules (Sloth)",
               None if not counts else max(counts.values()) <= 17,
               ", ".join(f"{k}: {v}" for k, v in counts.items())),
        Figure("eval-per-slo", 5, "evaluation time per SLO (its sli + period + alerts groups)",
               median(per_slo) if per_slo else None, "ms", [], "", None,
               f"evaluationTime from /api/v1/rules, read {samples} times; median over the {len(per_slo)} SLOs "
               f"of each SLO's sum ({', '.join(f'{v:.2f}' for v in per_slo)} ms)"),
        Figure("eval-all", 5, "evaluation time of every generated group, one round (sum of group medians)",
               total if times else None, "ms", [], "", None,
               f"{len(times)} groups" + (f"; never evaluated within the wait: {', '.join(never)}" if never else "")),
    ]
    rows = [[f"`{name}`", str(meta[name].get("interval")), str(len(meta[name].get("rules") or [])),
             "–" if name not in times else f"{per_group[name]:.3f}", str(len(times.get(name, [])))]
            for name in sorted(meta)]
    table = Table("rule-cost", "5. evaluationTime of every generated group (dev, live)",
                  ["group", "interval (s)", "rules", "evaluationTime (ms, median)", "samples"], rows,
                  f"The local stack's dev (the reference spec, fast timing) after the fire drills of figure 6, so "
                  f"the TSDB holds a few runs only: this is the per-rule overhead, not query cost at production "
                  f"cardinality. Groups are read {samples} times 1.1 s apart once every group has been evaluated at "
                  f"least once (the 5-minute period groups first run up to 5 minutes after they are loaded, so "
                  f"their samples repeat one evaluation).")
    return figures, table
