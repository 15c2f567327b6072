"""The command line: parse, call the library, print, choose the exit code.

Exit codes: 0 ok, 1 drift or changes found, 2 error (bad spec, bad usage, backend failure).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from obsgen import __version__
from obsgen.errors import ObsgenError, SpecError

DEFAULT_SPEC = "specs/selftest.yaml"
DEFAULT_OUT = "generated"
EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2

_EXAMPLES = {
    "validate": """examples:
  obsgen validate                         # check specs/selftest.yaml
  obsgen validate --spec specs/team.jsonnet""",
    "build": """examples:
  obsgen build                            # every environment into generated/
  obsgen build --env dev --env staging    # only these environments
  obsgen build --spec specs/team.yaml --out /tmp/out
  obsgen build --out docs/observability --allow-nonempty   # a directory that already holds other files

obsgen removes only files its previous manifests (<out>/<env>/manifest.json) list; a file it did not
write is kept and named ("kept ..."). A non-empty --out without an obsgen manifest is refused unless
--allow-nonempty (obsgen then writes its files there and still removes nothing it did not write).""",
    "check": """examples:
  obsgen check                            # CI drift check: exit 1 and a diff when generated/ is stale
  obsgen check --env prod
  obsgen check --out docs/observability   # a directory that also holds other files, first built with
                                          #   obsgen build --out docs/observability --allow-nonempty

