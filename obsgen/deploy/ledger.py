"""The audit ledger: every apply and dry run -- refused, declined, failed or done -- in a local SQLite file.

Each entry keeps what was planned and, separately, what was actually applied (for a failed apply, the
changes that were made before the failure and then restored, or left in place when restoring failed).
No secret ever enters it: titles and error messages only.
"""
from __future__ import annotations

import getpass
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from obsgen.errors import ObsgenError

SCHEMA = """CREATE TABLE IF NOT EXISTS applies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, who TEXT NOT NULL, env TEXT NOT NULL, spec_sha256 TEXT NOT NULL,
    mode TEXT NOT NULL, summary TEXT NOT NULL, changes TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL,
    planned TEXT NOT NULL DEFAULT '[]')"""
COLUMNS = "id, at, who, env, spec_sha256, mode, summary, planned, changes, result, error"
# ok | no-changes | planned (a dry run) | declined (not confirmed) | refused (lock held, no terminal) |
# failed (nothing was changed) | rolled-back (changes made, then all restored) |
# could-not-restore (changes made and at least one backend could not be put back)
RESULTS = ("ok", "no-changes", "planned", "declined", "refused", "failed", "rolled-back", "could-not-restore")


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
    result: str  # one of RESULTS
    error: str


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=10)
        db.execute(SCHEMA)
        if "planned" not in {row[1] for row in db.execute("PRAGMA table_info(applies)")}:  # a ledger before 0.3
            db.execute("ALTER TABLE applies ADD COLUMN planned TEXT NOT NULL DEFAULT '[]'")
        return db
    except (OSError, sqlite3.Error) as exc:
        raise ObsgenError(f"cannot open the ledger {path}: {exc} (set OBSGEN_STATE_DIR to a writable "
                          f"directory)") from None


def ensure(path: Path) -> None:
    """Fail now, before anything is changed, when the ledger cannot be written."""
    _connect(path).close()


def record(path: Path, *, env: str, spec_sha256: str, mode: str, summary: str, planned: list[str],
           changes: list[str], result: str, error: str = "") -> None:
    if result not in RESULTS:
        raise ValueError(f"unknown ledger result {result!r}")
    db = _connect(path)
    try:
        with db:
            db.execute("INSERT INTO applies (at, who, env, spec_sha256, mode, summary, planned, changes, result, "
                       "error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), _who(), env, spec_sha256, mode,
                        summary, json.dumps(planned), json.dumps(changes), result, error[:4000]))
    except sqlite3.Error as exc:
        raise ObsgenError(f"cannot write the ledger {path}: {exc}") from None
    finally:
        db.close()


def history(path: Path, env: str | None = None, limit: int = 50) -> list[Entry]:
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
    return [Entry(*r[:7], json.loads(r[7]), json.loads(r[8]), *r[9:]) for r in rows]


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
