"""Commands on the selftest's runs: emit a report's metrics, and fire drills."""
from __future__ import annotations

import argparse
import sys

from obsgen.cli.common import EXIT_CHANGES, EXIT_NOT_DONE, EXIT_OK, Command, environment, tier
from obsgen.cli.common import env_default, url_type
from obsgen.errors import ObsgenError

EXAMPLES = {
    "emit": """examples:
  obsgen emit --env dev --report selftest.json --pushgateway http://pushgateway:9091
  obsgen emit --env prod --report selftest.json --textfile /var/lib/node_exporter/textfile/selftest.prom
  selftest --json-v2 > run.json; obsgen emit --env staging --report run.json --pushgateway $PUSHGATEWAY
  OBSGEN_PUSHGATEWAY_URL=http://pushgateway:9091 obsgen emit --env dev --report selftest.json
  obsgen emit --print-schema > selftest-report.schema.json   # the report format (JSON Schema)

a run is known by its metadata.timestamp and counted once, in order: emitting a report of one of the
last 16 runs counted again changes nothing (exit 0); a report older than the newest run counted is late:
it is not counted and does not move the last-run time back (a warning, exit 3)

exit codes: 0 counted, or counted already; 2 error; 3 older than the last run counted, not counted""",
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
    emit.add_argument("--print-schema", action=_PrintSchema,
                      help="print the JSON Schema of the report and exit (no other option needed)")
    where = emit.add_mutually_exclusive_group()  # one of them, or $OBSGEN_PUSHGATEWAY_URL: checked in _emit
    where.add_argument("--pushgateway", metavar="URL", type=url_type("--pushgateway"),
                       default=env_default("OBSGEN_PUSHGATEWAY_URL"),
                       help="push to this Pushgateway, each run also in a group of its own "
                            "($OBSGEN_PUSHGATEWAY_URL, unless --textfile is given)")
    where.add_argument("--textfile", metavar="PATH",
                       help="write a node-exporter textfile (*.prom) atomically, under a lock (keeps the last 16 runs)")
    drill = command("drill", "Fire drill: push a failing run, wait for the alert at its receiver, resolve it.",
                    _drill, EXAMPLES["drill"])
    drill.add_argument("--env", required=True, metavar="NAME", help="the environment to drill")
    drill.add_argument("--tier", required=True, metavar="TIER", help="the tier whose alert to prove, e.g. kernel")
    drill.add_argument("--pushgateway", metavar="URL", type=url_type("--pushgateway"),
                       default=env_default("OBSGEN_PUSHGATEWAY_URL"),
                       help="the Pushgateway Prometheus scrapes ($OBSGEN_PUSHGATEWAY_URL)")
    drill.add_argument("--alertmanager-url", metavar="URL", type=url_type("--alertmanager-url"),
                       default=env_default("OBSGEN_ALERTMANAGER_URL"),
                       help="override the Alertmanager URL ($OBSGEN_ALERTMANAGER_URL)")
    drill.add_argument("--timeout", type=float, metavar="S",
                       help="seconds to wait for the alert (default: its `for` plus evaluation and group_wait "
                            "plus 120)")


class _PrintSchema(argparse.Action):
    """`emit --print-schema`: print the report's JSON Schema and exit, before the required options are missed."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        from obsgen.run import emit

        sys.stdout.write(emit.schema_text())
        parser.exit(EXIT_OK)


MISSING_SHOWN = 12  # missing steps named in the warning; the rest are counted


def _warn(message: str) -> None:
    print(f"obsgen: warning: {message}", file=sys.stderr)


def _emit(args: argparse.Namespace) -> int:
    from obsgen.run import emit
    from obsgen.spec import load_spec

    if args.textfile:  # given explicitly, it wins over a Pushgateway that came from $OBSGEN_PUSHGATEWAY_URL
        args.pushgateway = None
    elif not args.pushgateway:
        raise ObsgenError("emit needs somewhere to publish the run: pass --pushgateway URL (or set "
                          "OBSGEN_PUSHGATEWAY_URL) or --textfile PATH")
    model = load_spec(args.spec)
    args.env = environment(model, args.env).name  # as the spec spells it: `Dev` is `dev`
    if args.textfile:
        emit.check_textfile(args.textfile)
    report = emit.load_report(args.report, model)
    missing = emit.missing_steps(model, report)
    if missing:
        shown = ", ".join(missing[:MISSING_SHOWN]) + (f" and {len(missing) - MISSING_SHOWN} more"
                                                       if len(missing) > MISSING_SHOWN else "")
        _warn(f"{args.report}: {len(missing)} of the spec's {len(model.steps)} steps are not in the report: "
              f"{shown}; they count as neither passed nor failed (each keeps its last step_failed value, "
              f"its failure counter does not move)")
    if report.timestamp is None:
        _warn(f"{args.report}: no metadata.timestamp (nor results[].timestamp_end): the run cannot be told "
              f"from a re-emitted one, so emitting this report again would count it again")
    if args.pushgateway:
        done = emit.emit_to_pushgateway(model, args.env, report, args.pushgateway)
        where = f"Pushgateway {args.pushgateway} (job={model.service.name}, {model.metrics.env_label}={args.env})"
    else:
        done = emit.emit_to_textfile(model, args.env, report, args.textfile)
        where = args.textfile
    if done.status == emit.REPLAYED:
        print(f"obsgen emit: {args.env} run of {emit.run_time(report)} already counted, nothing "
              f"{'pushed' if args.pushgateway else 'written'} -> {where}")
        return EXIT_OK
    if done.status == emit.OLDER:
        _warn(f"{args.report}: the run of {emit.run_time(report)} is older than the last run {where} counted "
              f"({emit.format_time(done.last_run)}): a late report; not counted, and the last-run time stays "
              f"at {emit.format_time(done.last_run)}")
        return EXIT_NOT_DONE
    print(f"obsgen emit: {args.env} run {emit.run_result(model, args.env, report)} "
          f"({emit.describe_run(model, args.env, report)}) -> {where}")
    stale = emit.stale_report(model, args.env, report)
    if stale:
        _warn(f"{args.report}: {stale}")
    return EXIT_OK


def _drill(args: argparse.Namespace) -> int:
    from obsgen.run import drill
    from obsgen.spec import load_spec

    model = load_spec(args.spec)  # the names typed are checked first, then what is missing
    env = environment(model, args.env)
    args.tier = tier(model, args.tier)  # as the spec spells it: `Kernel` is `kernel`
    if not args.pushgateway:
        raise ObsgenError("drill needs the Pushgateway Prometheus scrapes: pass --pushgateway URL or set "
                          "OBSGEN_PUSHGATEWAY_URL")
    timeout = args.timeout or drill.default_timeout(model, env, args.tier)
    result = drill.run(model, env, args.tier, args.pushgateway, args.alertmanager_url, timeout,
                       (lambda *_: None) if args.quiet else print)
    for line in drill.lines(result):  # what was confirmed, what was not, then OK / FAILED / NOT CONFIRMED
        print(line)
    # 1: a fault found, or delivery that could not be told apart; 0 also for Mimir's "routing confirmed,
    # delivery not observable", which the last line says
    return EXIT_OK if result.ok else EXIT_CHANGES