Drift is checked inside each environment tree (<out>/<env>/): a file there that obsgen did not write
is reported as extra (exit 1); files elsewhere under --out (e.g. <out>/README.md) are neither checked
nor touched.""",
    "diff": """examples:
  obsgen diff --env dev                   # what differs between the spec and the live backends
  obsgen diff --env prod --format markdown --exit-code
  OBSGEN_GRAFANA_URL=http://127.0.0.1:3000 obsgen diff --env dev""",
    "apply": """examples:
  obsgen apply --env dev --dry-run        # print the plan and stop
  obsgen apply --env dev --yes            # apply without asking
  obsgen apply --env dev --yes --prune    # also delete owned objects that left the spec""",
    "verify": """examples:
  obsgen verify                           # every environment's generated rule and routing tests
  obsgen verify --env prod -v             # one environment, listing every passing case too""",
    "docs": """examples:
  obsgen docs --env prod                  # print prod's alert catalog (generated/prod/docs/alerts.md)
  obsgen docs --env dev > alerts-dev.md""",
    "emit": """examples:
  obsgen emit --env dev --report selftest.json --pushgateway http://pushgateway:9091
  obsgen emit --env prod --report selftest.json --textfile /var/lib/node_exporter/textfile/selftest.prom
  selftest --json-v2 > run.json; obsgen emit --env staging --report run.json --pushgateway $PUSHGATEWAY""",
    "drill": """examples:
  obsgen drill --env dev --tier kernel --pushgateway http://pushgateway:9091
  obsgen drill --env staging --tier governance --timeout 600
  OBSGEN_PUSHGATEWAY_URL=http://127.0.0.1:9091 obsgen drill --env dev --tier kernel""",
    "history": """examples:
  obsgen history --env prod               # applies and dry runs, with how each ended
  obsgen history --limit 5                # the ledger is $OBSGEN_STATE_DIR/ledger.sqlite (default
                                          # ~/.local/state/obsgen/ledger.sqlite)""",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obsgen",
        description="Compile one selftest observability spec into Grafana dashboards, OpenSLO documents, "
                    "Prometheus rules and Alertmanager routing.",
        epilog="examples:\n  obsgen validate\n  obsgen build\n  obsgen check\n\n"
               "exit codes: 0 ok, 1 drift or changes found, 2 error",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"obsgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, epilog=_EXAMPLES[name],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--spec", default=os.environ.get("OBSGEN_SPEC", DEFAULT_SPEC),
                       help=f"spec file: .yaml, .json or .jsonnet (default: $OBSGEN_SPEC or {DEFAULT_SPEC})")
        p.set_defaults(func=func)
        return p

    command("validate", "Check a spec and report every problem as file:line:col.", _validate)
    for name, help_, func in (("build", "Compile the spec into the output directory.", _build),
                              ("check", "Fail with a diff when the output directory does not match the spec.",
                               _check)):
        p = command(name, help_, func)
        p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
        p.add_argument("--env", action="append", default=[], metavar="NAME",
                       help="only this environment (repeatable; default: all)")
    sub.choices["build"].add_argument(
        "--allow-nonempty", action="store_true",
        help="build into a non-empty directory that holds no obsgen manifest (e.g. --out . in a repository); "
             "files obsgen did not write are never removed")
    for name, help_, func in (("diff", "Show what differs between the spec and the live backends.", _diff),
                              ("apply", "Change the live backends to match the spec (a diff first).", _apply)):
        p = command(name, help_, func)
        p.add_argument("--env", required=True, metavar="NAME", help="the environment to compare or change")
        p.add_argument("--grafana-url", help="override the Grafana URL ($OBSGEN_GRAFANA_URL)")
        p.add_argument("--prometheus-url", help="override the Prometheus URL ($OBSGEN_PROMETHEUS_URL)")
        p.add_argument("--prometheus-rules-dir", help="override rules_dir ($OBSGEN_PROMETHEUS_RULES_DIR)")
        p.add_argument("--alertmanager-url", help="override the Alertmanager URL ($OBSGEN_ALERTMANAGER_URL)")
        p.add_argument("--alertmanager-config-file",
                       help="override config_file ($OBSGEN_ALERTMANAGER_CONFIG_FILE)")
        p.add_argument("--only", action="append", default=[], choices=["grafana", "prometheus", "alertmanager"],
                       help="only this backend (repeatable; default: every backend of the environment)")
    sub.choices["check"].add_argument(
        "--no-cache", action="store_true",
        help="always recompile (by default an unchanged spec, generator and output is known clean from the "
             "last build or check, recorded in the state directory, $OBSGEN_STATE_DIR)")
    diff = sub.choices["diff"]
    diff.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when there are changes")
    apply = sub.choices["apply"]
    apply.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    apply.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--prune", action="store_true", help="delete owned objects that left the spec")
    apply.add_argument("--force", action="store_true",
                       help="overwrite objects changed outside obsgen (Grafana version conflicts)")
    verify = command("verify", "Run the generated rule tests (promtool) and routing tests (amtool, inhibition).",
                     _verify)
    verify.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    verify.add_argument("--env", action="append", default=[], metavar="NAME",
                        help="only this environment (repeatable; default: every environment in the output)")
    verify.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    docs = command("docs", "Print the alert catalog of an environment (as generated into <out>/<env>/docs/).",
                   _docs)
    docs.add_argument("--env", action="append", default=[], metavar="NAME",
                      help="only this environment (repeatable; default: all)")
    emit = command("emit", "Turn a selftest JSON report (--json-v2) into the spec's metrics and publish them.",
                   _emit)
    emit.add_argument("--env", required=True, metavar="NAME", help="the environment the run belongs to")
    emit.add_argument("--report", required=True, metavar="FILE", help="the selftest --json-v2 report")
    where = emit.add_mutually_exclusive_group(required=True)
    where.add_argument("--pushgateway", metavar="URL", help="push to this Pushgateway (counters accumulate)")
    where.add_argument("--textfile", metavar="PATH",
                       help="write a node-exporter textfile (*.prom) atomically (counters accumulate)")
    drill = command("drill", "Fire drill: push a failing run, wait for the alert at its receiver, resolve it.",
                    _drill)
    drill.add_argument("--env", required=True, metavar="NAME")
    drill.add_argument("--tier", required=True, metavar="TIER", help="the tier whose alert to prove, e.g. kernel")
    drill.add_argument("--pushgateway", metavar="URL", default=os.environ.get("OBSGEN_PUSHGATEWAY_URL"),
                       help="the Pushgateway Prometheus scrapes ($OBSGEN_PUSHGATEWAY_URL)")
    drill.add_argument("--alertmanager-url", help="override the Alertmanager URL ($OBSGEN_ALERTMANAGER_URL)")
    drill.add_argument("--timeout", type=float, metavar="S",
                       help="seconds to wait for the alert (default: its `for` plus evaluation and group_wait "
                            "plus 120)")
    history = command("history", "List the applies and dry runs recorded in the local ledger.", _history)
    history.add_argument("--env", metavar="NAME", help="only this environment")
    history.add_argument("--limit", type=int, default=20, metavar="N", help="show the N latest entries (default: 20)")
    return parser


