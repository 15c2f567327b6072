"""Atomic file replacement: readers see the old file or the new one, never half of one."""
from __future__ import annotations

import os
from pathlib import Path


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


def state_dir() -> Path:
    """obsgen's local state (apply locks, the ledger, the drift check's stamps): $OBSGEN_STATE_DIR, else
    $XDG_STATE_HOME/obsgen, else ~/.local/state/obsgen. Read at each call, never at import."""
    explicit = os.environ.get("OBSGEN_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "obsgen"
