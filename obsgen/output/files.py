"""Atomic file replacement: readers see the old file or the new one, never half of one."""
from __future__ import annotations

import os
import stat
from pathlib import Path


class KeepError(OSError):
    """A shared file's owner or group cannot be kept by this user: nothing was written."""


def atomic_write(target: Path, content: bytes) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def shared_target(path: Path) -> Path:
    """Where writing `path` lands: the file a symlink (chain) names, so the link stays a link."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


def keep_problem(path: Path) -> str | None:
    """Why replacing `path` (after symlinks) would lose its owner or group for this user; None when it
    would not (or there is no such file yet). Checked before any write, so a refusal changes nothing.

    A replaced file is a new inode, created by whoever runs obsgen: root may give it any owner; anyone
    else only their own uid, and a group they are in. Rather than leave a config its reader (say
    Alertmanager running as `prometheus`) can no longer open, obsgen refuses."""
    target = shared_target(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror
    if os.geteuid() == 0:
        return None
    if st.st_uid != os.geteuid():
        return (f"it is owned by uid {st.st_uid} and obsgen runs as uid {os.geteuid()}, so the rewritten file "
                f"could not keep that owner; run obsgen as its owner (or root)")
    if st.st_gid != os.getegid() and st.st_gid not in os.getgroups():
        return (f"its group (gid {st.st_gid}) is not one of this user's, so the rewritten file could not keep "
                f"it; run obsgen as a member of that group (or root)")
    return None


def replace_shared(path: Path, content: bytes) -> Path:
    """Replace a file other people own and read (a shared Alertmanager config) atomically, keeping what
    they rely on: a symlink stays a symlink (its target is replaced), and the file keeps its owner, group
    and permission bits (set on the new file before it takes the old one's place, so it is never
    readable by more people than before). Refuses with KeepError, writing nothing, when the owner or
    group cannot be kept (`keep_problem`). Returns the path written. A new file gets mode 0644.
    ACLs and extended attributes are not copied."""
    import tempfile

    target = shared_target(path)
    problem = keep_problem(target)
    if problem:
        raise KeepError(0, problem)
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.obsgen-write.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fh.fileno(), st.st_uid, st.st_gid)
            os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode) if st is not None else 0o644)
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def state_dir() -> Path:
    """obsgen's local state (apply locks, the ledger, the drift check's stamps): $OBSGEN_STATE_DIR, else
    $XDG_STATE_HOME/obsgen, else ~/.local/state/obsgen. Read at each call, never at import."""
    explicit = os.environ.get("OBSGEN_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "obsgen"
