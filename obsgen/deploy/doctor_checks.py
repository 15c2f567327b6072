"""`obsgen doctor`'s checks that need no request: the token, the rules directory, the Alertmanager config
file and Mimir's secret files -- each looked at the way diff and apply will use it, so that a path or file
they would refuse (not under OBSGEN_SECRET_DIRS / OBSGEN_WRITE_DIRS, not a regular file, too large) fails
here first, with the fix. Nothing is written; a file is opened without blocking and read within a bound.
"""
from __future__ import annotations

import errno
import getpass
import os
import stat
from pathlib import Path

from obsgen.deploy import access
from obsgen.deploy.checks import Checks
from obsgen.deploy.http import MAX_ANSWER
from obsgen.model import Backend as BackendSpec
from obsgen.model import Environment

CONFIG_FILE_MAX = MAX_ANSWER  # bytes of an Alertmanager config file doctor reads at most


def token(checks: Checks, env: Environment, spec: BackendSpec) -> None:
    """Is the token named by the spec there, and can it be sent? Read as `access.credential` reads it."""
    name = checks.backend.rsplit(" (", 1)[0]
    if spec.token_env:
        value = os.environ.get(spec.token_env, "").strip()
        if not value:
            checks.fail("token", f"environment variable {spec.token_env} is not set",
                        f"export {spec.token_env}=<the {name} token> where obsgen runs", halt=True)
            return
        try:
            access.header_safe(value, spec.token_env, checks.backend)
        except access.AccessError as exc:
            checks.fail("token", _bare(exc.problem, checks), exc.fix, halt=True)
            return
        checks.ok("token", f"{spec.token_env} is set")
        return
    who = f"{spec.kind} ({env.name})"
    try:
        value = access.read_secret(spec.token_file, who, "token_file", "token")
        access.header_safe(value, f"token_file {spec.token_file}", who)
    except access.AccessError as exc:
        problem = exc.problem.removeprefix(f"{who}: ")
        fix = exc.fix or f"write the {name} token to {spec.token_file}" + (
            f", readable by {user()}, or name another file in the spec's token_file"
            if problem.startswith("cannot read") else "")
        checks.fail("token", problem, fix, halt=True)
        return
    checks.ok("token", f"token_file {spec.token_file} is readable")


def rules_dir(checks: Checks, path: str, operator: bool) -> None:
    """The rules directory: under OBSGEN_WRITE_DIRS when the spec names it, a writable directory."""
    if not operator and not _writable(checks, "rules_dir", path, "--prometheus-rules-dir", directory=True):
        return
    where = Path(path)
    if not where.is_dir():
        what = "is not a directory" if where.exists() else "does not exist"
        checks.fail("rules_dir", f"{where} {what}",
                    f"create it where Prometheus's rule_files globs look (mkdir -p {where}), or pass "
                    f"--prometheus-rules-dir")
    elif not os.access(where, os.W_OK | os.X_OK):
        checks.fail("rules_dir", f"{where} is not writable by {user()}",
                    f"let {user()} write {where} (chown or chmod), or pass --prometheus-rules-dir")
    else:
        checks.ok("rules_dir", f"{where} exists and is writable")


def config_file(checks: Checks, path: str, operator: bool) -> None:
    """The Alertmanager config file: under OBSGEN_WRITE_DIRS when the spec names it; a regular file of a
    bounded size (a FIFO would hang the read, /dev/zero fill memory) holding a YAML mapping, in a
    directory obsgen can write."""
    import yaml

    if not operator and not _writable(checks, "config_file", path, "--alertmanager-config-file"):
        return
    where = Path(path)
    fix_path = "point the spec's config_file (or --alertmanager-config-file) at the file Alertmanager runs " \
               "with (its --config.file)"
    try:
        content = _read_bounded(where, CONFIG_FILE_MAX)
    except FileNotFoundError:
        checks.fail("config_file", f"{where} does not exist", fix_path)
        return
    except _NotRegular:
        checks.fail("config_file", f"{where} is not a regular file", fix_path)
        return
    except _TooLarge:
        checks.fail("config_file", f"{where} is larger than {CONFIG_FILE_MAX >> 20} MiB", fix_path)
        return
    except OSError as exc:
        checks.fail("config_file", f"cannot read {where}: {exc.strerror}",
                    fix_path if exc.errno == errno.EISDIR else f"let {user()} read and write {where}")
        return
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError:
        document = []
    if document is not None and not isinstance(document, dict):
        checks.fail("config_file", f"{where} is not a YAML mapping", "fix it: obsgen merges its part into it")
        return
    directory = where.parent
    if not os.access(directory, os.W_OK | os.X_OK):
        checks.fail("config_file", f"{where} is readable, but {user()} cannot write in {directory} (obsgen "
                                   f"replaces the file atomically)", f"let {user()} write {directory}")
        return
    checks.ok("config_file", f"{where} is readable and its directory writable")


def secret_files(checks: Checks, env: Environment, spec: BackendSpec, url: str | None) -> None:
    """Mimir refuses *_file secrets, so obsgen reads them and sends their values: only from under
    OBSGEN_SECRET_DIRS, only regular files of a bounded size, and only to an endpoint the operator allows."""
    paths = sorted({p for target in env.channels for p in (target.routing_key_file, target.api_url_file) if p})
    if not paths:
        return
    problems = 0
    try:  # with a token, the token check has said whether the endpoint may have secrets
        if not (spec.token_env or spec.token_file):
            access.require_allowed(spec, env.name, url, "the config's inline secrets")
    except access.AccessError as exc:
        checks.fail("secret files", exc.problem.removeprefix(f"{spec.kind} ({env.name}): "), exc.fix)
        problems += 1
    for path in paths:
        try:
            access.read_secret(path, checks.backend)
        except access.AccessError as exc:
            problem = _bare(exc.problem, checks)
            checks.fail("secret files", problem, exc.fix or (f"let {user()} read {path}" if problem.startswith(
                "cannot read") else f"write the secret to {path}"))
            problems += 1
    if not problems:
        checks.ok("secret files", f"{len(paths)} secret file{'s' if len(paths) > 1 else ''} readable under "
                                  f"{access.SECRET_DIRS}")


def _writable(checks: Checks, what: str, path: str, flag: str, directory: bool = False) -> bool:
    try:
        access.writable_path(path, checks.backend, what, flag, directory=directory)
    except access.AccessError as exc:
        checks.fail(what, _bare(exc.problem, checks), exc.fix)
        return False
    return True


class _NotRegular(OSError):
    pass


class _TooLarge(OSError):
    pass


def _read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, opened without blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(mode):
            raise _NotRegular()
        data = b""
        while len(data) <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - len(data)))
            if not chunk:
                return data
            data += chunk
        raise _TooLarge()
    finally:
        os.close(fd)


def _bare(problem: str, checks: Checks) -> str:
    return problem.removeprefix(f"{checks.backend}: ")


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
