"""Commands on the live backends: diff, apply, doctor, history."""
from __future__ import annotations

import argparse
import sys

from obsgen.cli.common import (DEFAULT_OUT, EXIT_CHANGES, EXIT_ERROR, EXIT_NOT_DONE, EXIT_OK, Command, env_default,
                               environment, error_line, notes, plural, safe, spec_environment, url_type)
from obsgen.errors import ObsgenError

EXAMPLES = {
    "diff": """examples:
  obsgen diff --env dev                   # what differs between the spec and the live backends
  obsgen diff --env prod --format markdown --exit-code
  OBSGEN_GRAFANA_URL=http://127.0.0.1:3000 obsgen diff --env dev""",
    "apply": """examples:
  obsgen apply --env dev --dry-run        # print the plan and stop
  obsgen apply --env dev --yes            # apply without asking
  obsgen apply --env dev --yes --prune    # also delete owned objects that left the spec

exit codes: 0 applied, or nothing to change; 2 error; 3 declined at the prompt, nothing applied;
128 + the signal's number when SIGTERM (143), SIGHUP (129) or Ctrl-C (130) stopped it, after the rollback""",
    "doctor": """examples:
  obsgen doctor --env prod                # every backend of prod: URL, token, reachable, what apply needs
  obsgen doctor --env dev --pushgateway http://127.0.0.1:9091
  OBSGEN_PROMETHEUS_URL=http://127.0.0.1:9090 obsgen doctor --env dev --only prometheus

exit codes: 0 every check passed, 2 a check failed""",
    "history": """examples:
  obsgen history --env prod               # applies and dry runs, with how each ended
  obsgen history -v                       # also what each changed and the backend URLs it went to
  obsgen history --limit 5                # the ledger is $OBSGEN_STATE_DIR/ledger.sqlite (default
                                          # ~/.local/state/obsgen/ledger.sqlite)""",
}


def register(command: Command, sub: argparse._SubParsersAction) -> None:
    for name, help_, func in (("diff", "Show what differs between the spec and the live backends.", _diff),
                              ("apply", "Change the live backends to match the spec (a diff first).", _apply)):
        p = command(name, help_, func, EXAMPLES[name])
        p.add_argument("--env", required=True, metavar="NAME", help="the environment to compare or change")
        _backend_options(p)
        p.add_argument("--full", action="store_true",
                       help="print long diffs in full (default: a diff of more than 20 changed lines, context "
                            "not counted, shows as its +added -removed line counts)")
        p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                       help=f"the output of `obsgen build` (default: {DEFAULT_OUT}); its files for the environment "
                            "are used as they are when its manifest shows them built from this spec by this "
                            "obsgen and unedited, else the spec is compiled")
        p.add_argument("--compile", action="store_true",
                       help="always compile the spec, whatever --out holds")
    diff = sub.choices["diff"]
    diff.add_argument("--format", choices=["text", "markdown", "json"], default="text",
                      help="text (default), markdown (e.g. for a pull-request comment) or json")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when there are changes")
    apply = sub.choices["apply"]
    apply.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    apply.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--prune", action="store_true", help="delete owned objects that left the spec")
    apply.add_argument("--force", action="store_true",
                       help="overwrite objects changed outside obsgen (Grafana version conflicts)")
    doctor = command("doctor", "Check every backend of an environment at once: URL, credentials, reachable, "
                               "and what apply needs; one line per check, with the fix.", _doctor,
                     EXAMPLES["doctor"])
    doctor.add_argument("--env", required=True, metavar="NAME", help="the environment whose backends to check")
    _backend_options(doctor)
    doctor.add_argument("--pushgateway", metavar="URL", type=url_type("--pushgateway"),
                        default=env_default("OBSGEN_PUSHGATEWAY_URL"),
                        help="also check this Pushgateway ($OBSGEN_PUSHGATEWAY_URL)")
    history = command("history", "List the applies and dry runs recorded in the local ledger.", _history,
                      EXAMPLES["history"])
    history.add_argument("--env", metavar="NAME",
                         help="only this environment (one of the spec's, or one the ledger has entries for)")
    history.add_argument("--limit", type=int, default=20, metavar="N", help="show the N latest entries (default: 20)")


