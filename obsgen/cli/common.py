"""What every command shares: defaults, exit codes, and small printing helpers."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from obsgen.errors import ObsgenError

DEFAULT_SPEC = "specs/selftest.yaml"
DEFAULT_OUT = "generated"
EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
# 3: nothing was done, by rule or by choice, and that is not an error: `apply` declined at its prompt;
# `emit` of a report older than the newest run the target counted (a late report, not counted).
EXIT_NOT_DONE = 3

# command(name, help, handler, examples) -> the subcommand's parser, with --spec already added
Command = Callable[[str, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


ERROR_LINE_MAX = 2000  # characters of one line of an error obsgen prints at most


def safe(text: object, *, lines: bool = True) -> str:
    """Text made safe for the terminal: control characters (terminal escapes, \\r, \\b) escaped, each line
    cut to ERROR_LINE_MAX characters; `lines=False` escapes line breaks too (one line, whatever it holds).
    The last line of defence for server text, wherever it came from."""
    from obsgen.deploy.wire import shown

    return shown(str(text), ERROR_LINE_MAX, lines=lines)


def error_line(exc: object) -> str:
    """`obsgen: error: ...` for an error, its text made safe (see `safe`)."""
    return f"obsgen: error: {safe(exc)}"


def plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def environment(model, name: str):  # noqa: ANN001, ANN201 - an obsgen.model Model and Environment
    """The spec's environment `name` means: exactly, else ignoring case when only one matches; else an error
    with the closest name and the spec's names (obsgen.errors.known_name, as for every --env)."""
    from obsgen.errors import known_name

    return model.environment(known_name("environment", name, [e.name for e in model.environments]))


def tier(model, name: str) -> str:  # noqa: ANN001 - an obsgen.model Model
    """The id of the spec's tier `name` means, resolved as `environment` resolves an environment."""
    from obsgen.errors import known_name

    return known_name("tier", name, [t.id for t in model.tiers])


def spec_environment(args: argparse.Namespace) -> str:
    """`--env` as the name of one of the spec's environments (see `environment`), for a command that must
    know it before it compiles: the spec is loaded here, so a spec with problems fails here."""
    from obsgen.spec import load_spec

    return environment(load_spec(args.spec), args.env).name


class FromEnv(str):
    """An option's default read from an environment variable: a check of it names the variable."""

    variable = ""

    @property
    def origin(self) -> str:
        """Where the value came from, for an error about it (obsgen.spec.source reads it of a spec path)."""
        return f"from ${self.variable}"


class Default(str):
    """An option's built-in default, which the user did not choose: an error about it says how to choose."""

    origin = ""


def spec_default() -> str:
    """`--spec`'s default: $OBSGEN_SPEC (when set and not empty), else DEFAULT_SPEC; either remembers where it
    came from, so that a spec that cannot be read says so."""
    default = env_default("OBSGEN_SPEC")
    if default is not None:
        return default
    builtin = Default(DEFAULT_SPEC)
    builtin.origin = "the default; give --spec FILE or set $OBSGEN_SPEC"
    return builtin


def given(value: object) -> bool:
    """Whether an option's value was given on the command line (not a FromEnv or Default default)."""
    return not isinstance(value, (FromEnv, Default))


def env_default(variable: str) -> FromEnv | None:
    """The value of `variable` as an option's default (None when unset or empty); argparse passes a string
    default through the option's `type` only when the option is not given, so `url_type` checks it then."""
    import os

    value = os.environ.get(variable)
    if not value:
        return None
    default = FromEnv(value)
    default.variable = variable
    return default


def url_type(flag: str) -> Callable[[str], str]:
    """argparse `type=` for a URL option: the URL, checked like every URL obsgen is given
    (obsgen.deploy.access.checked_url). A mistake is one line naming the flag -- or the environment variable
    the default came from -- and exit 2, like every usage error, without argparse's usage block."""

    def url(value: str) -> str:
        from obsgen.deploy.access import checked_url

        try:
            checked_url(str(value), getattr(value, "variable", "") or flag)
        except ObsgenError as exc:
            print(error_line(exc), file=sys.stderr)
            raise SystemExit(EXIT_ERROR) from None
        return value  # a default keeps its FromEnv: what reads it can say where it came from

    url.__name__ = "URL"
    return url


def notes(lines: list[str]) -> None:
    for note in lines:
        print(f"obsgen: note: {safe(note)}", file=sys.stderr)
