"""The audit ledger: every apply and dry run, in a local SQLite file. No secret ever enters it."""
from __future__ import annotations

import getpass
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS applies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, who TEXT NOT NULL, env TEXT NOT NULL, spec_sha256 TEXT NOT NULL,
    mode TEXT NOT NULL, summary TEXT NOT NULL, changes TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL)"""


@dataclass(frozen=True)
class Entry:
    id: int
    at: str
    who: str
    env: str
    spec_sha256: str
    mode: str  # apply | dry-run
    summary: str
    changes: list[str]  # change titles, e.g. "~ grafana dashboard uid"
    result: str  # ok | failed | rolled-back | no-changes
    error: str


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute(SCHEMA)
    return db


def record(path: Path, *, env: str, spec_sha256: str, mode: str, summary: str, changes: list[str],
           result: str, error: str = "") -> None:
    with _connect(path) as db:
        db.execute("INSERT INTO applies (at, who, env, spec_sha256, mode, summary, changes, result, error) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), _who(), env, spec_sha256, mode, summary,
                    json.dumps(changes), result, error))


def history(path: Path, env: str | None = None, limit: int = 50) -> list[Entry]:
    if not path.exists():
        return []
    with _connect(path) as db:
        rows = db.execute("SELECT id, at, who, env, spec_sha256, mode, summary, changes, result, error FROM applies "
                          + ("WHERE env = ? " if env else "") + "ORDER BY id DESC LIMIT ?",
                          ((env, limit) if env else (limit,))).fetchall()
    return [Entry(*r[:7], json.loads(r[7]), *r[8:]) for r in rows]


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
