"""End to end on the real stack: Pushgateway -> Prometheus -> Alertmanager -> the local PagerDuty/Slack sink.

dev of the reference spec is applied with `obsgen apply` (fast timing: 1 s evaluation and group_wait,
`for: 0s`; see tests/localstack.py). Runs are published with `obsgen emit` or the emit library, the
way the selftest runner's reports would be. Every wait is bounded; nothing asserts on timing.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from localstack import OTHER_TEAM_PATH, PAGERDUTY_PATH, LocalStack, slack_path

from obsgen.compile import conventions as c
from obsgen.run import emit
from obsgen.model import Model
from obsgen.spec import load_spec

WAIT = 60.0
REPORTS = ROOT / "tests" / "reports"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("e2e")
    with LocalStack(directory) as local, local.environment():  # OBSGEN_STATE_DIR inside `directory`
        from obsgen.cli import main

        assert main(["apply", "--env", "dev", "--yes"]) == 0
        local.model = load_spec(str(local.spec))
        yield local


@pytest.fixture
def stack(live: LocalStack):
    """A passing run is the baseline; after each test the stack is back to no alerts and an empty sink."""
    publish(live)
    wait_until_no_alerts(live)
    live.sink.clear()
    yield live
    publish(live)
    wait_until_no_alerts(live)
    wait_for_resolve_notifications(live)


def wait_for_resolve_notifications(live: LocalStack) -> None:
    """Every page and message sent about a step must be followed by its resolve notification before the
    next test: Alertmanager remembers what it last sent per group (its notification log) and does not
    send the same firing alerts again within repeat_interval unless it sent their resolution."""
    def settled() -> bool:
        records = live.sink.received()
        for i, record in enumerate(records):
            body, later = record.body, records[i + 1:]
            if record.path == PAGERDUTY_PATH and body["event_action"] == "trigger" \
                    and body["payload"]["custom_details"]["step_id"] != "all":
                if not any(r.body.get("event_action") == "resolve" and r.body.get("dedup_key") == body["dedup_key"]
                           for r in later if r.path == PAGERDUTY_PATH):
                    return False
            elif record.path.startswith("/slack") and body["attachments"][0]["title"].startswith("[FIRING"):
                name = body["attachments"][0]["title"].split("] ", 1)[1]
                if "SLOBurnRate" not in name and not any(
                        r.path == record.path and r.body["attachments"][0]["title"] == f"[RESOLVED] {name}"
                        for r in later):
                    return False
        return True

    live.stack.wait_until(settled, WAIT, "a resolve notification for every notification sent")


def emit_report(run_cli, live: LocalStack, name: str, tmp_path: Path):
    """`obsgen emit` of a report from tests/reports, dated now (an old run would be 'not reporting'), to the
    microsecond: the baseline run `publish` pushed a moment ago is dated `now` too, and a report older than
    the last run counted is a late one, not counted."""
    data = json.loads((REPORTS / name).read_text())
    data["metadata"]["timestamp"] = datetime.now(timezone.utc).isoformat()
    fresh = tmp_path / name
    fresh.write_text(json.dumps(data))
    return run_cli("emit", "--env", "dev", "--report", str(fresh), "--pushgateway", live.stack.pushgateway_url)


def publish(live: LocalStack, **failing: int) -> None:
    """A run where the first N steps of each named tier fail (as the runner's report would say)."""
    model = live.model
    bad = {s.id for tier, n in failing.items() for s in model.steps_of(tier)[:n]}
    steps = tuple(emit.StepResult(s.id, s.tier, "FAIL" if s.id in bad else "PASS", 1.0) for s in model.steps)
    report = emit.Report("test run", steps, 10.0, None, "strict")
    emit.emit_to_pushgateway(model, "dev", report, live.stack.pushgateway_url)


def am_alerts(live: LocalStack, **labels: str) -> list[dict[str, Any]]:
    return [a for a in live.stack.alerts() if all(a["labels"].get(k) == v for k, v in labels.items())]


def step_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alerts about steps and runs; SLO burn-rate alerts follow from the failed runs these tests
    publish (few runs, so one failure burns the budget fast) and are proved by the rule tests."""
    return [a for a in alerts if "slo" not in a["labels"]]


def wait_until_no_alerts(live: LocalStack) -> None:
    live.stack.wait_until(lambda: not step_alerts(live.stack.alerts())
                          and not step_alerts(live.stack.prometheus_alerts()), WAIT, "every step alert resolved")


def dashboard(model: Model, step_id: str = "") -> str:
    """README "Labels on generated alerts": dev's Grafana url, /d/<uid> of the spec's first dashboard, and
    the step preselected for an alert about one step."""
    env = model.environment("dev")
    url = f"{env.backend('grafana').url.rstrip('/')}/d/{c.dashboard_uid(model, env, model.dashboards[0].id)}"
    return f"{url}?var-step={step_id}" if step_id else url


def pagerduty(live: LocalStack, action: str, **details: str) -> list[Any]:
    return [r.body for r in live.sink.received(PAGERDUTY_PATH) if r.body.get("event_action") == action
            and all(r.body["payload"]["custom_details"].get(k) == v for k, v in details.items())]


def test_a_kernel_failure_pages_once_with_the_details_and_resolving_sends_the_resolve(run_cli, stack,
                                                                                    tmp_path: Path) -> None:
    result = emit_report(run_cli, stack, "kernel-failed.json", tmp_path)
    assert result.out.startswith("obsgen emit: dev run fail (10 steps; 1 kernel failure above dev's tolerance of 0; "
                                 "failing: core-checks) -> Pushgateway")
    trigger = stack.sink.wait_for(lambda r: r.body["event_action"] == "trigger" and
                                  r.body["payload"]["custom_details"]["step_id"] == "core-checks",
                                  WAIT, path_prefix=PAGERDUTY_PATH)[0]
    body = trigger.body
    details = body["payload"]["custom_details"]
    assert {k: details[k] for k in ("step_id", "tier", "env", "message", "remediation", "runbook_url")} == {
        "step_id": "core-checks", "tier": "kernel", "env": "dev",
        "message": "KERNEL step core-checks failed in dev",
        "remediation": "Run `make selftest-doctor`, fix the lint, format or test failure it names, then "
                       "`make kernel-smoke`.",
        "runbook_url": "https://docs.example.com/selftest/SELFTEST_ENVIRONMENT_OPERATIONS.md"
                       "#scenario-4-core-checks-fails-kernel"}
    assert body["payload"]["severity"] == "critical"
    assert details["dashboard_url"] == dashboard(stack.model, "core-checks")
    assert body["links"] == [{"href": details["runbook_url"], "text": "Runbook"},
                             {"href": dashboard(stack.model, "core-checks"), "text": "Dashboard"}]
    assert body["routing_key"] == "local-stack-routing-key-0123456789abcdef"  # read from the key file

    assert emit_report(run_cli, stack, "passing.json", tmp_path).code == 0
    resolve = stack.sink.wait_for(lambda r: r.body["event_action"] == "resolve" and
                                  r.body["dedup_key"] == body["dedup_key"], WAIT, path_prefix=PAGERDUTY_PATH)
    assert len(resolve) == 1
    assert len(pagerduty(stack, "trigger", step_id="core-checks")) == 1  # exactly one page, before its resolve
    assert [r for r in stack.sink.received("/slack") if "SLOBurnRate" not in r.body["attachments"][0]["title"]] == []


def test_governance_at_the_tolerance_sends_nothing_and_one_above_reaches_slack(stack) -> None:
    tolerance = stack.model.environment("dev").policy.tolerance_for("governance")
    assert tolerance == 3
    publish(stack, governance=tolerance)
    count = 'count(max by (step_id) (selftest_step_failed{env="dev",tier="governance"}) > 0)'
    stack.stack.wait_until(lambda: [s for s in stack.stack.query(count) if s["value"][1] == "3"], WAIT,
                           "3 failing governance steps visible in Prometheus")
    seen = time.time()

    def evaluated_since() -> bool:  # the alert rules have been evaluated on the 3 failures
        group = next(g for g in stack.stack.rule_groups() if g["name"] == "selftest-alerts")
        return group["lastEvaluation"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seen + 1))

    stack.stack.wait_until(evaluated_since, WAIT, "an evaluation of the alert rules after the push")
    assert [a for a in stack.stack.prometheus_alerts() if a["labels"].get("tier") == "governance"] == []
    assert am_alerts(stack, tier="governance") == []

    publish(stack, governance=tolerance + 1)
    title = "SelftestGovernanceFailuresAboveTolerance (dev)"  # SLO tickets share the channel
    message = stack.sink.wait_for(lambda r: r.body["attachments"][0]["title"].startswith("[FIRING")
                                  and r.body["attachments"][0]["title"].endswith(title), WAIT,
                                  path_prefix=slack_path("slack-tickets"))[0].body
    assert message["channel"] == "#selftest-dev"
    assert "SelftestGovernanceFailuresAboveTolerance (dev)" in message["attachments"][0]["title"]
    assert "Remediation:" in message["attachments"][0]["text"]
    assert "Runbook: https://docs.example.com/" in message["attachments"][0]["text"]
    assert f"Dashboard: {dashboard(stack.model, 'skills-governance')}\n" in message["attachments"][0]["text"]
    assert pagerduty(stack, "trigger", tier="governance") == []  # dev does not page for governance


def test_kernel_and_governance_failing_together_inhibit_the_governance_notification(stack) -> None:
    publish(stack, kernel=1, governance=4)
    stack.sink.wait_for(lambda r: r.body["payload"]["custom_details"]["step_id"] == "core-checks", WAIT,
                        path_prefix=PAGERDUTY_PATH)

    def governance_suppressed() -> list[dict[str, Any]]:
        alerts = am_alerts(stack, tier="governance", alertname="SelftestGovernanceFailuresAboveTolerance")
        return alerts if len(alerts) == 4 and all(a["status"]["state"] == "suppressed" and
                                                  a["status"]["inhibitedBy"] for a in alerts) else []

    stack.stack.wait_until(governance_suppressed, WAIT, "the governance alerts inhibited by the kernel alert")
    publish(stack, kernel=1)  # governance recovers first, so it is never un-inhibited while firing
    stack.stack.wait_until(lambda: not am_alerts(stack, tier="governance"), WAIT, "governance alerts resolved")
    assert [r for r in stack.sink.received("/slack") if "Governance" in r.body["attachments"][0]["title"]] == []


# Fire drills run on a quiet stack of their own (tests/test_drill.py): here, the failed runs of the
# tests above fire SLO burn-rate alerts through the same receivers, and a drill does not claim a
# delivery it cannot tell apart from theirs.


def test_the_other_teams_part_of_the_shared_alertmanager_still_works_beside_obsgens(stack) -> None:
    """The stack's Alertmanager started with another team's config (tests/localstack.py); obsgen's apply
    added its own subtree. The billing team's route, receiver, inhibit rule, time interval and comments
    are still in the file, and its alert still reaches its receiver, not one of obsgen's."""
    import yaml

    text = stack.stack.alertmanager_config_file.read_text()
    assert "# billing: owned by the billing team" in text
    config = yaml.safe_load(text)
    assert config["route"]["receiver"] == "platform-blackhole"
    assert [r["receiver"] for r in config["route"]["routes"]] == ["selftest/dev/slack-info", "billing-oncall"]
    assert [t["name"] for t in config["time_intervals"]] == ["billing-maintenance"]
    assert config["inhibit_rules"][0]["source_matchers"] == ['service="billing"', 'alertname="BillingDown"']
    labels = {"alertname": "BillingDown", "service": "billing", "env": "dev", "tier": "kernel",
              "severity": "critical"}
    assert stack.stack.post_alerts([{"labels": labels}]) == 200
    try:
        [record, *_] = stack.sink.wait_for(lambda r: any(a["labels"]["alertname"] == "BillingDown"
                                                         for a in r.body["alerts"]), WAIT, path_prefix=OTHER_TEAM_PATH)
        assert record.body["receiver"] == "billing-oncall"
        others = [r for r in stack.sink.received() if not r.path.startswith(OTHER_TEAM_PATH)]
        assert [r.path for r in others if "BillingDown" in json.dumps(r.body)] == []  # none of obsgen's receivers
    finally:  # resolved now, so the next test starts with no alert
        ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        assert stack.stack.post_alerts([{"labels": labels, "endsAt": ended}]) == 200


def test_a_freshly_applied_environment_that_never_reported_sends_nothing_to_pagerduty(tmp_path: Path) -> None:
    """A new stack, dev applied, no run ever published: the informational notice reaches the info channel
    (so the rules were evaluated and Alertmanager notified), and nothing was or is about to be paged."""
    with LocalStack(tmp_path) as fresh, fresh.environment():
        from obsgen.cli import main

        assert main(["apply", "--env", "dev", "--yes"]) == 0
        model = load_spec(str(fresh.spec))
        notice = fresh.sink.wait_for(lambda r: r.body["attachments"][0]["title"].startswith("[FIRING")
                                     and "SelftestNotReportingNoData (dev)" in r.body["attachments"][0]["title"],
                                     WAIT, path_prefix=slack_path("slack-info"))[0].body
        text = notice["attachments"][0]["text"]
        assert "Selftest in dev has not reported any run yet" in text
        assert f"Dashboard: {dashboard(model)}\n" in text
        held = fresh.stack.alerts()
        assert [a["labels"]["alertname"] for a in held] == ["SelftestNotReportingNoData"]
        assert [r["name"] for r in held[0]["receivers"]] == ["selftest/dev/slack-info"]
        assert all("page" not in a["labels"] and a["labels"]["severity"] != "critical"
                   for a in fresh.stack.prometheus_alerts())
        assert fresh.sink.received(PAGERDUTY_PATH) == []

        # A kernel fire drill now is no first run: it pages as a drill, and the notice neither resolves nor
        # is inhibited by the drill's kernel alert.
        assert main(["drill", "--env", "dev", "--tier", "kernel", "-q"]) == 0
        held = fresh.stack.alerts()
        assert [(a["labels"]["alertname"], a["status"]["state"]) for a in held] == [
            ("SelftestNotReportingNoData", "active")]
        assert [r for r in fresh.sink.received(slack_path("slack-info"))
                if r.body["attachments"][0]["title"].startswith("[RESOLVED")] == []
        pages = [r.body for r in fresh.sink.received(PAGERDUTY_PATH) if r.body["event_action"] == "trigger"]
        assert pages and all(p["payload"]["summary"].startswith("[DRILL] SelftestKernelStepFailed (dev): ")
                             and p["payload"]["custom_details"]["drill"] == "true" for p in pages)
