"""A local stand-in for the dev environment: real Prometheus, Alertmanager and Pushgateway on loopback,
a local HTTP sink standing in for PagerDuty and Slack, and the Grafana test double.

`local_spec` derives a spec from the reference one whose dev channels point at the sink (the
PagerDuty routing key and Slack webhook URLs live in files, as in production); with `fast=True`
rules are evaluated every second, Alertmanager waits one second before notifying, and every alert's
`for` is 0s, so a failure reaches the sink in seconds instead of minutes. Everything else -- rules,
routes, inhibition, receivers' payloads -- is exactly what the reference spec generates.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import yaml
from doubles.grafana import GrafanaDouble
from stack import Sink, Stack

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SPEC = ROOT / "specs" / "selftest.yaml"
GRAFANA_TOKEN = "glsa_local_stack_token_0123456789"
ROUTING_KEY = "local-stack-routing-key-0123456789abcdef"
PAGERDUTY_PATH = "/v2/enqueue"


OTHER_TEAM_PATH = "/other-team/billing"


def shared_alertmanager_config(sink_url: str) -> str:
    """The Alertmanager config the stack starts with: another team's, as obsgen meets a shared one.

    A root that catches nothing useful, a route and a receiver of another service (`billing`, notifying
    the sink at OTHER_TEAM_PATH), one of its inhibit rules, a time interval and comments; obsgen's
    `apply` adds its subtree and must leave every one of these as it is."""
    return f"""# Shared Alertmanager of the platform team: every service adds its own route.
global:
  resolve_timeout: 5m
route:
  receiver: platform-blackhole
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    # billing: owned by the billing team
    - receiver: billing-oncall
      matchers: ['service="billing"']
      mute_time_intervals: [billing-maintenance]
receivers:
  - name: platform-blackhole
  - name: billing-oncall
    webhook_configs:
      - url: {sink_url}{OTHER_TEAM_PATH}
        send_resolved: true
inhibit_rules:
  - source_matchers: ['service="billing"', 'alertname="BillingDown"']
    target_matchers: ['service="billing"', 'severity="warning"']
    equal: [env]
time_intervals:
  - name: billing-maintenance
    time_intervals:
      - weekdays: ['sunday']
        times: [{{start_time: '03:00', end_time: '03:05'}}]
"""


def slack_path(channel: str) -> str:
    return f"/slack/{channel}"


def local_spec(directory: Path, sink_url: str, *, fast: bool = True, source: Path = REFERENCE_SPEC) -> Path:
    """A copy of the spec whose dev environment notifies the sink; returns its path."""
    data = yaml.safe_load(source.read_text())
    secrets = directory / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "pagerduty-routing-key").write_text(ROUTING_KEY + "\n")
    dev = next(e for e in data["environments"] if e["name"] == "dev")
    types = {c["id"]: c["type"] for c in data["channels"]}
    for channel, target in dev["channels"].items():
        if types[channel] == "pagerduty":
            target.update(routing_key_file=str(secrets / "pagerduty-routing-key"), url=sink_url + PAGERDUTY_PATH)
        else:
            url_file = secrets / f"{channel}-webhook-url"
            url_file.write_text(sink_url + slack_path(channel) + "\n")
            target["api_url_file"] = str(url_file)
    for slo in data.get("slos", []):  # a team that asked its SLOs to page: the SLO page route is live too
        slo.setdefault("page", True)
    for environment in data["environments"]:  # the local stack is not a cluster: `diff` never asks kubectl
        environment.pop("kubernetes", None)
    if fast:
        data["timing"] = {"evaluation_interval": "1s", "group_wait": "1s", "group_interval": "1s",
                          "repeat_interval": "1h"}
        for alert in data["alerts"]:
            alert["for"] = "0s"
            for override in (alert.get("overrides") or {}).values():
                override.pop("for", None)
    path = directory / "selftest.yaml"
    header = (f"# Derived from {source.name}: dev notifies a local sink, its SLOs page, no Kubernetes output"
              + ("; fast timing (1s evaluation, 1s group_wait, for: 0s)" if fast else "") + ".\n")
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


class LocalStack:
    """Sink + Stack + Grafana double, and the OBSGEN_* variables that point obsgen at them."""

    def __init__(self, directory: Path, *, fast: bool = True) -> None:
        self.directory = directory
        self.fast = fast

    def __enter__(self) -> "LocalStack":
        self._exit = contextlib.ExitStack()
        self.sink = self._exit.enter_context(Sink())
        self.stack = self._exit.enter_context(Stack(sink=self.sink,
                                                    alertmanager_config=shared_alertmanager_config(self.sink.url)))
        self.grafana = self._exit.enter_context(GrafanaDouble(token=GRAFANA_TOKEN))
        self.spec = local_spec(self.directory, self.sink.url, fast=self.fast)
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    @property
    def environ(self) -> dict[str, str]:
        return {
            "OBSGEN_SPEC": str(self.spec),
            "OBSGEN_DEV_GRAFANA_TOKEN": GRAFANA_TOKEN,
            "OBSGEN_GRAFANA_URL": self.grafana.url,
            "OBSGEN_PROMETHEUS_URL": self.stack.prometheus_url,
            "OBSGEN_PROMETHEUS_RULES_DIR": str(self.stack.rules_dir),
            "OBSGEN_ALERTMANAGER_URL": self.stack.alertmanager_url,
            "OBSGEN_ALERTMANAGER_CONFIG_FILE": str(self.stack.alertmanager_config_file),
            "OBSGEN_PUSHGATEWAY_URL": self.stack.pushgateway_url,
            "OBSGEN_STATE_DIR": str(self.directory / "state"),
        }

    def environment(self) -> contextlib.AbstractContextManager[None]:
        return environ(self.environ)


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a `with` block, then put back what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def fresh_dev_backends(stack: Stack, monkeypatch, state: Path, token: str) -> Iterator[GrafanaDouble]:
    """dev's backends as if nothing had ever been applied to them, for one test: the stack's Prometheus (its
    rules directory emptied) and Alertmanager (its first config), and a new Grafana double; obsgen pointed at
    all three (and at `state` for its ledger) through the OBSGEN_* variables, set on `monkeypatch`."""
    for rules in stack.rules_dir.iterdir():
        rules.unlink()
    stack.reload_prometheus()
    stack.write_alertmanager_config(stack.initial_alertmanager_config)
    assert stack.reload_alertmanager() == 200
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", token)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(state))
    with GrafanaDouble(token=token) as grafana:
        monkeypatch.setenv("OBSGEN_GRAFANA_URL", grafana.url)
        monkeypatch.setenv("OBSGEN_PROMETHEUS_URL", stack.prometheus_url)
        monkeypatch.setenv("OBSGEN_PROMETHEUS_RULES_DIR", str(stack.rules_dir))
        monkeypatch.setenv("OBSGEN_ALERTMANAGER_URL", stack.alertmanager_url)
        monkeypatch.setenv("OBSGEN_ALERTMANAGER_CONFIG_FILE", str(stack.alertmanager_config_file))
        yield grafana