def _backend_options(p: argparse.ArgumentParser) -> None:
    """The per-run endpoint overrides diff, apply and doctor share (flags, else OBSGEN_* variables)."""
    for kind, label in (("grafana", "Grafana"), ("prometheus", "Prometheus"), ("alertmanager", "Alertmanager")):
        variable = f"OBSGEN_{kind.upper()}_URL"
        p.add_argument(f"--{kind}-url", metavar="URL", type=url_type(f"--{kind}-url"), default=env_default(variable),
                       help=f"override the {label} URL (${variable})")
        if kind == "prometheus":
            p.add_argument("--prometheus-rules-dir", metavar="DIR",
                           help="override rules_dir ($OBSGEN_PROMETHEUS_RULES_DIR)")
    p.add_argument("--alertmanager-config-file", metavar="FILE",
                   help="override config_file ($OBSGEN_ALERTMANAGER_CONFIG_FILE)")
    p.add_argument("--only", action="append", default=[], choices=["grafana", "prometheus", "alertmanager"],
                   help="only this backend (repeatable; default: every backend of the environment)")


def _plan_text(report, plan, args: argparse.Namespace) -> str:  # noqa: ANN001 - obsgen.deploy.report, a Plan
    if args.quiet:  # the object lines and the summary: no diff bodies, so no hint about long ones either
        return "".join(line + "\n" for line in report.text(plan, args.env, full=True).splitlines()
                       if not line.startswith("    "))
    return report.text(plan, args.env, full=args.full or args.verbose, color=report.color_wanted(sys.stdout))


def _out(args: argparse.Namespace):  # noqa: ANN202 - a Path or None
    from pathlib import Path

    return None if args.compile else Path(args.out)


def _overrides(args: argparse.Namespace):
    from obsgen.deploy.session import Overrides

    env = Overrides.from_environ()
    return Overrides(**{f: getattr(args, f) or getattr(env, f) for f in Overrides.__dataclass_fields__})


def _diff(args: argparse.Namespace) -> int:
    from obsgen.deploy import report, state
    from obsgen.deploy.session import open_session

    from obsgen.deploy.session import unfinished_notes

    args.env = spec_environment(args)  # as the spec spells it: `Dev` is `dev`
    state.checked_env(args.env)
    session = open_session(args.spec, args.env, _overrides(args), tuple(args.only), out=_out(args))
    notes(unfinished_notes(args.env) + session.notes)
    if args.format == "text":
        sys.stdout.write(_plan_text(report, session.plan, args))
    else:
        sys.stdout.write(report.FORMATS[args.format](session.plan, args.env))
    changed = not session.plan.empty
    env = session.model.environment(args.env)
    if env.kubernetes is not None and not args.only:  # the Kubernetes resources, where a cluster is at hand
        from obsgen.deploy.kubernetes import cluster_diff

        if args.format != "text":
            notes([f"{env.name}: Kubernetes resources are compared in the text format only"])
        else:
            cluster = cluster_diff(session.model, env)
            notes([cluster.note] if cluster.note else [])
            sys.stdout.write(cluster.text)
            changed = changed or cluster.changed
    return EXIT_CHANGES if args.exit_code and changed else EXIT_OK


def _apply(args: argparse.Namespace) -> int:
    from obsgen.deploy import session as deploy
    from obsgen.errors import SpecError

    args.env = spec_environment(args)  # as the spec spells it, before the lock and the ledger use it
    run = deploy.Run(args.env, "dry-run" if args.dry_run else "apply")
    try:
        code = _run_apply(args, run)
    except (deploy.ApplyError, deploy.Terminated, ObsgenError) as exc:
        # an apply a signal stopped exits 128 + its number (143 SIGTERM, 129 SIGHUP, 130 Ctrl-C), after its
        # rollback; a ledger that could not record the end is a warning beside the error, never instead of it
        signum = getattr(exc, "signum", 0)
        if isinstance(exc, SpecError) or not (signum or run.ledger_problem):
            raise
        print(error_line(exc), file=sys.stderr)
        _ledger_warning(run)
        return 128 + signum if signum else EXIT_ERROR
    _ledger_warning(run)
    return code


def _ledger_warning(run) -> None:  # noqa: ANN001 - an obsgen.deploy.session.Run
    if run.ledger_problem:
        print(f"obsgen: warning: the ledger did not record the end of this apply ({run.result}): "
              f"{run.ledger_problem}", file=sys.stderr)


