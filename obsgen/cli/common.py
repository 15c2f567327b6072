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


def environment(model, name: str):  # noqa: ANN001, ANN201
    try:
        return model.environment(name)
    except KeyError:
        raise ObsgenError(f"unknown environment {name!r} (the spec defines: "
                          f"{', '.join(e.name for e in model.environments)})") from None


class FromEnv(str):
    """An option's default read from an environment variable: a check of it names the variable."""

    variable = ""


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
