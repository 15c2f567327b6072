"""The command line: parse, call the library, print, choose the exit code.

Exit codes: 0 ok, 1 drift or changes found, 2 error (bad spec, bad usage, backend failure).
Each group of commands lives in its own module (spec_commands, live_commands,
run_commands) with its options, examples and handlers; heavy libraries are
imported inside the handlers, so `obsgen check` starts fast.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from obsgen import __version__
from obsgen.cli import live_commands, run_commands, spec_commands
from obsgen.cli.common import DEFAULT_SPEC, EXIT_ERROR, error_line, plural, safe, spec_default
from obsgen.errors import ObsgenError, SpecError


# what a spec with problems kept a command from doing, said after them; a command that only reads (validate,
# check, diff, verify, ...) says nothing of the kind: it would have written nothing anyway
NOT_DONE = {"build": "; nothing was written", "apply": "; nothing was applied"}


# What -q and -v do, command by command (help, or None where the command has no use for one): each
# offers only what it does, so that `--help` is true to it; a command without one never sees it.
QUIET_VERBOSE: dict[str, tuple[str | None, str | None]] = {
    "validate": (None, None),
    "build": ("print only the summary (and files kept), not a line per file written or removed", None),
    "check": ("print only the drifted (with +added -removed counts), missing and extra files and the summary: "
              "no diff (as --stat)", "print the whole diff, however long (as --full)"),
    "verify": (None, "list every passing test case too"),
    "docs": (None, None),
    "doctor": (None, None),
    "diff": ("print only the changed objects and the summary, no diff bodies (text format)",
             "print every diff in full, however long (as --full)"),
    "apply": ("print only the changed objects and the summary, no diff bodies",
              "print every diff in full, however long (as --full)"),
    "history": (None, "also list each entry's changes and the URL of every backend it went to"),
    "emit": (None, None),
    "drill": ("print only what was confirmed and the result, not the progress while waiting", None),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obsgen",
        description="Compile one selftest observability spec into Grafana dashboards, OpenSLO documents, "
                    "Prometheus rules and Alertmanager routing.",
        epilog="examples:\n  obsgen validate\n  obsgen build\n  obsgen check\n\n"
               "exit codes: 0 ok, 1 drift or changes found, 2 error, 3 nothing done and no error\n"
               "(apply declined at its prompt; emit of a report older than the last run counted)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"obsgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_: str, func: Callable[[argparse.Namespace], int],
                examples: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, epilog=examples,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--spec", default=spec_default(),
                       help=f"spec file: .yaml, .json or .jsonnet (default: $OBSGEN_SPEC or {DEFAULT_SPEC})")
        quiet, verbose = QUIET_VERBOSE[name]
        both = p.add_mutually_exclusive_group() if quiet and verbose else p
        if quiet:
            both.add_argument("-q", "--quiet", action="store_true", help=quiet)
        if verbose:
            both.add_argument("-v", "--verbose", action="store_true", help=verbose)
        p.set_defaults(func=func, quiet=False, verbose=False)
        return p

    for module in (spec_commands, live_commands, run_commands):
        module.register(command, sub)
    return parser


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
            print(safe(problem), file=sys.stderr)
        print(f"obsgen: {plural(len(exc.problems), 'problem')} in {args.spec}{NOT_DONE.get(args.command, '')}",
              file=sys.stderr)
        return EXIT_ERROR
    except ObsgenError as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("obsgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 -- a bug must still end as one line and exit 2, never exit 1
        if os.environ.get("OBSGEN_DEBUG"):
            raise
        print(f"obsgen: internal error: {type(exc).__name__}: {safe(exc)} (this is a bug in obsgen; run again with "
              f"OBSGEN_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_ERROR
