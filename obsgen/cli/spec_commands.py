"""Commands on the spec and the output directory: validate, build, check, verify, docs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

from obsgen.cli.common import DEFAULT_OUT, EXIT_CHANGES, EXIT_OK, Command, notes, plural
from obsgen.errors import ObsgenError

DIFF_LINES = 40  # `check` summarises a longer diff unless --full

EXAMPLES = {
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
  obsgen check --stat                     # only the drifted files, with +added -removed line counts
  obsgen check --full                     # the whole diff, however long
  obsgen check --out docs/observability   # a directory that also holds other files, first built with
                                          #   obsgen build --out docs/observability --allow-nonempty

Drift is checked inside each environment tree (<out>/<env>/): a file there that obsgen did not write
is reported as extra (exit 1); files elsewhere under --out (e.g. <out>/README.md) are neither checked
nor touched. A diff of more than 40 changed lines (context and manifest.json's hash lines not counted)
is summarised: each drifted file with its +added -removed counts, then the first 40 lines of the diff,
manifest.json's hash lines counted, not shown (--full prints all of it).""",
    "verify": """examples:
  obsgen verify                           # every environment's generated rule and routing tests
  obsgen verify --env prod -v             # one environment, listing every passing case too
  obsgen verify --jobs 1                  # one promtool at a time (default: one per CPU)""",
    "docs": """examples:
  obsgen docs --env prod                  # print prod's alert catalog (generated/prod/docs/alerts.md)
  obsgen docs --env dev > alerts-dev.md""",
}


def register(command: Command, sub: argparse._SubParsersAction) -> None:
    command("validate", "Check a spec and report every problem as file:line:col.", _validate, EXAMPLES["validate"])
    for name, help_, func in (("build", "Compile the spec into the output directory.", _build),
                              ("check", "Fail with a diff when the output directory does not match the spec.",
                               _check)):
        p = command(name, help_, func, EXAMPLES[name])
        p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
        p.add_argument("--env", action="append", default=[], metavar="NAME",
                       help="only this environment (repeatable; default: all)")
    sub.choices["build"].add_argument(
        "--allow-nonempty", action="store_true",
        help="build into a non-empty directory that holds no obsgen manifest (e.g. --out . in a repository); "
             "files obsgen did not write are never removed")
    sub.choices["check"].add_argument(
        "--no-cache", action="store_true",
        help="always recompile (by default an unchanged spec, generator and output is known clean from the "
             "last build or check, recorded in the state directory, $OBSGEN_STATE_DIR)")
    shown = sub.choices["check"].add_mutually_exclusive_group()
    shown.add_argument("--stat", action="store_true",
                       help="list the drifted files with their +added -removed line counts, without the diff")
    shown.add_argument("--full", action="store_true",
                       help=f"print the whole diff (by default a diff of more than {DIFF_LINES} changed lines is "
                            f"summarised: per-file counts, then its first {DIFF_LINES} lines, manifest.json's "
                            f"hash lines counted, not shown)")
    verify = command("verify", "Run the generated rule tests (promtool) and routing tests (amtool, inhibition).",
                     _verify, EXAMPLES["verify"])
    verify.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    verify.add_argument("--jobs", type=_jobs, default=0, metavar="N",
                        help="run N promtool processes at a time (default: one per CPU)")
    verify.add_argument("--env", action="append", default=[], metavar="NAME",
                        help="only this environment (repeatable; default: every environment in the output)")
    docs = command("docs", "Print the alert catalog of an environment (as generated into <out>/<env>/docs/).",
                   _docs, EXAMPLES["docs"])
    docs.add_argument("--env", action="append", default=[], metavar="NAME",
                      help="only this environment (repeatable; default: all)")


def _validate(args: argparse.Namespace) -> int:
    from obsgen.compile.conventions import slo_notes
    from obsgen.spec import load_spec

    model = load_spec(args.spec)
    notes(slo_notes(model))
    counts = ", ".join(plural(n, what) for n, what in (
        (len(model.steps), "step"), (len(model.environments), "environment"), (len(model.slos), "SLO"),
        (len(model.alerts), "alert"), (len(model.dashboards), "dashboard")))
    print(f"{args.spec}: OK ({counts})")
    return EXIT_OK


