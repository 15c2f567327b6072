"""`make demo`: obsgen on a local stack, from apply to a page and a Slack message.

Starts real Prometheus, Alertmanager and Pushgateway on loopback, a local HTTP sink standing in for
PagerDuty and Slack, and the Grafana TEST DOUBLE (a stand-in that follows Grafana's HTTP API; no real
Grafana runs here). Applies dev of the reference spec (its channels pointed at the sink), publishes
a passing run, runs a kernel and a governance fire drill, prints where each alert landed and how
long it took, and stops everything it started.

DEMO_FAST=0 keeps the spec's real timing (1m evaluation, 30s group_wait, the alerts' `for`); the
default evaluates every second with `for: 0s` so the demo takes seconds.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localstack import PAGERDUTY_PATH, LocalStack, slack_path  # noqa: E402
from stack import Record  # noqa: E402

FAST = os.environ.get("DEMO_FAST", "1") != "0"


class Arrivals:
    """Stamps every record the sink receives with the time it was first seen."""

    def __init__(self, sink) -> None:  # noqa: ANN001
        self.sink, self.seen, self.stop = sink, [], threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.is_set():
            records = self.sink.received()
            for record in records[len(self.seen):]:
                self.seen.append((time.monotonic(), record))
            time.sleep(0.05)

    def first(self, since: float, match) -> tuple[float, Record] | None:  # noqa: ANN001
        return next(((t, r) for t, r in list(self.seen) if t >= since and match(r)), None)


def main() -> int:
    from obsgen import drill, emit
    from obsgen.cli import main as cli
    from obsgen.spec import load_spec

    with tempfile.TemporaryDirectory(prefix="obsgen-demo-") as tmp, LocalStack(Path(tmp), fast=FAST) as local, \
            local.environment():
        print("== local stack (stopped when the demo ends)")
        print(f"   Prometheus    {local.stack.prometheus_url}")
        print(f"   Alertmanager  {local.stack.alertmanager_url}")
        print(f"   Pushgateway   {local.stack.pushgateway_url}")
        print(f"   PagerDuty and Slack: a local sink at {local.sink.url}")
        print(f"   Grafana: the obsgen Grafana TEST DOUBLE at {local.grafana.url} (not a real Grafana)")
        print(f"   spec: dev of specs/selftest.yaml, channels pointed at the sink"
              f"{', fast timing (1s evaluation, for: 0s)' if FAST else ', the spec timing'}")
        print("\n== obsgen apply --env dev --yes")
        if cli(["apply", "--env", "dev", "--yes"]) != 0:
            return 1
        model = load_spec(str(local.spec))
        env = model.environment("dev")
        passing = emit.Report("demo baseline", tuple(emit.StepResult(s.id, s.tier, "PASS", 1.0) for s in model.steps),
                              10.0, None, "strict")
        emit.emit_to_pushgateway(model, "dev", passing, local.stack.pushgateway_url)
        print("\n== a passing run published (obsgen.emit); waiting for Prometheus to find its Alertmanager")
        local.stack.wait_for_discovery()
        time.sleep(6)  # Prometheus 2.42 forgets its Alertmanagers for ~5 s after the apply's reload
        arrivals = Arrivals(local.sink)
        outcomes = []
        for tier, path, what in (("kernel", PAGERDUTY_PATH, "PagerDuty"),
                                 ("governance", slack_path("slack-tickets"), "Slack #selftest-dev")):
            print(f"\n== obsgen drill --env dev --tier {tier}")
            start = time.monotonic()
            result = drill.run(model, env, tier, local.stack.pushgateway_url, None,
                               drill.default_timeout(model, env, tier), print)
            if not result.ok:
                print(f"drill dev {tier}: FAILED: {result.problem}")
                return 1
            print(f"drill dev {tier}: {result.alertname} reached {', '.join(result.receivers)} in Alertmanager "
                  f"after {result.time_to_alert:.1f} s, sent after {result.delivered_after:.1f} s")
            hit = None
            deadline = time.monotonic() + 60
            while hit is None and time.monotonic() < deadline:
                hit = arrivals.first(start, lambda r, p=path: r.path.startswith(p) and _firing(r))
                time.sleep(0.1)
            outcomes.append((tier, what, result, hit and hit[0] - start, hit and hit[1]))
        arrivals.stop.set()
        print("\n== where each alert landed")
        ok = True
        for tier, what, result, seconds, record in outcomes:
            if record is None:
                ok = False
                print(f"   {tier:<10} {result.alertname}: NOTHING reached the {what} sink")
                continue
            print(f"   {tier:<10} {result.alertname} -> {what} sink {record.path} {seconds:.1f} s after the "
                  f"failing run was pushed: {_summary(record)}")
        print("\n== stopping the stack")
    return 0 if ok else 1


def _firing(record: Record) -> bool:
    body = record.body if isinstance(record.body, dict) else {}
    if "event_action" in body:
        return body["event_action"] == "trigger" and body["payload"]["custom_details"].get("step_id") != "all"
    return "FIRING" in str((body.get("attachments") or [{}])[0].get("title", ""))


def _summary(record: Record) -> str:
    body = record.body
    if "event_action" in body:
        details = body["payload"]["custom_details"]
        return f"trigger '{body['payload']['summary']}' (step_id {details['step_id']}, tier {details['tier']})"
    return f"{body.get('channel')} '{body['attachments'][0]['title']}'"


if __name__ == "__main__":
    sys.exit(main())
