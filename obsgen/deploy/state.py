"""Where the live side keeps its local state: one lock per environment, one per shared target, the ledger.

An environment's lock stops two applies to the same environment. A target's lock stops two writers of
one shared thing -- an Alertmanager config file that dev and staging both name, a Mimir tenant's
Alertmanager config -- from interleaving their read-modify-write, whichever environment each applies.
All live under the state directory (`obsgen.output.files.state_dir`: $OBSGEN_STATE_DIR, else
$XDG_STATE_HOME/obsgen, else ~/.local/state/obsgen). Environment names are validated before
they become part of a path, so `--env ../x` can never reach outside it. A state directory that cannot be
used (`state_dir_problem`) is one error naming $OBSGEN_STATE_DIR wherever the ledger or a lock is needed
(history, apply), and a note where only the drift check's stamp, a speed-up, lives there (build, check).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from obsgen.errors import ObsgenError
from obsgen.output.files import state_dir


class Refused(ObsgenError):
    """obsgen declined to start an apply: another apply holds the lock, or no confirmation was possible."""


ENV_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")  # the spec's id pattern, matched in full


def checked_env(env: str) -> str:
    if not ENV_NAME.fullmatch(env):
        raise ObsgenError(f"{env!r} is not a valid environment name (lower case letters, digits and '-')")
    return env


def state_dir_problem() -> str | None:
    """Why the state directory cannot be used -- it is not a directory, it cannot be read and written, or
    (not there yet) it cannot be created -- naming where its path came from; None when it can be. Nothing
    is created: a command that only reads (history) must not leave a directory behind."""
    path = state_dir()
    where = f"the state directory {path} ({_origin()})"
    fix = "set OBSGEN_STATE_DIR to a directory obsgen can create, read and write"
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            what = "a file" if path.is_file() else "a broken symlink" if path.is_symlink() else "not a file"
            return f"{where} is {what}, not a directory; {fix}"
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            return f"{where} cannot be read and written (permission denied); {fix}"
        return None
    parent = path.parent
    while not (parent.exists() or parent.is_symlink()) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{where} cannot be created: {parent} is a file, not a directory; {fix}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{where} cannot be created: {parent} cannot be written (permission denied); {fix}"
    return None


def _origin() -> str:
    """Where the state directory's path came from, as the user can change it."""
    if os.environ.get("OBSGEN_STATE_DIR"):
        return "$OBSGEN_STATE_DIR"
    if os.environ.get("XDG_STATE_HOME"):
        return "$XDG_STATE_HOME/obsgen"
    return "the default, as $OBSGEN_STATE_DIR is not set"


def usable_state_dir() -> Path:
    """The state directory, or one clear error naming $OBSGEN_STATE_DIR when it cannot be used (see
    `state_dir_problem`): the ledger and the locks are never silently skipped."""
    problem = state_dir_problem()
    if problem:
        raise ObsgenError(problem)
    return state_dir()


def ledger_path() -> Path:
    """The ledger's file; an unusable state directory is an error here, before any request is made."""
    return usable_state_dir() / "ledger.sqlite"


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


TARGET_WAIT = 30.0  # seconds an apply waits for another obsgen to finish with a shared target


def target_lock_path(key: str) -> Path:
    """The lock file of one shared target: named by a digest of its key, so any key is a safe file name."""
    return state_dir() / "targets" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.lock"


def file_target(path: str | os.PathLike[str]) -> str:
    """The key of a shared file: its real path, so a symlink and the file it names are one target."""
    return f"file:{os.path.realpath(path)}"


def tenant_target(url: str, tenant: str | None) -> str:
    """The key of a Mimir tenant's config: the endpoint and the tenant (X-Scope-OrgID)."""
    return f"tenant:{url.rstrip('/')}#{tenant or ''}"


@contextmanager
def target_lock(key: str, what: str, holder: str, wait: float | None = None) -> Iterator[None]:
    """Hold the lock of one shared target (`file_target`, `tenant_target`) across a read-modify-write.

    Another obsgen holding it (an apply to another environment writing the same file) is waited for, at
    most `wait` seconds (default TARGET_WAIT), then refused with who holds it: the holder writes `holder`
    and its pid into the lock file. The lock is an flock, so a holder that dies -- even by SIGKILL --
    releases it with its last file descriptor; a stale description left in the file is never trusted."""
    path = target_lock_path(key)
    wait = TARGET_WAIT if wait is None else wait
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+")
    except OSError as exc:
        raise ObsgenError(f"cannot create the lock {path}: {exc.strerror} (set OBSGEN_STATE_DIR to a writable "
                          f"directory)") from None
    with fh:
        end = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= end:
                    fh.seek(0)
                    held = " ".join(fh.read(300).split()) or "another obsgen"
                    raise Refused(f"{what} is in use by another obsgen (held by {held}); waited {wait:g} s, "
                                  f"nothing was written (lock {path})") from None
                time.sleep(0.05)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{holder}, pid {os.getpid()}\n")
            fh.flush()
            yield
        finally:
            try:
                fh.seek(0)
                fh.truncate()
            except OSError:
                pass
            fcntl.flock(fh, fcntl.LOCK_UN)
