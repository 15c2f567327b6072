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


@pytest.mark.parametrize("config", _files("*/alertmanager/alertmanager.yaml"), ids=lambda p: str(p.relative_to(ROOT)))
def test_amtool_accepts_every_alertmanager_config(config: Path) -> None:
    proc = run_tool(require_tool("amtool"), "check-config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


ROUTES = [
    # (labels, the receivers amtool must name)
    (["tier=kernel", "severity=critical"], "pagerduty-oncall"),
    (["tier=governance", "severity=warning"], "slack-tickets"),
    (["tier=optional", "severity=info"], "slack-info"),
    (["slo_alert=page", "severity=critical", "slo=pass-rate"], "pagerduty-oncall"),
    (["slo_alert=ticket", "severity=warning", "slo=pass-rate"], "slack-tickets"),
    (["alertname=Unknown"], "slack-info"),
]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
@pytest.mark.parametrize("labels,receivers", ROUTES, ids=lambda v: ",".join(v) if isinstance(v, list) else v)
def test_amtool_routes_each_alert_class_to_its_receiver(env: str, labels: list[str], receivers: str) -> None:
    config = GENERATED / env / "alertmanager/alertmanager.yaml"
    proc = run_tool(require_tool("amtool"), "config", "routes", "test", f"--config.file={config}",
                    f"--verify.receivers={receivers}", *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receivers


@pytest.mark.parametrize("env,receivers", [("dev", "slack-tickets"), ("staging", "slack-tickets"),
                                           ("prod", "pagerduty-oncall,slack-tickets")])
def test_only_prod_also_pages_for_governance_failures(env: str, receivers: str) -> None:
    """Prod treats any failure as an incident: its governance alerts carry page=oncall."""
    rules = (GENERATED / env / "prometheus/selftest.rules.yaml").read_text()
    labels = ["tier=governance", "severity=warning"] + (["page=oncall"] if "page: oncall" in rules else [])
    proc = run_tool(require_tool("amtool"), "config", "routes", "test",
                    f"--config.file={GENERATED / env / 'alertmanager/alertmanager.yaml'}", *labels)
    assert proc.stdout.strip() == receivers
