"""Options that do what they say, and summaries that show the change.

Each command offers only the -q/-v it has a use for, with help true to that command; `check -q` prints no
diff; `history -v` shows what each apply changed and the URLs it went to (the ledger records them, never a
credential); an unusable state directory is an error where the state is needed and a note where it is only
a speed-up; `check --out` of a directory that is not there says so; `diff` counts changed lines, not context,
against its limit, and `check`'s summary counts manifest.json's hash lines instead of showing them.
"""
from __future__ import annotations

import argparse
import os
import re
import sqlite3
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from doubles.grafana import GrafanaDouble

from obsgen.deploy import ledger, report
from obsgen.deploy.plan import Obj, plan

MINIMAL = "tests/specs/minimal.yaml"
HEX64 = re.compile(r"[0-9a-f]{64}")
TOKEN = "glsa_test_token_value_0123456789"


def _option_help(command: str) -> dict[str, str]:
    """The -q and -v a command offers, with their help."""
    from obsgen.cli import _parser

    [sub] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {flag: action.help for action in sub.choices[command]._actions for flag in action.option_strings
            if flag in ("-q", "-v")}


# what each command's -q and -v are for; a command without a use for one does not offer it
OFFERED = {"validate": set(), "build": {"-q"}, "check": {"-q", "-v"}, "verify": {"-v"}, "docs": set(),
           "doctor": set(), "diff": {"-q", "-v"}, "apply": {"-q", "-v"}, "history": {"-v"}, "emit": set(),
           "drill": {"-q"}}


@pytest.mark.parametrize("command", sorted(OFFERED))
def test_each_command_offers_the_quiet_and_verbose_it_has_a_use_for(command: str) -> None:
    helps = _option_help(command)
    assert set(helps) == OFFERED[command]
    text = " ".join(helps.values())
    if command not in ("check", "diff", "apply"):
        assert "diff" not in text  # only the commands that print diffs speak of them
    if command != "verify":
        assert "test case" not in text