def _overrides(args: argparse.Namespace):
    from obsgen.deploy.session import Overrides

    env = Overrides.from_environ()
    return Overrides(**{f: getattr(args, f) or getattr(env, f) for f in Overrides.__dataclass_fields__})


def _diff(args: argparse.Namespace) -> int:
    from obsgen.deploy import report, state
    from obsgen.deploy.session import open_session

    state.checked_env(args.env)
    session = open_session(args.spec, args.env, _overrides(args), tuple(args.only))
    _notes(session.notes)
    sys.stdout.write(report.FORMATS[args.format](session.plan, args.env))
    return EXIT_CHANGES if args.exit_code and not session.plan.empty else EXIT_OK


def _apply(args: argparse.Namespace) -> int:
    from obsgen.deploy import report
    from obsgen.deploy import session as deploy
    from obsgen.deploy.plan import DELETE

    with deploy.Run(args.env, "dry-run" if args.dry_run else "apply") as run:
        session = deploy.open_session(args.spec, args.env, _overrides(args), tuple(args.only), run=run)
        _notes(session.notes)
        sys.stdout.write(report.text(session.plan, args.env))
        if session.plan.empty:
            run.result = "no-changes"
            return EXIT_OK
        if args.dry_run:
            run.result = "planned"
            return EXIT_OK
        skipped = len(session.plan.of(DELETE)) if not args.prune else 0
        if skipped:
            print(f"{_plural(skipped, 'owned object')} left the spec; not deleted without --prune")
        if not args.yes:
            if not sys.stdin.isatty():
                raise deploy.Refused("refusing to apply without confirmation: not a terminal; pass --yes")
            try:
                answer = input(f"Apply these changes to {args.env}? [y/N] ")
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing applied.")
                run.result = "declined"
                return EXIT_OK
        run.applied = deploy.apply(session, prune=args.prune, force=args.force)
        run.result = "ok"
    print(f"{args.env}: applied {_plural(len(run.applied), 'change')}.")
    return EXIT_OK


def _notes(notes: list[str]) -> None:
    for note in notes:
        print(f"obsgen: note: {note}", file=sys.stderr)


def _history(args: argparse.Namespace) -> int:
    from obsgen.deploy import ledger, state

    if args.env:
        state.checked_env(args.env)
    if args.limit < 1:
        raise ObsgenError(f"--limit must be at least 1, not {args.limit}")
    entries = ledger.history(state.ledger_path(), args.env, args.limit)
    if not entries:
        print("No applies recorded" + (f" for {args.env}." if args.env else "."))
    for e in entries:
        done = f"  applied {len(e.changes)} of {len(e.planned)}" if e.mode == "apply" and e.planned else ""
        print(f"{e.at}  {e.env:<8} {e.mode:<8} {e.result:<17} {e.who:<10} spec {e.spec_sha256[:12]}  {e.summary}"
              f"{done}" + (f"\n    error: {e.error}" if e.error else ""))
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from obsgen.verify import verify

    out = Path(args.out)
    envs = args.env or sorted(p.parent.name for p in out.glob("*/manifest.json"))
    if not envs:
        raise ObsgenError(f"no generated environments in {out}/: run `obsgen build` first")
    counts: dict[tuple[str, str], list[int]] = {}
    passed = failed = 0
    for outcome in verify(out, envs):
        tally = counts.setdefault((outcome.env, outcome.suite), [0, 0])
        tally[0 if outcome.ok else 1] += 1
        if outcome.ok:
            passed += 1
            if args.verbose:
                print(f"ok    {outcome.env} {outcome.suite}: {outcome.name}")
            continue
        failed += 1
        print(f"FAIL  {outcome.env} {outcome.suite}: {outcome.name}")
        for line in outcome.detail.splitlines():
            print(f"      {line}")
    for env in envs:
        parts = [f"{suite} {p} passed" + (f", {f} failed" if f else "")
                 for (e, suite), (p, f) in counts.items() if e == env]
        print(f"{env}: {'; '.join(parts) or 'no generated tests'}")
    print(f"{passed} passed, {failed} failed")
    return EXIT_CHANGES if failed else EXIT_OK