def _build(args: argparse.Namespace) -> int:
    from obsgen.compile.conventions import slo_notes
    from obsgen.generate import build

    unusable = _unusable_state("the next check compares every file (no stamp of this build can be kept)")
    result, report = build(args.spec, Path(args.out), args.env, allow_nonempty=args.allow_nonempty)
    notes(slo_notes(result.model) + unusable)
    for path in report.written if not args.quiet else ():
        print(f"wrote   {Path(args.out, path).as_posix()}")
    for path in report.removed if not args.quiet else ():
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

    try:
        _output_directory(args.out)
    except ObsgenError:
        from obsgen.generate import compile_spec

        compile_spec(args.spec, args.env)  # a spec's own problems come first
        raise
    unusable = _unusable_state("the check compared every file (its stamp, a speed-up only, cannot be kept)")
    notes(unusable)
    files, drift = check(args.spec, Path(args.out), args.env, fast=not (args.no_cache or unusable))
    if drift.clean:
        print(f"obsgen check: {args.out}/ matches {args.spec} ({files} files)")
        return EXIT_OK
    shown = _summary(drift.changed)
    summarise = args.stat or args.quiet or (shown.changed > DIFF_LINES and not (args.full or args.verbose))
    _print_drifted(args.out, drift.changed, summarise)
    for path in drift.missing:
        print(f"missing: {Path(args.out, path).as_posix()}")
    for path in drift.extra:
        print(f"extra:   {Path(args.out, path).as_posix()} (written by obsgen, no longer produced by the spec)")
    for path in drift.foreign:
        print(f"extra:   {Path(args.out, path).as_posix()} (not written by obsgen; "
              f"move it out of {Path(args.out, path.split('/', 1)[0]).as_posix()}/ or delete it)")
    if summarise and not (args.stat or args.quiet):
        _print_diff_head(args.out, shown)
    count = len(drift.changed) + len(drift.missing) + len(drift.extra)
    if count:
        print(f"obsgen check: {plural(count, 'file')} out of date in {args.out}/; "
              f"run `obsgen build` to regenerate", file=sys.stderr)
    if drift.foreign:
        it = "it" if len(drift.foreign) == 1 else "them"
        print(f"obsgen check: {plural(len(drift.foreign), 'file')} not written by obsgen inside the environment "
              f"directories of {args.out}/; move {it} elsewhere or delete {it} (`obsgen build` never removes "
              f"{it})", file=sys.stderr)
    return EXIT_CHANGES


def _print_drifted(out: str, changed: tuple[tuple[str, str], ...], summarise: bool) -> None:
    """Each drifted file then its diff; or, summarised, each drifted file with its +added -removed counts."""
    from obsgen.output.tree import diff_stat

    names = [Path(out, path).as_posix() for path, _ in changed]
    width = max(map(len, names), default=0)
    for name, (_, diff) in zip(names, changed):
        if summarise:
            added, removed = diff_stat(diff)
            print(f"drifted: {name:<{width}}  +{added} -{removed}")
        else:
            print(f"drifted: {name}")
            sys.stdout.write(diff)


class _Summary(NamedTuple):
    lines: list[str]  # the diffs, each manifest.json's without its hash lines
    hashes: list[tuple[str, int]]  # (manifest.json, its hash lines left out of `lines`)
    changed: int  # added and removed lines in `lines`: what the summary limit counts


def _summary(changed: tuple[tuple[str, str], ...]) -> _Summary:
    """The diffs as a summary shows them: a manifest.json's changed hash lines (a digest per file, which
    changes with every file that does) are counted, not shown; the files' own changes are the news."""
    from obsgen.output.tree import diff_stat, without_hash_lines

    lines: list[str] = []
    hashes: list[tuple[str, int]] = []
    count = 0
    for path, diff in changed:
        if path.endswith("/manifest.json"):
            diff, hidden = without_hash_lines(diff)
            if hidden:
                hashes.append((path, hidden))
        lines += diff.splitlines(keepends=True)
        count += sum(diff_stat(diff))
    return _Summary(lines, hashes, count)


