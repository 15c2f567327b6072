"""The ledger keeps the plan and what was applied apart, reads ledgers written before it did, and
`obsgen history` validates what it is given."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from obsgen.deploy import ledger

OLD_SCHEMA = """CREATE TABLE applies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, who TEXT NOT NULL, env TEXT NOT NULL, spec_sha256 TEXT NOT NULL,
    mode TEXT NOT NULL, summary TEXT NOT NULL, changes TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL)"""


def test_plan_and_applied_changes_are_kept_apart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger.record(path, env="dev", spec_sha256="ab" * 32, mode="apply", summary="Plan: 2 to create",
                  planned=["+ grafana folder f", "+ grafana dashboard d"], changes=["+ grafana folder f"],
                  result="rolled-back", error="Grafana (dev) answered HTTP 503")
    entry, = ledger.history(path)
    assert (entry.env, entry.mode, entry.result) == ("dev", "apply", "rolled-back")
    assert entry.planned == ["+ grafana folder f", "+ grafana dashboard d"]
    assert entry.changes == ["+ grafana folder f"]
    assert entry.error == "Grafana (dev) answered HTTP 503"


def test_a_ledger_from_before_the_planned_column_is_read_and_extended(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(OLD_SCHEMA)
        db.execute("INSERT INTO applies (at, who, env, spec_sha256, mode, summary, changes, result, error) "
                   "VALUES ('2026-01-01T00:00:00Z', 'ops', 'prod', 'cd', 'apply', 'Plan: 1 to update', "
                   "'[\"~ grafana dashboard d\"]', 'ok', '')")
    old, = ledger.history(path)
    assert (old.env, old.planned, old.changes) == ("prod", [], ["~ grafana dashboard d"])
    ledger.record(path, env="prod", spec_sha256="ef", mode="dry-run", summary="s", planned=["- x"], changes=[],
                  result="planned")
    assert [(e.mode, e.planned) for e in ledger.history(path)] == [("dry-run", ["- x"]), ("apply", [])]


def test_an_unknown_result_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ledger.record(tmp_path / "l.sqlite", env="dev", spec_sha256="", mode="apply", summary="", planned=[],
                      changes=[], result="sort-of")


def test_an_unwritable_state_directory_is_one_clear_error_before_anything_is_read(run_cli, tmp_path: Path,
                                                                                monkeypatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(blocker / "state"))
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    assert result.err == (f"obsgen: error: the state directory {blocker}/state ($OBSGEN_STATE_DIR) cannot be "
                          f"created: {blocker} is a file, not a directory; set OBSGEN_STATE_DIR to a directory "
                          f"obsgen can create, read and write\n")


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_history_limit_must_be_positive(run_cli, limit: str) -> None:
    result = run_cli("history", "--limit", limit)
    assert (result.code, result.err) == (2, f"obsgen: error: --limit must be at least 1, not {limit}\n")
