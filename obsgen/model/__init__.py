"""The frozen model every compile target reads, and its vocabulary: durations, names (ids and titles),
placeholders (the `{env}` kind), slo_windows (the SLO window math), artifact (a compiled file).

The spec loader (`obsgen.spec`) maps a validated spec document onto these
classes; nothing downstream ever sees the raw document. All collections are
tuples so a model can be hashed, shared and never mutated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction


@dataclass(frozen=True)
class Service:
    name: str
    owner: str
    runbook_base_url: str

    def runbook_url(self, anchor: str) -> str:
        return f"{self.runbook_base_url}#{anchor}" if anchor else self.runbook_base_url


@dataclass(frozen=True)
class Metrics:
    env_label: str
    step_failed: str
    run_duration: str  # gauge per run: the run's duration (obsgen emit)
    last_run_timestamp: str
    run_timestamp: str = "selftest_run_timestamp_seconds"  # gauge per run: the run's time, labelled by run
    step_failures_total: str = "selftest_step_failures_total"  # counter: runs in which the step failed
    recent_runs: str = "selftest_recent_run_timestamp_seconds"  # gauge: the last runs counted (obsgen emit)
    step_last_failure: str = "selftest_step_last_failure_timestamp_seconds"  # gauge: the step's last failed run
    step_last_pass: str = "selftest_step_last_pass_timestamp_seconds"  # gauge: the step's last passing run


@dataclass(frozen=True)
class Tier:
    id: str  # lower case label value: kernel, governance, optional
    severity: str  # critical | warning | info
    channel: str  # channel id
    runbook: str  # anchor
    description: str


@dataclass(frozen=True)
class Step:
    id: str
    tier: str
    category: str
    description: str
    runbook: str
    remediation: str


@dataclass(frozen=True)
class Channel:
    id: str
    type: str  # pagerduty | slack
    description: str


@dataclass(frozen=True)
class ChannelTarget:
    """Where one channel points in one environment. Secrets only as *_file paths."""

    channel: str
    routing_key_file: str = ""  # pagerduty
    url: str = ""  # pagerduty events API URL override
    api_url_file: str = ""  # slack
    slack_channel: str = ""  # slack channel name, e.g. "#selftest-dev"


@dataclass(frozen=True)
class Backend:
    """One backend endpoint of an environment; credentials by reference only."""

    kind: str  # grafana | prometheus | alertmanager
    mode: str  # grafana | prometheus | mimir | alertmanager
    url: str
    token_env: str = ""
    token_file: str = ""
    tenant: str = ""
    folder: str = ""
    rules_dir: str = ""
    config_file: str = ""
    api_path: str = ""  # mimir: the ruler or Alertmanager config API path, when not the default
    owns: str = "subtree"  # alertmanager: "subtree" (obsgen's route, receivers, inhibit rules) or "whole"
    route_position: str = "first"  # alertmanager, subtree: obsgen's route first or last under the root
    route_continue: bool = False  # alertmanager, subtree: later sibling routes also see obsgen's alerts


@dataclass(frozen=True)
class Policy:
    tolerance: tuple[tuple[str, int], ...]  # (tier id, failures tolerated) pairs
    page_on_any_failure: bool

    def tolerance_for(self, tier: str) -> int:
        return dict(self.tolerance).get(tier, 0)


@dataclass(frozen=True)
class Cadence:
    """How often the selftest runs in an environment: a batch job, minutes to days apart.

    `regular`: it runs on a schedule, about every `interval`. Otherwise it runs irregularly (per pull
    request, per deploy) but never further apart than `interval`. Either way `interval` is the longest
    gap between two runs that is still normal, which SLO windows and liveness are fitted to."""

    interval: str = "1h"
    regular: bool = True

    @property
    def seconds(self) -> float:
        from obsgen.model import durations

        return durations.seconds(self.interval)

    def describe(self) -> str:
        return f"every {self.interval}" if self.regular else f"irregularly, at least every {self.interval}"


# The labels obsgen sets on every Kubernetes resource it generates, besides the spec's: ownership is by these
# (a spec may not set them itself).
K8S_MANAGED_BY, K8S_PART_OF, K8S_ENVIRONMENT = "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", \
    "obsgen.io/environment"


def k8s_name(service: str, stem: str) -> str:
    """A generated resource's name: the stem, prefixed with the service unless it already names it, so two
    services' resources never share a name in one namespace."""
    return stem if stem == service or stem.startswith(f"{service}-") else f"{service}-{stem}"


