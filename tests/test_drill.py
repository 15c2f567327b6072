"""`obsgen drill`: what it confirms and what it says it could not.

On a quiet real stack of its own (tests/localstack.py: Pushgateway -> Prometheus -> Alertmanager 0.25 -> a
local sink standing in for PagerDuty and Slack; dev applied with 1-second timing). Its own stack, not the
end-to-end module's: there, failed runs of earlier tests fire SLO burn-rate alerts that come and go through
the same PagerDuty and Slack receivers, and another alert group moving during a drill is exactly what
makes the drill refuse to claim delivery (Alertmanager counts notifications per integration, not per alert).

Mimir's Alertmanager API is not in the Mimir double (its contract covers the config API only), so the
Mimir drill runs against a minimal stand-in for the two tenant endpoints it reads, written from the
Alertmanager v2 API (GettableAlerts, AlertGroups) under Mimir's default /alertmanager prefix.
Every wait is bounded; nothing asserts on timing.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from doubles.server import LoopbackServer
from localstack import PAGERDUTY_PATH, LocalStack, local_spec, slack_path

from obsgen.run import drill, emit
from obsgen.spec import load_spec

WAIT = 60.0
KERNEL_ROUTED = ("  confirmed: SelftestKernelStepFailed for core-checks is in Alertmanager, active (not silenced or "
                 "inhibited), routed to selftest/dev/pagerduty-oncall as the spec intends")


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory):
    """dev applied, a passing run published, and nothing firing or waiting to be sent."""
    with LocalStack(tmp_path_factory.mktemp("drill")) as local, local.environment():
        from obsgen.cli import main

        assert main(["apply", "--env", "dev", "--yes"]) == 0
        local.model = load_spec(str(local.spec))
        passing = tuple(emit.StepResult(s.id, s.tier, "PASS", 1.0) for s in local.model.steps)
        emit.emit_to_pushgateway(local.model, "dev", emit.Report("baseline", passing, 10.0, None, "strict"),
                                 local.stack.pushgateway_url)
        settle(local)
        yield local


@pytest.fixture
def stack(quiet: LocalStack):
    """The quiet stack with an empty sink; afterwards, quiet again."""
    settle(quiet)
    quiet.sink.clear()
    yield quiet
    settle(quiet)


def settle(local: LocalStack) -> None:
    """No alert in Alertmanager, and every page and message sent followed by its resolve, so the next
    drill starts with nothing else moving through the receivers."""
    def settled() -> bool:
        records = local.sink.received()
        for i, record in enumerate(records):
            body, later = record.body, records[i + 1:]
            if record.path == PAGERDUTY_PATH and body.get("event_action") == "trigger" and not any(
                    r.path == PAGERDUTY_PATH and r.body.get("event_action") == "resolve"
                    and r.body.get("dedup_key") == body["dedup_key"] for r in later):
                return False
            if record.path.startswith("/slack") and body["attachments"][0]["title"].startswith("[FIRING"):
                name = body["attachments"][0]["title"].split("] ", 1)[1]
                if not any(r.path == record.path and r.body["attachments"][0]["title"] == f"[RESOLVED] {name}"
                           for r in later):
                    return False
        return not local.stack.alerts()

    local.stack.wait_until(settled, WAIT, "no alert, and a resolve for every notification sent")


def pages(local: LocalStack, action: str, **details: str) -> list[dict[str, Any]]:
    return [r.body for r in local.sink.received(PAGERDUTY_PATH) if r.body.get("event_action") == action
            and all(r.body["payload"]["custom_details"].get(k) == v for k, v in details.items())]


def test_a_kernel_drill_confirms_its_own_page_and_a_governance_drill_its_own_slack_message(run_cli, stack) -> None:
    kernel = run_cli("drill", "--env", "dev", "--tier", "kernel")
    assert kernel.code == 0, kernel.out + kernel.err
    out = kernel.out.splitlines()
    assert out[-1].startswith("drill dev kernel: OK: SelftestKernelStepFailed for core-checks reached "
                              "selftest/dev/pagerduty-oncall after "), out[-1]
    assert KERNEL_ROUTED in out
    assert ("  confirmed: Alertmanager holds its alert group {alertname='SelftestKernelStepFailed', drill='true', "
            "env='dev', step_id='core-checks'} under selftest/dev/pagerduty-oncall") in out
    assert ("  confirmed: 1 pagerduty notification sent after its group formed (none failed), while no other alert "
            "group of receivers using pagerduty appeared, changed or went away: it was the drill's (Alertmanager "
            "counts a notification sent when the service's API accepts it, per integration; a repeat of another, "
            "unchanged group at that very moment would look the same)") in out
    assert not any(line.startswith("  not confirmed:") for line in out)  # one verdict: OK
    page = pages(stack, "trigger", step_id="core-checks", drill="true")  # the page it counted reached "PagerDuty"
    assert page and page[0]["payload"]["summary"].startswith("[DRILL] SelftestKernelStepFailed (dev): ")

    settle(stack)
    governance = run_cli("drill", "--env", "dev", "--tier", "governance")
    assert governance.code == 0, governance.out + governance.err
    assert governance.out.splitlines()[-1].startswith(
        "drill dev governance: OK: SelftestGovernanceFailuresAboveTolerance for skills-governance, agents-governance, "
        "bdd, ac-status reached selftest/dev/slack-tickets after ")
    assert "group of receivers using slack appeared, changed or went away" in governance.out
    stack.sink.wait_for(lambda r: "SelftestGovernanceFailuresAboveTolerance" in r.body["attachments"][0]["title"],
                        WAIT, path_prefix=slack_path("slack-tickets"))


def test_a_silenced_alert_fails_the_drill(run_cli, stack) -> None:
    silence = {"matchers": [{"name": "alertname", "value": "SelftestKernelStepFailed", "isRegex": False}],
               "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60)),
               "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
               "createdBy": "test", "comment": "drill must notice"}
    response = requests.post(f"{stack.stack.alertmanager_url}/api/v2/silences", json=silence, timeout=5)
    response.raise_for_status()
    try:
        result = run_cli("drill", "--env", "dev", "--tier", "kernel")
        assert result.code == 1
        assert result.out.splitlines()[-1] == ("drill dev kernel: FAILED: SelftestKernelStepFailed for core-checks "
                                               "arrived but is silenced")
    finally:
        requests.delete(f"{stack.stack.alertmanager_url}/api/v2/silence/{response.json()['silenceID']}", timeout=5)


OTHER = {"alertname": "OtherTeamPage", "service": "selftest", "env": "dev", "slo": "other", "slo_alert": "page",
         "severity": "critical"}  # reaches selftest/dev/pagerduty-oncall by the SLO page route


def test_another_groups_page_to_the_same_integration_is_not_taken_for_the_drills(run_cli, stack) -> None:
    """The kernel route is muted all week, so the drill's alert is routed and grouped but never sent (Alertmanager
    0.25 shows a muted alert as active). Once the drill's group has formed, another alert reaches the same
    PagerDuty receiver by another route and is paged. A drill reading the per-integration counter alone would
    take that page for its own; this one must not claim delivery."""
    live = stack.stack
    original = live.alertmanager_config_file.read_text()
    config = yaml.safe_load(original)
    ours = next(r for r in config["route"]["routes"] if 'service="selftest"' in r.get("matchers", []))
    kernel = next(r for r in ours["routes"] if r.get("matchers") == ['tier="kernel"'])
    kernel["mute_time_intervals"] = ["drill-test-all-week"]
    config.setdefault("time_intervals", []).append(
        {"name": "drill-test-all-week", "time_intervals": [{"weekdays": ["sunday:saturday"]}]})
    live.write_alertmanager_config(yaml.safe_dump(config, sort_keys=False))
    assert live.reload_alertmanager() == 200
    posted = threading.Event()

    def post_the_other_page_once_the_drill_is_grouped() -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            groups = requests.get(f"{live.alertmanager_url}/api/v2/alerts/groups", timeout=5).json()
            if any(g["receiver"]["name"] == "selftest/dev/pagerduty-oncall" and
                   any(a["labels"].get("step_id") == "core-checks" for a in g["alerts"]) for g in groups):
                live.post_alerts([{"labels": OTHER}])
                posted.set()
                return
            time.sleep(0.2)

    helper = threading.Thread(target=post_the_other_page_once_the_drill_is_grouped, daemon=True)
    helper.start()
    try:
        result = run_cli("drill", "--env", "dev", "--tier", "kernel", "--timeout", str(WAIT))
        helper.join(WAIT)
        assert posted.is_set()
        assert result.code == 1, result.out
        last = result.out.splitlines()[-1]
        assert last.startswith("drill dev kernel: NOT CONFIRMED: SelftestKernelStepFailed reached "
                               "selftest/dev/pagerduty-oncall and 1 pagerduty notification went out after its group "
                               "formed, but other alert groups of receivers using pagerduty moved meanwhile "
                               "(selftest/dev/pagerduty-oncall {alertname='OtherTeamPage'"), last
        assert "Alertmanager counts notifications per integration, not per alert" in last
        assert KERNEL_ROUTED in result.out.splitlines()  # what it did confirm, it says
        stack.sink.wait_for(lambda r: r.body["payload"]["summary"].startswith("OtherTeamPage"), WAIT,
                            path_prefix=PAGERDUTY_PATH)  # the other page did go out...
        assert pages(stack, "trigger", step_id="core-checks") == []  # ...and the drill's never can (muted)
    finally:
        ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        if posted.is_set():
            live.post_alerts([{"labels": OTHER, "endsAt": ended}])
        live.write_alertmanager_config(original)
        assert live.reload_alertmanager() == 200


def test_drill_without_a_pushgateway_says_how_to_give_one(run_cli, quiet, monkeypatch) -> None:
    monkeypatch.delenv("OBSGEN_PUSHGATEWAY_URL")
    result = run_cli("drill", "--env", "dev", "--tier", "kernel")
    assert result.code == 2
    assert result.err == ("obsgen: error: drill needs the Pushgateway Prometheus scrapes: pass --pushgateway URL or "
                          "set OBSGEN_PUSHGATEWAY_URL\n")


# --- Mimir ------------------------------------------------------------------------------------------

class MimirAlertmanagerStandIn:
    """Mimir's tenant Alertmanager API, the two endpoints the drill reads (GET /alertmanager/api/v2/alerts and
    /alertmanager/api/v2/alerts/groups, one tenant, bearer token), and a Pushgateway's push and delete of
    groups. After a push the drill's alert is held, routed to `receiver`; after the delete it is gone."""

    def __init__(self, tenant: str, token: str, receiver: str, labels: dict[str, str]) -> None:
        self.tenant, self.token, self.receiver, self.labels = tenant, token, receiver, labels
        self.firing = False
        self.requests: list[tuple[str, str, str | None, str | None]] = []  # method, path, tenant, auth
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                stand_in.requests.append((self.command, path, self.headers.get("X-Scope-OrgID"),
                                          self.headers.get("Authorization")))
                status, body = stand_in.answer(self.command, path, self.headers)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self.server = LoopbackServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, method: str, path: str, headers: Any) -> tuple[int, Any]:
        if path.startswith("/metrics/job/"):  # the Pushgateway
            self.firing = method in ("PUT", "POST")
            return 200, None
        if headers.get("Authorization") != f"Bearer {self.token}" or headers.get("X-Scope-OrgID") != self.tenant:
            return 401, None
        alert = {"labels": self.labels, "annotations": {}, "fingerprint": "0123456789abcdef",
                 "receivers": [{"name": self.receiver}], "startsAt": "2024-01-01T00:00:00.000Z",
                 "updatedAt": "2024-01-01T00:00:00.000Z", "endsAt": "2024-01-01T00:05:00.000Z",
                 "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}}
        alerts = [alert] if self.firing else []
        if (method, path) == ("GET", "/alertmanager/api/v2/alerts"):
            return 200, alerts
        if (method, path) == ("GET", "/alertmanager/api/v2/alerts/groups"):
            group = {k: self.labels[k] for k in ("alertname", "env", "step_id")}
            return 200, [{"labels": group, "receiver": {"name": self.receiver}, "alerts": alerts}] if alerts else []
        return 404, None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_mimir_drill_confirms_routing_and_says_delivery_is_not_observable(run_cli, tmp_path: Path,
                                                                            monkeypatch) -> None:
    spec = local_spec(tmp_path, "http://127.0.0.1:9")  # prod as in the reference spec; 1-second group_wait
    labels = {"alertname": "SelftestKernelStepFailed", "env": "prod", "service": "selftest", "severity": "critical",
              "step_id": "core-checks", "tier": "kernel", "drill": "true"}  # a drill's alert, as the rules make it
    mimir = MimirAlertmanagerStandIn("platform", "mimir-token", "selftest/prod/pagerduty-oncall", labels)
    monkeypatch.setenv("OBSGEN_SPEC", str(spec))
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", "mimir-token")
    try:
        result = run_cli("drill", "--env", "prod", "--tier", "kernel", "--pushgateway", mimir.url,
                         "--alertmanager-url", mimir.url, "--timeout", "30")
    finally:
        mimir.close()
    assert result.code == 0, result.out + result.err
    out = result.out.splitlines()
    assert out[-1].startswith("drill prod kernel: routing confirmed, delivery not observable: "
                              "SelftestKernelStepFailed for core-checks reached selftest/prod/pagerduty-oncall "
                              "(tenant platform) after "), out[-1]
    assert ("  confirmed: SelftestKernelStepFailed for core-checks is in tenant platform's Alertmanager, active "
            "(not silenced or inhibited), routed to selftest/prod/pagerduty-oncall as the spec intends") in out
    assert ("  not confirmed: delivery: Mimir counts notifications per tenant only on its Alertmanager replicas' "
            "own /metrics (cortex_alertmanager_notifications_total{user=\"platform\"}), which the tenant API does "
            "not serve; look for the notification at selftest/prod/pagerduty-oncall") in out
    assert " OK" not in out[-1] and "sent after" not in out[-1]
    reads = [(path, tenant, auth) for method, path, tenant, auth in mimir.requests if method == "GET"]
    assert {path for path, _, _ in reads} == {"/alertmanager/api/v2/alerts", "/alertmanager/api/v2/alerts/groups"}
    assert all((tenant, auth) == ("platform", "Bearer mimir-token") for _, tenant, auth in reads)


# --- the counters it reads ---------------------------------------------------------------------------

def test_notification_counts_are_per_integration_or_per_receiver_when_alertmanager_names_it() -> None:
    """Alertmanager 0.25 labels its notification counters by integration only; 0.26+ started with
    --enable-feature=receiver-name-in-metrics adds receiver_name; failures may carry a reason (0.26+)."""
    per_integration = """# HELP alertmanager_notifications_total The total number of attempted notifications.
alertmanager_notifications_total{integration="pagerduty"} 3
alertmanager_notifications_total{integration="slack"} 0
alertmanager_notifications_failed_total{integration="pagerduty"} 1
alertmanager_notification_requests_total{integration="pagerduty"} 7
"""
    assert drill.notification_counts(per_integration) == {(None, "pagerduty"): [3.0, 1.0], (None, "slack"): [0.0, 0.0]}
    per_receiver = """alertmanager_notifications_total{integration="pagerduty",receiver_name="selftest/dev/pagerduty-oncall"} 2
alertmanager_notifications_total{integration="pagerduty",receiver_name="billing-oncall"} 5
alertmanager_notifications_failed_total{integration="pagerduty",reason="clientError",receiver_name="billing-oncall"} 1
alertmanager_notifications_failed_total{integration="pagerduty",reason="serverError",receiver_name="billing-oncall"} 2
"""
    assert drill.notification_counts(per_receiver) == {
        ("selftest/dev/pagerduty-oncall", "pagerduty"): [2.0, 0.0], ("billing-oncall", "pagerduty"): [5.0, 3.0]}
