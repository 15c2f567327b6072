"""Where the live side keeps its local state: one lock per environment and the ledger.

Both live under the state directory (`obsgen.files.state_dir`: $OBSGEN_STATE_DIR, else
$XDG_STATE_HOME/obsgen, else ~/.local/state/obsgen). Environment names are validated before
they become part of a path, so `--env ../x` can never reach outside it.
"""
from __future__ import annotations

import fcntl
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from obsgen.errors import ObsgenError
from obsgen.files import state_dir


class Refused(ObsgenError):
    """obsgen declined to start an apply: another apply holds the lock, or no confirmation was possible."""


ENV_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")  # the spec's id pattern, matched in full


def checked_env(env: str) -> str:
    if not ENV_NAME.fullmatch(env):
        raise ObsgenError(f"{env!r} is not a valid environment name (lower case letters, digits and '-')")
    return env


def ledger_path() -> Path:
    return state_dir() / "ledger.sqlite"


def lock_path(env: str) -> Path:
    return state_dir() / f"{checked_env(env)}.lock"


@contextmanager
def env_lock(env: str) -> Iterator[None]:
    """Hold the environment's apply lock, or fail at once when another obsgen holds it."""
    path = lock_path(env)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "w")
    except OSError as exc:
        raise ObsgenError(f"cannot create the lock {path}: {exc.strerror} (set OBSGEN_STATE_DIR to a writable "
                          f"directory)") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Refused(f"another obsgen apply to {env} is running (lock {path})") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