@dataclass(frozen=True)
class Kubernetes:
    """Where an environment's Kubernetes resources go (Prometheus Operator, Grafana sidecar). Credentials
    only as references: the Secret's name and its keys, never a value."""

    namespace: str
    secret: str
    labels: tuple[tuple[str, str], ...] = ()  # added to every resource (the Operator's selectors match them)
    secret_keys: tuple[tuple[str, str], ...] = ()  # (channel id, key in the Secret); default key: the channel id

    def secret_key(self, channel: str) -> str:
        return dict(self.secret_keys).get(channel, channel)


@dataclass(frozen=True)
class Environment:
    name: str
    description: str
    policy: Policy
    channels: tuple[ChannelTarget, ...]
    backends: tuple[Backend, ...]
    cadence: Cadence = Cadence()
    kubernetes: Kubernetes | None = None  # None: no Kubernetes output for this environment

    def target(self, channel: str) -> ChannelTarget:
        for t in self.channels:
            if t.channel == channel:
                return t
        raise KeyError(channel)

    def backend(self, kind: str) -> Backend | None:
        for b in self.backends:
            if b.kind == kind:
                return b
        return None

    @property
    def alertmanager_placement(self) -> tuple[str, bool]:
        """(position, continue) of obsgen's route under a shared Alertmanager's root."""
        am = self.backend("alertmanager")
        return (am.route_position, am.route_continue) if am else ("first", False)


@dataclass(frozen=True)
class SLI:
    kind: str  # pass_rate | latency | ratio
    threshold_seconds: float = 0.0  # latency
    error_query: str = ""  # ratio: PromQL with {{window}} and {{env}} placeholders
    total_query: str = ""
    counts: str = "runs"  # runs | events: what the SLI counts (pass_rate, latency: runs; ratio: events by default)

    @property
    def run_based(self) -> bool:
        """The SLI counts the selftest's runs: burn windows are fitted to the cadence and a budget must hold
        at least two runs. An event-based SLI (requests) uses the workbook's windows as they are."""
        return self.counts == "runs"


@dataclass(frozen=True)
class SLO:
    id: str
    description: str
    objective: Fraction  # e.g. Fraction(19, 20) for 0.95
    period: str  # e.g. "28d"
    sli: SLI
    remediation: str
    runbook: str
    page: bool = True  # a burn-rate page besides the ticket (default: only for an SLI on events)


@dataclass(frozen=True)
class Timing:
    """Rule evaluation and notification batching; the defaults suit most teams."""

    evaluation_interval: str = "1m"  # every generated rule group except the period-long SLO ratio
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"


@dataclass(frozen=True)
class SLOAlerting:
    page_channel: str
    ticket_channel: str


@dataclass(frozen=True)
class AlertParams:
    """The parameters of an alert that an environment may override."""

    for_: str
    stale_after: str = ""  # not_reporting, no_passing_run
    threshold_seconds: float = 0.0  # slow_runs
    quantile: float = 0.0  # slow_runs
    window: str = ""  # slow_runs
    enabled: bool = True


@dataclass(frozen=True)
class Alert:
    name: str
    kind: str  # step_failed | not_reporting | no_passing_run | slow_runs | custom
    tier: str
    summary: str
    remediation: str
    runbook: str
    params: AlertParams
    overrides: tuple[tuple[str, AlertParams], ...] = ()  # (env name, params)
    expr: str = ""  # custom: PromQL with an optional {{env}} placeholder
    step_id: str = ""  # custom: the step this alert is about, if any

    def params_for(self, env: str) -> AlertParams:
        return dict(self.overrides).get(env, self.params)


@dataclass(frozen=True)
class Dashboard:
    id: str
    title: str
    tags: tuple[str, ...]
    panels: tuple[str, ...]  # panel kinds, in order


@dataclass(frozen=True)
class Model:
    api_version: str
    service: Service
    metrics: Metrics
    tiers: tuple[Tier, ...]
    steps: tuple[Step, ...]
    channels: tuple[Channel, ...]
    environments: tuple[Environment, ...]
    slos: tuple[SLO, ...]
    slo_alerting: SLOAlerting
    alerts: tuple[Alert, ...]
    dashboards: tuple[Dashboard, ...]
    timing: Timing = Timing()
    digest: str = field(default="", compare=False)  # sha256 of the spec file's bytes
    source: str = field(default="spec", compare=False)  # the spec's file name, for headers

    def tier(self, tier_id: str) -> Tier:
        for t in self.tiers:
            if t.id == tier_id:
                return t
        raise KeyError(tier_id)

    def channel(self, channel_id: str) -> Channel:
        for c in self.channels:
            if c.id == channel_id:
                return c
        raise KeyError(channel_id)

    def environment(self, name: str) -> Environment:
        for e in self.environments:
            if e.name == name:
                return e
        raise KeyError(name)

    def steps_of(self, tier_id: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.tier == tier_id)