def _run_apply(args: argparse.Namespace, run) -> int:  # noqa: ANN001 - an obsgen.deploy.session.Run
    from obsgen.deploy import report
    from obsgen.deploy import session as deploy
    from obsgen.deploy.plan import DELETE

    with run:
        session = deploy.open_session(args.spec, args.env, _overrides(args), tuple(args.only), run=run, out=_out(args))
        notes(run.notes + session.notes)
        sys.stdout.write(_plan_text(report, session.plan, args))
        if session.plan.empty:
            run.result = "no-changes"
            return EXIT_OK
        if args.dry_run:
            run.result = "planned"
            return EXIT_OK
        skipped = len(session.plan.of(DELETE)) if not args.prune else 0
        if skipped:
            print(f"{plural(skipped, 'owned object')} left the spec; not deleted without --prune")
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
                return EXIT_NOT_DONE
        run.applied = deploy.apply(session, prune=args.prune, force=args.force)
        run.result = "ok"
        for line in session.after:
            print(line)
    print(f"{args.env}: applied {plural(len(run.applied), 'change')}.")
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    from obsgen.deploy import doctor
    from obsgen.spec import load_spec

    model = load_spec(args.spec)
    env = environment(model, args.env)
    sources = {name: f"${value.variable}" if getattr(value, "variable", "") else f"--{name}-url"
               for name, value in (("grafana", args.grafana_url), ("prometheus", args.prometheus_url),
                                   ("alertmanager", args.alertmanager_url), ("pushgateway", args.pushgateway))}
    sources["pushgateway"] = sources["pushgateway"].removesuffix("-url")
    result = doctor.run(model, env, _overrides(args), tuple(args.only), args.pushgateway, sources)
    for check in result.checks:
        print(check)
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_ERROR


def _history(args: argparse.Namespace) -> int:
    from obsgen.deploy import ledger, state

    if args.env:
        args.env = state.checked_env(_known_environment(args))
    if args.limit < 1:
        raise ObsgenError(f"--limit must be at least 1, not {args.limit}")
    entries = ledger.history(state.ledger_path(), args.env, args.limit)
    if not entries:
        print("No applies recorded" + (f" for {args.env}." if args.env else "."))
    for e in entries:
        done = f"  applied {len(e.changes)} of {len(e.planned)}" if e.mode == "apply" and e.planned else ""
        # every field as recorded, made safe: a row may hold server text (an error) or a crafted value
        print(safe(f"{e.at}  {e.env:<8} {e.mode:<8} {e.result:<17} {e.who:<10} spec {e.spec_sha256[:12]}  "
                   f"{e.summary}{done}", lines=False) + (f"\n    error: {safe(e.error, lines=False)}" if e.error else ""))
        for line in _history_details(e) if args.verbose else ():
            print(f"    {safe(line, lines=False)}")
    return EXIT_OK


def _history_details(e) -> list[str]:  # noqa: ANN001 - an obsgen.deploy.ledger.Entry
    """`history -v`: where the run went, then its changes as the apply printed them, each said as done,
    planned (a dry run, or an apply that never recorded its end) or not applied."""
    if e.targets is None:
        lines = ["targets not recorded"]  # an entry from before obsgen recorded them
    else:
        went = ", ".join(f"{kind} {url}" for kind, url in e.targets.items())
        lines = [f"targets: {went or 'none (no backend was reached)'}"]
    if e.mode != "apply" or e.result in ("started", "interrupted"):
        return lines + [f"planned: {title}" for title in e.planned]
    done = "applied, then restored" if e.result == "rolled-back" else "applied"
    return (lines + [f"{done}: {title}" for title in e.changes]
            + [f"not applied: {title}" for title in e.planned if title not in e.changes])


def _known_environment(args: argparse.Namespace) -> str:
    """`--env` as the environment it names, of the spec or of those the ledger has entries for (an
    environment since removed from the spec still has its history); resolved like every --env
    (obsgen.errors.known_name: `Dev` is `dev`)."""
    from obsgen.deploy import ledger, state
    from obsgen.errors import known_name

    known: list[str] = []
    try:
        from obsgen.spec import load_spec

        known = [e.name for e in load_spec(args.spec).environments]
    except (ObsgenError, OSError):
        pass  # no readable spec here: the ledger alone decides
    recorded = {e.env for e in ledger.history(state.ledger_path(), None, 10_000)}
    names = known + sorted(recorded - set(known))
    return known_name("environment", args.env, names, f"the spec defines: {', '.join(known) or 'none readable'}"
                      + (f"; the ledger has: {', '.join(sorted(recorded))}" if recorded else ""))
