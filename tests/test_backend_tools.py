"""The generated rules and routing pass the real promtool and amtool (Debian's Prometheus 2.42,
Alertmanager 0.25), for the reference spec (generated/) and the test specs' goldens."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GENERATED, ROOT, require_tool, run_tool

TREES = {"reference": GENERATED, "minimal": ROOT / "tests/goldens/minimal", "large": ROOT / "tests/goldens/large"}


def _files(pattern: str) -> list[Path]:
    return sorted(p for tree in TREES.values() for p in tree.glob(pattern))


@pytest.mark.parametrize("rules", _files("*/prometheus/*.rules.yaml"), ids=lambda p: str(p.relative_to(ROOT)))
def test_promtool_accepts_every_rule_file(rules: Path) -> None:
    proc = run_tool(require_tool("promtool"), "check", "rules", str(rules))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


CONFIGS = _files("*/alertmanager/alertmanager.yaml") + _files("*/tests/shared-alertmanager.yaml")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_amtool_accepts_every_alertmanager_config(config: Path) -> None:
    """The standalone configs and the routing tests' shared ones (obsgen's subtree in other teams' config)."""
    proc = run_tool(require_tool("amtool"), "check-config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


ROUTES = [
    # (labels besides service and env, the receivers amtool must name: `<service>/<env>/<channel>`)
    (["tier=kernel", "severity=critical"], "selftest/{env}/pagerduty-oncall"),
    (["tier=governance", "severity=warning"], "selftest/{env}/slack-tickets"),
    (["tier=optional", "severity=info"], "selftest/{env}/slack-info"),
    # the reference SLOs count runs and do not page: no SLO page route, so the root's receiver
    (["slo_alert=page", "severity=critical", "slo=pass-rate"], "selftest/{env}/slack-info"),
    (["slo_alert=ticket", "severity=warning", "slo=pass-rate"], "selftest/{env}/slack-tickets"),
    (["alertname=Unknown"], "selftest/{env}/slack-info"),
]


@pytest.mark.parametrize("config", ["alertmanager/alertmanager.yaml", "tests/shared-alertmanager.yaml"])
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
@pytest.mark.parametrize("labels,receivers", ROUTES, ids=lambda v: ",".join(v) if isinstance(v, list) else v)
def test_amtool_routes_each_alert_class_to_its_receiver(config: str, env: str, labels: list[str],
                                                        receivers: str) -> None:
    receivers = receivers.format(env=env)
    proc = run_tool(require_tool("amtool"), "config", "routes", "test", f"--config.file={GENERATED / env / config}",
                    f"--verify.receivers={receivers}", "service=selftest", f"env={env}", *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receivers


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
@pytest.mark.parametrize("config,root", [("alertmanager/alertmanager.yaml", "selftest/{env}/slack-info"),
                                         ("tests/shared-alertmanager.yaml", "platform-default")])
def test_amtool_sends_an_alert_of_no_route_to_the_root_receiver(env: str, config: str, root: str) -> None:
    """Standalone: obsgen's minimal root (the least severe tier's channel); shared: the other teams' root."""
    proc = run_tool(require_tool("amtool"), "config", "routes", "test", f"--config.file={GENERATED / env / config}",
                    "tier=kernel", "severity=critical", "service=selftest", "env=elsewhere")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == root.format(env=env)


@pytest.mark.parametrize("env,receivers", [("dev", "selftest/dev/slack-tickets"),
                                           ("staging", "selftest/staging/slack-tickets"),
                                           ("prod", "selftest/prod/pagerduty-oncall,selftest/prod/slack-tickets")])
def test_only_prod_also_pages_for_governance_failures(env: str, receivers: str) -> None:
    """Prod treats any failure as an incident: its governance alerts carry page=oncall."""
    rules = (GENERATED / env / "prometheus/selftest.rules.yaml").read_text()
    labels = ["service=selftest", f"env={env}", "tier=governance", "severity=warning"] + (
        ["page=oncall"] if "page: oncall" in rules else [])
    proc = run_tool(require_tool("amtool"), "config", "routes", "test",
                    f"--config.file={GENERATED / env / 'alertmanager/alertmanager.yaml'}", *labels)
    assert proc.stdout.strip() == receivers
