"""The live backend stack of tests/stack.py itself: real Pushgateway, Alertmanager and Prometheus
on loopback, and the Sink standing in for PagerDuty/Slack/webhooks. One stack for the module."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from conftest import require_tool
from stack import Record, Sink, Stack, StackError

WAIT = 30.0  # upper bound for every wait below; never a timing assertion


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


@pytest.fixture(scope="module")
def stack(sink: Sink) -> Iterator[Stack]:
    for name in ("prometheus", "prometheus-alertmanager", "prometheus-pushgateway"):
        require_tool(name)
    with Stack(sink=sink) as s:
        yield s


def _token() -> str:
    return uuid.uuid4().hex[:12]


def test_all_three_components_become_ready_and_prometheus_sees_the_pushgateway_target_up(stack: Stack) -> None:
    for url in (stack.prometheus_url, stack.alertmanager_url, stack.pushgateway_url):
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/-/ready", timeout=5).status_code == 200
    targets = requests.get(f"{stack.prometheus_url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    pushgateway = [t for t in targets if t["labels"]["job"] == "pushgateway"]
    assert [t["health"] for t in pushgateway] == ["up"]
    assert pushgateway[0]["scrapeUrl"] == f"{stack.pushgateway_url}/metrics"
    managers = requests.get(f"{stack.prometheus_url}/api/v1/alertmanagers", timeout=5).json()["data"]
    assert [m["url"] for m in managers["activeAlertmanagers"]] == [f"{stack.alertmanager_url}/api/v2/alerts"]


def test_a_sample_pushed_to_the_pushgateway_becomes_queryable_in_prometheus(stack: Stack) -> None:
    token = _token()
    try:
        stack.push("stacktest", f'obsgen_stacktest_value{{token="{token}"}} 42\n', {"instance": "a/b"})
        result = stack.wait_until(lambda: stack.query(f'obsgen_stacktest_value{{token="{token}"}}'),
                                  WAIT, "the pushed sample in Prometheus")
        [sample] = result
        # honor_labels: the pushed job and grouping labels win over the scrape target's own.
        assert sample["metric"]["job"] == "stacktest"
        assert sample["metric"]["instance"] == "a/b"
        assert sample["value"][1] == "42"
    finally:
        stack.wipe_pushgateway()
    stack.wait_until(lambda: not stack.query(f'obsgen_stacktest_value{{token="{token}"}}'),
                     WAIT, "the wiped sample to go stale in Prometheus")


def test_a_rule_file_written_into_rules_dir_is_listed_by_prometheus_after_a_reload(stack: Stack) -> None:
    group = f"stacktest-records-{_token()}"
    path = stack.write_rules(group, {"groups": [{"name": group, "rules": [
        {"record": "obsgen:stacktest:sum", "expr": "sum(rate(prometheus_http_requests_total[1m]))by(job)"}]}]})
    try:
        assert stack.reload_prometheus() == 200
        [loaded] = [g for g in stack.rule_groups() if g["name"] == group]
        assert loaded["file"] == str(path)
        assert [r["name"] for r in loaded["rules"]] == ["obsgen:stacktest:sum"]
    finally:
        path.unlink()
        assert stack.reload_prometheus() == 200
    assert group not in [g["name"] for g in stack.rule_groups()]


def test_an_alert_rule_routes_through_alertmanager_to_the_sink_webhook(stack: Stack, sink: Sink) -> None:
    token = _token()
    path = stack.write_rules("stacktest-alert", {"groups": [{"name": "stacktest-alert", "rules": [
        {"alert": "ObsgenStackTestAlert", "expr": "vector(1)",
         "labels": {"severity": "info", "stacktest": token},
         "annotations": {"summary": "stack self-test"}}]}]})

    def ours(record: Record) -> bool:
        return any(a["labels"].get("stacktest") == token and a["status"] == "firing"
                   for a in record.body["alerts"])

    try:
        assert stack.reload_prometheus() == 200
        [record, *_] = sink.wait_for(ours, WAIT, path_prefix="/webhook")
        assert record.body["receiver"] == "sink"
        [alert] = [a for a in record.body["alerts"] if a["labels"].get("stacktest") == token]
        assert alert["labels"] == {"alertname": "ObsgenStackTestAlert", "severity": "info", "stacktest": token}
        assert alert["annotations"] == {"summary": "stack self-test"}
        in_am = stack.alerts(filter=[f'stacktest="{token}"'])
        assert [a["receivers"] for a in in_am] == [[{"name": "sink"}]]
    finally:
        path.unlink()
        stack.reload_prometheus()


def test_a_bad_alertmanager_config_is_refused_on_reload_and_the_old_one_stays_loaded(stack: Stack, sink: Sink) -> None:
    good = stack.alertmanager_config_file.read_text()
    try:
        stack.write_alertmanager_config(yaml.safe_dump({
            "route": {"receiver": "nowhere"},                 # an undefined receiver
            "receivers": [{"name": "somewhere-else"}]}))
        assert stack.reload_alertmanager() == 500
        loaded = stack.alertmanager_loaded_config()
        assert loaded["route"]["receiver"] == "sink"
        [receiver] = loaded["receivers"]
        assert receiver["name"] == "sink"
        assert [w["url"] for w in receiver["webhook_configs"]] == [f"{sink.url}/webhook"]
        metrics = requests.get(f"{stack.alertmanager_url}/metrics", timeout=5).text
        assert "alertmanager_config_last_reload_successful 0" in metrics.splitlines()
    finally:
        stack.write_alertmanager_config(good)
        assert stack.reload_alertmanager() == 200


def test_a_component_that_cannot_start_raises_an_error_with_its_log_tail() -> None:
    require_tool("prometheus-alertmanager")
    broken = Stack(alertmanager_config="route: {receiver: nowhere}\nreceivers: []\n", components=("alertmanager",))
    tmp = broken.tmp
    with pytest.raises(StackError, match=r"(?s)alertmanager exited with code \d+.*undefined receiver"):
        broken.start()
    assert broken.pids == {}
    assert not tmp.exists()
    assert "undefined receiver" in broken.logs("alertmanager")


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_stop_leaves_no_process_of_ours_running() -> None:
    for name in ("prometheus", "prometheus-alertmanager", "prometheus-pushgateway"):
        require_tool(name)
    own = Stack()
    own.start(wait_for_targets=False)
    tmp = own.tmp
    pids = own.pids
    assert sorted(pids) == ["alertmanager", "prometheus", "pushgateway"]
    cmdlines = {pid: _cmdline(pid) for pid in pids.values()}
    assert all(cmdlines.values()), cmdlines
    own.stop()
    # Gone, or the PID was reused by something that is not ours.
    assert {pid: _cmdline(pid) for pid in pids.values() if _cmdline(pid) == cmdlines[pid]} == {}
    assert not tmp.exists()
    assert own.pids == {}
    own.stop()  # a second stop is harmless
