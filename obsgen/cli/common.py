"""What every command shares: defaults, exit codes, and small printing helpers."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from obsgen.errors import ObsgenError

DEFAULT_SPEC = "specs/selftest.yaml"
DEFAULT_OUT = "generated"
EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2

# command(name, help, handler, examples) -> the subcommand's parser, with --spec already added
Command = Callable[[str, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def environment(model, name: str):  # noqa: ANN001, ANN201
    try:
        return model.environment(name)
    except KeyError:
        raise ObsgenError(f"unknown environment {name!r} (the spec defines: "
                          f"{', '.join(e.name for e in model.environments)})") from None


def notes(lines: list[str]) -> None:
    for note in lines:
        print(f"obsgen: note: {note}", file=sys.stderr)