def _docs(args: argparse.Namespace) -> int:
    from obsgen.generate import compile_spec

    build = compile_spec(args.spec, args.env, only=("docs",))
    docs = [a for a in build.artifacts if "/docs/" in a.path]
    for i, artifact in enumerate(docs):
        if len(docs) > 1:
            print(f"{'' if i == 0 else chr(10)}<!-- {artifact.path} -->")
        sys.stdout.write(artifact.content.decode())
    return EXIT_OK


def _emit(args: argparse.Namespace) -> int:
    from obsgen import emit
    from obsgen.spec import load_spec

    model = load_spec(args.spec)
    _environment(model, args.env)
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
    env = _environment(model, args.env)
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


def _environment(model, name: str):  # noqa: ANN001, ANN202
    try:
        return model.environment(name)
    except KeyError:
        raise ObsgenError(f"unknown environment {name!r} (the spec defines: "
                          f"{', '.join(e.name for e in model.environments)})") from None


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _validate(args: argparse.Namespace) -> int:
    from obsgen.spec import load_spec

    model = load_spec(args.spec)
    counts = ", ".join(_plural(n, what) for n, what in (
        (len(model.steps), "step"), (len(model.environments), "environment"), (len(model.slos), "SLO"),
        (len(model.alerts), "alert"), (len(model.dashboards), "dashboard")))
    print(f"{args.spec}: OK ({counts})")
    return EXIT_OK


def _build(args: argparse.Namespace) -> int:
    from obsgen.generate import build

    result, report = build(args.spec, Path(args.out), args.env, allow_nonempty=args.allow_nonempty)
    for path in report.written:
        print(f"wrote   {Path(args.out, path).as_posix()}")
    for path in report.removed:
        print(f"removed {Path(args.out, path).as_posix()}")
    for path in report.kept:
        print(f"kept    {Path(args.out, path).as_posix()} (not written by obsgen)")
    envs = ", ".join(s for s in result.scopes if s) or ", ".join(e.name for e in result.model.environments)
    kept = f", {len(report.kept)} kept (not written by obsgen)" if report.kept else ""
    print(f"obsgen build: {envs} from {args.spec} into {args.out}/: {len(report.written)} written, "
          f"{report.unchanged} unchanged, {len(report.removed)} removed{kept}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from obsgen.generate import check

    files, drift = check(args.spec, Path(args.out), args.env, fast=not args.no_cache)
    if drift.clean:
        print(f"obsgen check: {args.out}/ matches {args.spec} ({files} files)")
        return EXIT_OK
    for path, diff in drift.changed:
        print(f"drifted: {Path(args.out, path).as_posix()}")
        sys.stdout.write(diff)
    for path in drift.missing:
        print(f"missing: {Path(args.out, path).as_posix()}")
    for path in drift.extra:
        print(f"extra:   {Path(args.out, path).as_posix()} (written by obsgen, no longer produced by the spec)")
    for path in drift.foreign:
        print(f"extra:   {Path(args.out, path).as_posix()} (not written by obsgen; "
              f"move it out of {Path(args.out, path.split('/', 1)[0]).as_posix()}/ or delete it)")
    count = len(drift.changed) + len(drift.missing) + len(drift.extra)
    if count:
        print(f"obsgen check: {_plural(count, 'file')} out of date in {args.out}/; "
              f"run `obsgen build` to regenerate", file=sys.stderr)
    if drift.foreign:
        it = "it" if len(drift.foreign) == 1 else "them"
        print(f"obsgen check: {_plural(len(drift.foreign), 'file')} not written by obsgen inside the environment "
              f"directories of {args.out}/; move {it} elsewhere or delete {it} (`obsgen build` never removes "
              f"{it})", file=sys.stderr)
    return EXIT_CHANGES


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return args.func(args)
    except SpecError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"obsgen: {_plural(len(exc.problems), 'problem')} in {args.spec}; nothing was written",
              file=sys.stderr)
        return EXIT_ERROR
    except ObsgenError as exc:
        print(f"obsgen: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("obsgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 -- a bug must still end as one line and exit 2, never exit 1
        if os.environ.get("OBSGEN_DEBUG"):
            raise
        print(f"obsgen: internal error: {type(exc).__name__}: {exc} (this is a bug in obsgen; run again with "
              f"OBSGEN_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_ERROR