def _print_diff_head(out: str, shown: _Summary) -> None:
    """The first DIFF_LINES lines of the diffs, the manifests' hash lines counted, and how many more lines."""
    sys.stdout.write("".join(shown.lines[:DIFF_LINES]))
    for path, hidden in shown.hashes:
        print(f"{Path(out, path).as_posix()}: {plural(hidden, 'hash line')} changed (not shown)")
    more = len(shown.lines) - DIFF_LINES
    if more > 0:
        print(f"... {plural(more, 'more diff line')} not shown: `obsgen check --full` prints the whole diff, "
              f"`obsgen check --stat` only the counts")


def _output_directory(out: str) -> None:
    """A drift check of a directory that is not there is a mistake (a typo, the wrong working directory),
    not a tree with every file missing."""
    import shlex

    path = Path(out)
    if path.is_dir():
        return
    if path.exists():
        raise ObsgenError(f"{out}: a file, not a directory (give the right --out)")
    raise ObsgenError(f"{out}: no such directory (run obsgen build --out {shlex.quote(out)} first, or give the "
                      f"right --out)")


def _unusable_state(consequence: str) -> list[str]:
    """A note when the state directory cannot be used: build and check keep only their stamp there, a
    speed-up, so they go on without it (the commands that keep the ledger or a lock there stop instead)."""
    from obsgen.deploy.state import state_dir_problem

    problem = state_dir_problem()
    return [f"{problem}; {consequence}"] if problem else []


def _verify(args: argparse.Namespace) -> int:
    from obsgen.run.verify import verify

    out = Path(args.out)
    envs = _environments_to_verify(args, out)
    if not envs:
        raise ObsgenError(f"no generated environments in {out}/: run `obsgen build` first")
    counts: dict[tuple[str, str], list[int]] = {}
    passed = failed = 0
    for outcome in verify(out, envs, args.jobs):
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


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def _environments_to_verify(args: argparse.Namespace, out: Path) -> list[str]:
    """The environments to verify, in the spec's order (those it does not define last): the --env ones, each
    an environment of the spec or of the output (resolved like every --env: `Dev` is `dev`), else every one
    in the output. Verify checks the files in the output; the spec gives the names and their order, and a
    spec with problems fails here as it fails `validate`. A spec nobody named with --spec whose file does not
    exist (verify of an output beside no spec) leaves the output's environments, alphabetically."""
    import os

    from obsgen.cli.common import given
    from obsgen.errors import known_name
    from obsgen.spec import load_spec

    built = sorted({p.parent.name for p in out.glob("*/manifest.json")})
    if given(args.spec) or os.path.exists(args.spec):
        order = [e.name for e in load_spec(args.spec).environments]
        listed = f"the spec defines: {', '.join(order)}"
    else:
        order, listed = [], f"no spec: {args.spec} does not exist"
    others = [env for env in built if env not in order]
    if others:
        listed += f"; {out}/ {'also ' if order else ''}has: {', '.join(others)}"
    if not args.env:
        envs = built
    elif not order and not built:
        envs = []  # nothing to name them by, and nothing built: the caller says to build
    else:
        envs = [known_name("environment", env, order + others, listed) for env in args.env]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(dict.fromkeys(envs), key=lambda env: (rank.get(env, len(rank)), env))


def _docs(args: argparse.Namespace) -> int:
    from obsgen.generate import compile_spec

    build = compile_spec(args.spec, args.env, only=("docs",))
    docs = [a for a in build.artifacts if "/docs/" in a.path]
    for i, artifact in enumerate(docs):
        if len(docs) > 1:
            print(f"{'' if i == 0 else chr(10)}<!-- {artifact.path} -->")
        sys.stdout.write(artifact.content.decode())
    return EXIT_OK
