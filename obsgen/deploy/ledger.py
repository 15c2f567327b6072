"""The audit ledger: every apply and dry run -- refused, declined, failed or done -- in a local SQLite file.

Each entry keeps what was planned and, separately, what was actually applied (for a failed apply, the
changes that were made before the failure and then restored, or left in place when restoring failed).
No secret ever enters it: titles, error messages, and the URL of each backend a run went to (`targets`,
kept without user info, query or fragment, so that a local demo's applies are told from real ones).

An apply writes its entry twice: as `started` (with its plan, its process id and host) before its first
write, and with how it ended when it ends. An entry still `started` is an apply that is running or was
killed before it could say how it ended (SIGKILL, a power cut): `history` shows it as `interrupted` once
its process is known to be gone, and the next apply to the environment marks it so for good.
"""
from __future__ import annotations

import dataclasses
import getpass
import json
import os
import socket
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from obsgen.errors import ObsgenError

SCHEMA = """CREATE TABLE IF NOT EXISTS applies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, who TEXT NOT NULL, env TEXT NOT NULL, spec_sha256 TEXT NOT NULL,
    mode TEXT NOT NULL, summary TEXT NOT NULL, changes TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL,
    planned TEXT NOT NULL DEFAULT '[]', pid INTEGER NOT NULL DEFAULT 0, host TEXT NOT NULL DEFAULT '',
    targets TEXT)"""
ADDED = {"planned": "TEXT NOT NULL DEFAULT '[]'",  # columns a ledger written by an older obsgen may lack
         "pid": "INTEGER NOT NULL DEFAULT 0", "host": "TEXT NOT NULL DEFAULT ''",
         "targets": "TEXT"}  # NULL: recorded before obsgen recorded targets
COLUMNS = "id, at, who, env, spec_sha256, mode, summary, planned, changes, result, error, pid, host, targets"
# ok | no-changes | planned (a dry run) | declined (not confirmed) | refused (lock held, no terminal) |
# failed (nothing was changed) | rolled-back (changes made, then all restored) |
# could-not-restore (changes made and at least one backend could not be put back) |
# started (an apply about to make its first write, not ended yet) | interrupted (a started apply whose
# process ended without recording how: what it changed stays until an apply repairs it)
RESULTS = ("ok", "no-changes", "planned", "declined", "refused", "failed", "rolled-back", "could-not-restore",
           "started", "interrupted")
NEVER_FINISHED = "never finished: the process ended without recording how (killed?)"


@dataclass(frozen=True)
class Entry:
    id: int
    at: str
    who: str
    env: str
    spec_sha256: str
    mode: str  # apply | dry-run
    summary: str  # the plan's summary line
    planned: list[str]  # change titles of the plan, e.g. "~ grafana dashboard uid"
    changes: list[str]  # change titles actually applied (and, when result is rolled-back, restored)
    result: str  # one of RESULTS ("started" only while its process may still run)
    error: str
    pid: int = 0  # the process of a started entry, on `host`
    host: str = ""
    # the URL of each backend the run went to, by backend (grafana, prometheus, alertmanager); None when the
    # entry was recorded by an obsgen that did not record them
    targets: dict[str, str] | None = None


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=10)
        db.execute(SCHEMA)
        have = {row[1] for row in db.execute("PRAGMA table_info(applies)")}
        for column, kind in ADDED.items():
            if column not in have:
                db.execute(f"ALTER TABLE applies ADD COLUMN {column} {kind}")
        return db
    except (OSError, sqlite3.Error) as exc:
        raise ObsgenError(f"cannot open the ledger {path}: {exc} (set OBSGEN_STATE_DIR to a writable "
                          f"directory)") from None


def ensure(path: Path) -> None:
    """Fail now, before anything is changed, when the ledger cannot be written."""
    _connect(path).close()


