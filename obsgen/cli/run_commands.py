"""Commands on the selftest's runs: emit a report's metrics, and fire drills."""
from __future__ import annotations

import argparse
import os

from obsgen.cli.common import EXIT_CHANGES, EXIT_OK, Command, environment
from obsgen.errors import ObsgenError

EXAMPLES = {
    "emit": """examples:
  obsgen emit --env dev --report selftest.json --pushgateway http://pushgateway:9091
  obsgen emit --env prod --report selftest.json --textfile /var/lib/node_exporter/textfile/selftest.prom
  selftest --json-v2 > run.json; obsgen emit --env staging --report run.json --pushgateway $PUSHGATEWAY""",
    "drill": """examples:
  obsgen drill --env dev --tier kernel --pushgateway http://pushgateway:9091
  obsgen drill --env staging --tier governance --timeout 600
  OBSGEN_PUSHGATEWAY_URL=http://127.0.0.1:9091 obsgen drill --env dev --tier kernel""",
}


def register(command: Command, sub: argparse._SubParsersAction) -> None:
    emit = command("emit", "Turn a selftest JSON report (--json-v2) into the spec's metrics and publish them.",
                   _emit, EXAMPLES["emit"])
    emit.add_argument("--env", required=True, metavar="NAME", help="the environment the run belongs to")
    emit.add_argument("--report", required=True, metavar="FILE", help="the selftest --json-v2 report")
    where = emit.add_mutually_exclusive_group(required=True)
    where.add_argument("--pushgateway", metavar="URL", help="push to this Pushgateway (counters accumulate)")
    where.add_argument("--textfile", metavar="PATH",
                       help="write a node-exporter textfile (*.prom) atomically (counters accumulate)")
    drill = command("drill", "Fire drill: push a failing run, wait for the alert at its receiver, resolve it.",
                    _drill, EXAMPLES["drill"])
    drill.add_argument("--env", required=True, metavar="NAME")
    drill.add_argument("--tier", required=True, metavar="TIER", help="the tier whose alert to prove, e.g. kernel")
    drill.add_argument("--pushgateway", metavar="URL", default=os.environ.get("OBSGEN_PUSHGATEWAY_URL"),
                       help="the Pushgateway Prometheus scrapes ($OBSGEN_PUSHGATEWAY_URL)")
    drill.add_argument("--alertmanager-url", help="override the Alertmanager URL ($OBSGEN_ALERTMANAGER_URL)")
    drill.add_argument("--timeout", type=float, metavar="S",
                       help="seconds to wait for the alert (default: its `for` plus evaluation and group_wait "
                            "plus 120)")


def _emit(args: argparse.Namespace) -> int:
    from obsgen import emit
    from obsgen.spec import load_spec

    model = load_spec(args.spec)
    environment(model, args.env)
    report = emit.load_report(args.report, model)
    failing = ", ".join(s.id for s in report.steps if s.failed) or "none"
    if args.pushgateway:
        emit.emit_to_pushgateway(model, args.env, report, args.pushgateway)
        where = f"Pushgateway {args.pushgateway} (job={model.service.name}, {model.metrics.env_label}={args.env})"
    else:
        emit.emit_to_textfile(model, args.env, report, args.textfile)
        where = args.textfile
    print(f"obsgen emit: {args.env} run {emit.run_result(model, args.env, report)} "
          f"({len(report.steps)} steps, failing: {failing}) -> {where}")
    return EXIT_OK


def _drill(args: argparse.Namespace) -> int:
    from obsgen import drill
    from obsgen.spec import load_spec

    if not args.pushgateway:
        raise ObsgenError("drill needs the Pushgateway Prometheus scrapes: pass --pushgateway URL or set "
                          "OBSGEN_PUSHGATEWAY_URL")
    model = load_spec(args.spec)
    env = environment(model, args.env)
    if args.tier not in [t.id for t in model.tiers]:
        raise ObsgenError(f"unknown tier {args.tier!r} (the spec defines: {', '.join(t.id for t in model.tiers)})")
    timeout = args.timeout or drill.default_timeout(model, env, args.tier)
    result = drill.run(model, env, args.tier, args.pushgateway, args.alertmanager_url, timeout, print)
    name = f"drill {result.env} {result.tier}"
    if not result.ok:
        print(f"{name}: FAILED: {result.problem}")
        return EXIT_CHANGES
    resolved = (f"resolved {result.resolved_after:.1f} s after the drill group was removed"
                if result.resolved_after is not None else "still active when the timeout ran out")
    sent = f", sent after {result.delivered_after:.1f} s" if result.delivered_after is not None else ""
    print(f"{name}: {result.alertname} for {', '.join(result.steps)} reached {', '.join(result.receivers)} "
          f"after {result.time_to_alert:.1f} s{sent}; {resolved}")
    return EXIT_OK