def test_validate_verbose_is_not_offered(run_cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("validate", "--spec", MINIMAL, "-v")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "obsgen: error: unrecognized arguments: -v"


def test_quiet_and_verbose_exclude_each_other(run_cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("check", "--spec", MINIMAL, "-q", "-v")
    assert exit_info.value.code == 2


@pytest.fixture
def built(run_cli, tmp_path: Path) -> Path:
    out = tmp_path / "generated"
    assert run_cli("build", "--spec", MINIMAL, "--out", str(out)).code == 0
    return out


def test_quiet_check_prints_the_drifted_files_and_no_diff(run_cli, built: Path) -> None:
    rules = built / "dev/prometheus/mini-steps.rules.yaml"
    rules.write_text(rules.read_text().replace("for: 10m", "for: 30m"))
    (built / "dev/tests/routing.yaml").unlink()
    result = run_cli("check", "--spec", MINIMAL, "--out", str(built), "-q")
    assert (result.code, result.out) == (1, f"drifted: {rules}  +1 -1\nmissing: {built}/dev/tests/routing.yaml\n")
    assert result.err == f"obsgen check: 2 files out of date in {built}/; run `obsgen build` to regenerate\n"


def test_verbose_check_prints_the_whole_diff_as_full_does(run_cli, built: Path) -> None:
    docs = built / "dev/docs/alerts.md"
    docs.write_text("hand-written\n")  # far more than 40 lines removed: summarised by default
    verbose = run_cli("check", "--spec", MINIMAL, "--out", str(built), "-v")
    full = run_cli("check", "--spec", MINIMAL, "--out", str(built), "--full")
    assert (verbose.code, verbose.out, verbose.err) == (full.code, full.out, full.err)
    assert verbose.code == 1 and "not shown" not in verbose.out


# --- check --out: a directory that is not there --------------------------------------------------------

def test_check_of_an_output_directory_that_does_not_exist_is_an_error(run_cli, tmp_path: Path) -> None:
    result = run_cli("check", "--spec", str(ROOT / MINIMAL), "--out", "../typo", cwd=tmp_path)
    assert (result.code, result.out) == (2, "")
    assert result.err == ("obsgen: error: ../typo: no such directory (run obsgen build --out ../typo first, "
                          "or give the right --out)\n")


def test_check_of_an_output_path_that_is_a_file_is_an_error(run_cli, tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text("not a directory")
    result = run_cli("check", "--spec", str(ROOT / MINIMAL), "--out", "out.txt", cwd=tmp_path)
    assert (result.code, result.out) == (2, "")
    assert result.err == "obsgen: error: out.txt: a file, not a directory (give the right --out)\n"


# --- an unusable state directory --------------------------------------------------------------------------

@pytest.fixture
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OBSGEN_STATE_DIR naming a file."""
    path = tmp_path / "state-file"
    path.write_text("")
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(path))
    return path


def test_history_with_a_state_directory_that_is_a_file_is_an_error(run_cli, state_file: Path) -> None:
    result = run_cli("history")
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"obsgen: error: the state directory {state_file} ($OBSGEN_STATE_DIR) is a file, not a "
                          f"directory; set OBSGEN_STATE_DIR to a directory obsgen can create, read and write\n")


def test_history_with_a_state_directory_that_cannot_be_created_is_an_error(run_cli, tmp_path: Path,
                                                                          monkeypatch) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(blocker / "state"))
    result = run_cli("history")
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"obsgen: error: the state directory {blocker}/state ($OBSGEN_STATE_DIR) cannot be "
                          f"created: {blocker} is a file, not a directory; set OBSGEN_STATE_DIR to a directory "
                          f"obsgen can create, read and write\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any directory")
def test_history_with_a_state_directory_that_cannot_be_read_is_an_error(run_cli, tmp_path: Path,
                                                                       monkeypatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(locked))
    try:
        result = run_cli("history")
    finally:
        locked.chmod(0o755)
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"obsgen: error: the state directory {locked} ($OBSGEN_STATE_DIR) cannot be read and "
                          f"written (permission denied); set OBSGEN_STATE_DIR to a directory obsgen can create, "
                          f"read and write\n")


def test_history_with_a_state_directory_not_created_yet_has_no_applies(run_cli, tmp_path: Path,
                                                                      monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "new" / "state"))
    result = run_cli("history")
    assert (result.code, result.out, result.err) == (0, "No applies recorded.\n", "")
    assert not (tmp_path / "new").exists()  # a read-only command creates nothing


STATE_NOTE = ("obsgen: note: the state directory {path} ($OBSGEN_STATE_DIR) is a file, not a directory; set "
              "OBSGEN_STATE_DIR to a directory obsgen can create, read and write; {what}\n")


def test_check_works_without_its_stamp_and_says_so_once(run_cli, built: Path, state_file: Path) -> None:
    result = run_cli("check", "--spec", MINIMAL, "--out", str(built))
    assert (result.code, result.out) == (0, f"obsgen check: {built}/ matches {MINIMAL} (9 files)\n")
    assert result.err == STATE_NOTE.format(
        path=state_file, what="the check compared every file (its stamp, a speed-up only, cannot be kept)")
    rules = built / "dev/prometheus/mini.rules.yaml"
    rules.write_text(rules.read_text() + "# edited\n")
    drift = run_cli("check", "--spec", MINIMAL, "--out", str(built), "--stat")
    assert (drift.code, drift.out) == (1, f"drifted: {rules}  +0 -1\n")
    assert drift.err.splitlines()[0] == STATE_NOTE.format(
        path=state_file, what="the check compared every file (its stamp, a speed-up only, cannot be kept)").rstrip()


def test_build_without_a_usable_state_directory_builds_and_says_so_once(run_cli, tmp_path: Path,
                                                                       state_file: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("build", "-q", "--spec", MINIMAL, "--out", str(out))
    assert (result.code, result.out) == (0, f"obsgen build: dev from {MINIMAL} into {out}/: 9 written, 0 unchanged, "
                                            f"0 removed\n")
    assert result.err == STATE_NOTE.format(
        path=state_file, what="the next check compares every file (no stamp of this build can be kept)")


def test_apply_with_a_state_directory_that_is_a_file_fails_before_any_request(run_cli, state_file: Path,
                                                                             monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)
    with GrafanaDouble(token=TOKEN) as grafana:
        result = run_cli("apply", "--env", "dev", "--only", "grafana", "--grafana-url", grafana.url, "--yes")
        assert grafana.requests == []
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"obsgen: error: the state directory {state_file} ($OBSGEN_STATE_DIR) is a file, not a "
                          f"directory; set OBSGEN_STATE_DIR to a directory obsgen can create, read and write\n")


# --- history -v: what each apply changed, and where ---------------------------------------------------------

@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    with GrafanaDouble(token=TOKEN) as double:
        yield double


def _header(e: ledger.Entry) -> str:
    """An entry's line as `history` prints it without -v (unchanged by this change)."""
    done = f"  applied {len(e.changes)} of {len(e.planned)}" if e.mode == "apply" and e.planned else ""
    return (f"{e.at}  {e.env:<8} {e.mode:<8} {e.result:<17} {e.who:<10} spec {e.spec_sha256[:12]}  "
            f"{e.summary}{done}")


def test_history_verbose_shows_each_apply_s_changes_and_the_urls_it_went_to(run_cli, grafana,
                                                                           tmp_path: Path) -> None:
    args = ("--env", "dev", "--only", "grafana", "--grafana-url", grafana.url)
    assert run_cli("apply", *args, "--dry-run").code == 0
    assert run_cli("apply", *args, "--yes").code == 0
    newest, oldest = ledger.history(tmp_path / "state/ledger.sqlite")
    folder, dashboard = "+ grafana folder obsgen-selftest-dev", "+ grafana dashboard selftest-dev-selftest-overview"
    result = run_cli("history", "-v")
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines() == [
        _header(newest), f"    targets: grafana {grafana.url}", f"    applied: {folder}", f"    applied: {dashboard}",
        _header(oldest), f"    targets: grafana {grafana.url}", f"    planned: {folder}", f"    planned: {dashboard}"]
    plain = run_cli("history")
    assert plain.out.splitlines() == [_header(newest), _header(oldest)]


def test_history_verbose_says_which_entries_have_no_recorded_targets(run_cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path))
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:  # a ledger an obsgen before 0.13 wrote
        db.execute("CREATE TABLE applies (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT NOT NULL, "
                   "env TEXT NOT NULL, spec_sha256 TEXT NOT NULL, mode TEXT NOT NULL, summary TEXT NOT NULL, "
                   "changes TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL)")
        db.execute("INSERT INTO applies (at, who, env, spec_sha256, mode, summary, changes, result, error) VALUES "
                   "('2026-01-01T00:00:00Z', 'ops', 'dev', 'cd', 'apply', 'Plan: 1 to update', "
                   "'[\"~ grafana dashboard d\"]', 'ok', '')")
    result = run_cli("history", "-v")
    assert (result.code, result.err) == (0, "")
    assert result.out == ("2026-01-01T00:00:00Z  dev      apply    ok                ops        spec cd  "
                          "Plan: 1 to update\n"
                          "    targets not recorded\n"
                          "    applied: ~ grafana dashboard d\n")


def test_a_failed_apply_shows_what_was_restored_and_what_was_not_applied(run_cli, tmp_path: Path,
                                                                        monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path))
    ledger.record(tmp_path / "ledger.sqlite", env="dev", spec_sha256="ab" * 32, mode="apply", summary="Plan: 2 to create",
                  planned=["+ grafana folder f", "+ grafana dashboard d"], changes=["+ grafana folder f"],
                  result="rolled-back", error="Grafana (dev) answered HTTP 503",
                  targets={"grafana": "http://grafana.example:3000"})
    entry, = ledger.history(tmp_path / "ledger.sqlite")
    result = run_cli("history", "-v")
    assert result.out.splitlines() == [
        _header(entry), "    error: Grafana (dev) answered HTTP 503", "    targets: grafana http://grafana.example:3000",
        "    applied, then restored: + grafana folder f", "    not applied: + grafana dashboard d"]


def test_the_ledger_keeps_no_credential_of_a_url(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger.record(path, env="dev", spec_sha256="ab", mode="dry-run", summary="s", planned=[], changes=[],
                  result="planned", targets={"grafana": "https://admin:hunter2@grafana.example:3000/g/?api_key=k1#x",
                                             "prometheus": "http://127.0.0.1:9090"})
    entry, = ledger.history(path)
    assert entry.targets == {"grafana": "https://grafana.example:3000/g/", "prometheus": "http://127.0.0.1:9090"}
    stored = path.read_bytes()
    assert b"hunter2" not in stored and b"admin" not in stored and b"k1" not in stored


# --- summaries that count changed lines -------------------------------------------------------------------

def _list(items: list[str]) -> Obj:
    return Obj("prometheus", "rule-group", "f/g", {"rules": items})


def test_an_update_of_few_changed_lines_among_much_context_is_shown() -> None:
    before = [f"r{i}" for i in range(40)]
    after = [r for r in before if r not in ("r3", "r4", "r13", "r14", "r23", "r33")]  # 6 removed, in four places
    after.insert(after.index("r5"), "n1")
    after.insert(after.index("r15"), "n2")  # 2 added
    result = plan([_list(after)], [_list(before)])
    change, = result.changes
    diff = change.diff()
    assert report.diff_stat(diff) == (2, 6) and len(diff) > report.LONG_DIFF  # context makes it long
    assert report.text(result, "dev") == "\n".join([
        "~ prometheus rule-group f/g", *[f"    {line}" for line in diff],
        "dev: Plan: 0 to create, 1 to update, 0 to delete (0 unchanged).", ""])


def test_an_update_of_more_changed_lines_than_the_limit_is_summarised() -> None:
    before = [f"r{i}" for i in range(30)]
    result = plan([_list([f"n{i}" for i in range(11)] + before[11:])], [_list(before)])  # +11 -11: 22 changed
    assert report.text(result, "dev").splitlines() == [
        "~ prometheus rule-group f/g", "    (+11 -11 lines, not shown)",
        "(1 long diff not shown; --full shows every line)",
        "dev: Plan: 0 to create, 1 to update, 0 to delete (0 unchanged)."]


def _many_steps_spec(tmp_path: Path, steps: int = 12) -> Path:
    """The minimal spec with `steps` steps, so that one changed field changes many lines."""
    data = yaml.safe_load(Path(MINIMAL).read_text())
    data["steps"] = [{"id": f"step{i:02d}", "tier": ("kernel", "governance")[i % 2], "remediation": f"Fix {i}."}
                     for i in range(steps)]
    spec = tmp_path / "many.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def test_check_summary_counts_manifest_hash_lines_instead_of_showing_them(run_cli, tmp_path: Path) -> None:
    spec, out = _many_steps_spec(tmp_path), tmp_path / "out"
    assert run_cli("build", "--spec", str(spec), "--out", str(out)).code == 0
    spec.write_text(spec.read_text().replace("runbooks.example.com", "runbooks.example.org"))
    full = run_cli("check", "--spec", str(spec), "--out", str(out), "--full")
    summary = run_cli("check", "--spec", str(spec), "--out", str(out))
    assert (full.code, summary.code) == (1, 1)
    assert summary.err == full.err
    manifest = out / "dev/manifest.json"
    # the whole diff, file by file, and the files whose diffs are not the manifest's
    files: dict[str, list[str]] = {}
    for line in full.out.splitlines():
        if line.startswith("drifted: "):
            current = files.setdefault(line.removeprefix("drifted: "), [])
        else:
            current.append(line)
    assert str(manifest) in files and len(files) > 2
    hash_lines = [line for line in files[str(manifest)] if line[:1] in "+-" and HEX64.search(line)]
    assert all(line.startswith(("+++", "---")) or HEX64.search(line) for line in files[str(manifest)]
               if line[:1] in "+-")  # only hashes changed in the manifest: nothing of it is shown
    others = [line for name, lines in files.items() if name != str(manifest) for line in lines]
    lines = summary.out.splitlines()
    assert [line.split()[1] for line in lines[:len(files)]] == [name for name in files]
    assert lines[len(files):] == [
        *others[:40],
        f"{manifest}: {len(hash_lines)} hash lines changed (not shown)",
        f"... {len(others) - 40} more diff lines not shown: `obsgen check --full` prints the whole diff, "
        f"`obsgen check --stat` only the counts"]
    assert not any(HEX64.search(line) for line in lines)


def test_without_hash_lines_keeps_a_manifest_s_other_changes() -> None:
    from obsgen.output.tree import without_hash_lines

    a, b = "a" * 64, "b" * 64
    diff = ("--- m (on disk)\n+++ m (built)\n"
            "@@ -1,5 +1,5 @@\n"
            " {\n"
            f'-  "files_sha256": "{a}",\n'
            f'+  "files_sha256": "{b}",\n'
            '-  "generator": "obsgen v0.12.0",\n'
            '+  "generator": "obsgen v0.13.0",\n'
            f'   "inputs_sha256": "{a}",\n'
            " }\n"
            "@@ -10,3 +10,3 @@\n"
            f'-    "x.yaml": "{a}",\n'
            f'+    "x.yaml": "{b}",\n'
            " }\n")
    assert without_hash_lines(diff) == (
        "--- m (on disk)\n+++ m (built)\n"
        "@@ -1,4 +1,4 @@\n"
        " {\n"
        '-  "generator": "obsgen v0.12.0",\n'
        '+  "generator": "obsgen v0.13.0",\n'
        f'   "inputs_sha256": "{a}",\n'
        " }\n", 4)


@pytest.fixture
def long_update(monkeypatch: pytest.MonkeyPatch):
    """diff and apply with the live session replaced by a plan of one update changing 60 lines."""
    import io
    import sys
    from types import SimpleNamespace

    from obsgen.cli import main
    from obsgen.deploy import session

    fixed = plan([_list([f"new{i}" for i in range(30)])], [_list([f"old{i}" for i in range(30)])])
    no_kubernetes = SimpleNamespace(environment=lambda name: SimpleNamespace(kubernetes=None))  # a cluster not asked
    monkeypatch.setattr(session, "open_session",
                        lambda *a, **k: SimpleNamespace(plan=fixed, notes=[], model=no_kubernetes))

    def run(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        return main(list(args)), out.getvalue()

    return fixed, run


@pytest.mark.parametrize("command", [["diff"], ["apply", "--dry-run"]])
def test_quiet_diff_and_apply_print_the_changed_objects_and_the_summary_only(long_update, command) -> None:
    fixed, run = long_update
    assert run(*command, "--env", "dev", "-q") == (0, "~ prometheus rule-group f/g\n"
                                                      "dev: Plan: 0 to create, 1 to update, 0 to delete (0 unchanged).\n")


@pytest.mark.parametrize("command", [["diff"], ["apply", "--dry-run"]])
def test_verbose_diff_and_apply_print_every_diff_as_full_does(long_update, command) -> None:
    fixed, run = long_update
    change, = fixed.changes
    expected = "\n".join(["~ prometheus rule-group f/g", *[f"    {line}" for line in change.diff()],
                          "dev: Plan: 0 to create, 1 to update, 0 to delete (0 unchanged).", ""])
    assert run(*command, "--env", "dev", "-v") == (0, expected)
    assert run(*command, "--env", "dev", "--full") == (0, expected)
