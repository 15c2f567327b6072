"""Map a validated spec document onto the frozen model, filling defaults."""
from __future__ import annotations

import hashlib
from fractions import Fraction
from typing import Any

from obsgen import model as m

DEFAULT_METRICS = {
    "env_label": "env",
    "step_failed": "selftest_step_failed",
    "run_duration": "selftest_run_duration_seconds",
    "last_run_timestamp": "selftest_last_run_timestamp_seconds",
    "step_failures_total": "selftest_step_failures_total",
    "recent_runs": "selftest_recent_run_timestamp_seconds",
    "step_last_failure": "selftest_step_last_failure_timestamp_seconds",
    "step_last_pass": "selftest_step_last_pass_timestamp_seconds",
    "run_timestamp": "selftest_run_timestamp_seconds",
}
# Keys of `metrics` that 0.9.0 retired (spec.checks refuses them, saying what replaced them).
REMOVED_METRICS = ("runs_total", "duration_buckets")
# Default summaries. `{{env}}` is filled with the environment's name when the rules are compiled (as in
# custom PromQL), so the text names the environment even where the alert's series carry no env label.
_DEFAULT_SUMMARY = {
    "step_failed": "{tier} step {{{{ $labels.step_id }}}} failed in {{{{env}}}}",
    "not_reporting": "Selftest in {{{{env}}}} has not reported a run recently",
    "no_passing_run": "No passing selftest run in {{{{env}}}} recently",
    "slow_runs": "Selftest runs in {{{{env}}}} are slow",
    "custom": "{name} in {{{{env}}}}",
}


def to_model(data: dict[str, Any], raw: bytes, source: str) -> m.Model:
    metrics = {**DEFAULT_METRICS, **{k: v for k, v in data.get("metrics", {}).items() if k not in REMOVED_METRICS}}
    slo_alerting = data.get("slo_alerting") or {"page_channel": "", "ticket_channel": ""}
    return m.Model(
        api_version=data["apiVersion"],
        service=m.Service(**data["service"]),
        metrics=m.Metrics(**metrics),
        tiers=tuple(m.Tier(id=t["id"], severity=t["severity"], channel=t["channel"], runbook=t.get("runbook", ""),
                           description=t.get("description", "")) for t in data["tiers"]),
        steps=tuple(m.Step(id=s["id"], tier=s["tier"], category=s.get("category", ""),
                           description=s.get("description", ""), runbook=s.get("runbook", ""),
                           remediation=s["remediation"]) for s in data["steps"]),
        channels=tuple(m.Channel(id=c["id"], type=c["type"], description=c.get("description", ""))
                       for c in data["channels"]),
        environments=tuple(_environment(e, data["service"]["name"]) for e in data["environments"]),
        slos=tuple(_slo(s) for s in data.get("slos", [])),
        slo_alerting=m.SLOAlerting(**slo_alerting),
        alerts=tuple(_alert(a, data) for a in data["alerts"]),
        dashboards=tuple(m.Dashboard(id=d["id"], title=d["title"], tags=tuple(d.get("tags", ())),
                                     panels=tuple(d["panels"])) for d in data.get("dashboards", [])),
        timing=m.Timing(**data.get("timing", {})),
        digest=hashlib.sha256(raw).hexdigest(),
        source=source,
    )


def _environment(e: dict[str, Any], service: str) -> m.Environment:
    policy = e.get("policy", {})
    targets = []
    for channel, t in sorted(e["channels"].items()):
        targets.append(m.ChannelTarget(channel=channel, routing_key_file=t.get("routing_key_file", ""),
                                       url=t.get("url", ""), api_url_file=t.get("api_url_file", ""),
                                       slack_channel=t.get("channel", "")))
    backends = []
    for kind, b in sorted(e.get("backends", {}).items()):
        backends.append(m.Backend(kind=kind, mode=b.get("mode", kind), url=b["url"], token_env=b.get("token_env", ""),
                                  token_file=b.get("token_file", ""), tenant=b.get("tenant", ""),
                                  folder=b.get("folder", ""), rules_dir=b.get("rules_dir", ""),
                                  config_file=b.get("config_file", ""), api_path=b.get("api_path", ""),
                                  owns=b.get("owns", "subtree"),
                                  route_position=(b.get("route") or {}).get("position", "first"),
                                  route_continue=bool((b.get("route") or {}).get("continue", False))))
    return m.Environment(
        name=e["name"], description=e.get("description", ""),
        policy=m.Policy(tolerance=tuple(sorted(policy.get("tolerance", {}).items())),
                        page_on_any_failure=bool(policy.get("page_on_any_failure", False))),
        channels=tuple(targets), backends=tuple(backends), cadence=_cadence(e.get("cadence") or {}),
        kubernetes=_kubernetes(e["kubernetes"], service, e["name"]) if "kubernetes" in e else None)


def _kubernetes(k: dict[str, Any], service: str, env: str) -> m.Kubernetes:
    """Defaults: the namespace `<service>-<env>`, the Secret `<service>-alerting`, no extra labels."""
    return m.Kubernetes(namespace=k.get("namespace", f"{service}-{env}"), secret=k.get("secret", f"{service}-alerting"),
                        labels=tuple(sorted((k.get("labels") or {}).items())),
                        secret_keys=tuple(sorted((k.get("secret_keys") or {}).items())))


def _cadence(c: dict[str, Any]) -> m.Cadence:
    if "at_least_every" in c:
        return m.Cadence(interval=c["at_least_every"], regular=False)
    return m.Cadence(interval=c.get("every", m.Cadence.interval))


def _slo(s: dict[str, Any]) -> m.SLO:
    sli = s["sli"]
    return m.SLO(
        id=s["id"], description=s.get("description", ""),
        objective=Fraction(str(s["objective"])), period=s.get("period", "30d"),
        sli=m.SLI(kind=sli["kind"], threshold_seconds=float(sli.get("threshold_seconds", 0)),
                  error_query=sli.get("error_query", ""), total_query=sli.get("total_query", ""),
                  counts=sli.get("counts", "events" if sli["kind"] == "ratio" else "runs")),
        remediation=s.get("remediation", ""), runbook=s.get("runbook", ""),
        # a run-based SLO pages only where the spec asks: the step alerts page on failures by the policy
        page=s.get("page", sli.get("counts", "events" if sli["kind"] == "ratio" else "runs") == "events"))


def _params(a: dict[str, Any], base: m.AlertParams | None = None) -> m.AlertParams:
    return m.AlertParams(
        for_=a.get("for", base.for_ if base else "0m"),
        stale_after=a.get("stale_after", base.stale_after if base else ""),
        threshold_seconds=float(a.get("threshold_seconds", base.threshold_seconds if base else 0)),
        quantile=float(a.get("quantile", base.quantile if base else 0.95)),
        window=a.get("window", base.window if base else "1h"),
        enabled=bool(a.get("enabled", base.enabled if base else True)),
    )


def _alert(a: dict[str, Any], data: dict[str, Any]) -> m.Alert:
    params = _params(a)
    tier = next(t for t in data["tiers"] if t["id"] == a["tier"])
    summary = a.get("summary") or _DEFAULT_SUMMARY[a["kind"]].format(tier=a["tier"].upper(), name=a["name"])
    return m.Alert(
        name=a["name"], kind=a["kind"], tier=a["tier"], summary=summary,
        remediation=a.get("remediation", ""), runbook=a.get("runbook", tier.get("runbook", "")),
        params=params,
        overrides=tuple(sorted((env, _params(o, params)) for env, o in a.get("overrides", {}).items())),
        expr=a.get("expr", ""), step_id=a.get("step_id", ""))