def record(path: Path, *, env: str, spec_sha256: str, mode: str, summary: str, planned: list[str],
           changes: list[str], result: str, error: str = "", entry: int | None = None,
           targets: Mapping[str, str] | None = None) -> int:
    """Record a run; with `entry` (the id `start` returned), complete that entry instead of adding one.
    `targets` are the URLs of the backends the run went to, by backend (kept without any credential, see
    `public_url`). Returns the entry's id."""
    if result not in RESULTS:
        raise ValueError(f"unknown ledger result {result!r}")
    values = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), _who(), env, spec_sha256, mode, summary,
              json.dumps(planned), json.dumps(changes), result, error[:4000],
              json.dumps({kind: public_url(url) for kind, url in (targets or {}).items()}))
    db = _connect(path)
    try:
        with db:
            if entry is not None:  # the time stays the start's; the rest is how it ended
                db.execute("UPDATE applies SET who = ?, env = ?, spec_sha256 = ?, mode = ?, summary = ?, "
                           "planned = ?, changes = ?, result = ?, error = ?, targets = ? WHERE id = ?",
                           (*values[1:], entry))
                return entry
            cursor = db.execute("INSERT INTO applies (at, who, env, spec_sha256, mode, summary, planned, changes, "
                                "result, error, targets, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                (*values, os.getpid() if result == "started" else 0,
                                 socket.gethostname() if result == "started" else ""))
            return int(cursor.lastrowid or 0)
    except sqlite3.Error as exc:
        raise ObsgenError(f"cannot write the ledger {path}: {exc}") from None
    finally:
        db.close()


def start(path: Path, *, env: str, spec_sha256: str, summary: str, planned: list[str],
          targets: Mapping[str, str] | None = None) -> int:
    """The `started` entry of an apply, written before its first write; returns its id for `record`."""
    return record(path, env=env, spec_sha256=spec_sha256, mode="apply", summary=summary, planned=planned,
                  changes=[], result="started", targets=targets)


def public_url(url: str) -> str:
    """A URL as the ledger keeps it: without user info (user:password@), query or fragment, where a
    credential could hide; scheme, host, port and path say where the run went."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _entry(row: tuple) -> Entry:
    """An entry from a row in COLUMNS order."""
    targets = json.loads(row[13]) if row[13] is not None else None
    return _seen(Entry(*row[:7], json.loads(row[7]), json.loads(row[8]), *row[9:13], targets))


def history(path: Path, env: str | None = None, limit: int = 50) -> list[Entry]:
    """The latest entries, newest first; a `started` entry whose process is gone reads as interrupted."""
    if not path.exists():
        return []
    db = _connect(path)
    try:
        rows = db.execute(f"SELECT {COLUMNS} FROM applies " + ("WHERE env = ? " if env else "")
                          + "ORDER BY id DESC LIMIT ?", ((env, limit) if env else (limit,))).fetchall()
    except sqlite3.Error as exc:
        raise ObsgenError(f"cannot read the ledger {path}: {exc}") from None
    finally:
        db.close()
    return [_entry(r) for r in rows]


def unfinished(path: Path, env: str) -> list[Entry]:
    """The applies to `env` the ledger has as started and not ended, oldest first (after `_seen`: those
    whose process is known to be gone read as interrupted, the others stay started)."""
    if not path.exists():
        return []
    db = _connect(path)
    try:
        rows = db.execute(f"SELECT {COLUMNS} FROM applies WHERE env = ? AND result = 'started' ORDER BY id",
                          (env,)).fetchall()
    except sqlite3.Error as exc:
        raise ObsgenError(f"cannot read the ledger {path}: {exc}") from None
    finally:
        db.close()
    return [_entry(r) for r in rows]


def supersede(path: Path, entries: list[int], by: int, result: str) -> None:
    """Mark started entries as interrupted for good: their environment's lock was free, so their process
    is gone; `by` is the entry of the apply that found them (and repaired what they left if `result` is ok)."""
    db = _connect(path)
    try:
        with db:
            for entry in entries:
                db.execute("UPDATE applies SET result = 'interrupted', error = ? WHERE id = ? AND result = "
                           "'started'", (f"{NEVER_FINISHED}; superseded by ledger entry {by} ({result})", entry))
    except sqlite3.Error as exc:
        raise ObsgenError(f"cannot write the ledger {path}: {exc}") from None
    finally:
        db.close()


def _seen(entry: Entry) -> Entry:
    """A started entry as it can be told now: interrupted when its process, on this host, is gone."""
    if entry.result != "started" or entry.host != socket.gethostname() or _alive(entry.pid):
        return entry
    return dataclasses.replace(entry, result="interrupted",
                               error=f"{NEVER_FINISHED}; what it changed is still there until an apply repairs it")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
