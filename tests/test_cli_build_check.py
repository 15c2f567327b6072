"""`obsgen build` and `obsgen check` as a user runs them: exact output and exit codes."""
from __future__ import annotations

import argparse

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

MINIMAL = "tests/specs/minimal.yaml"
MINIMAL_FILES = ["dev/alertmanager/alertmanager.yaml", "dev/alertmanager/subtree.yaml", "dev/docs/alerts.md",
                 "dev/manifest.json", "dev/prometheus/mini-steps.rules.yaml", "dev/prometheus/mini.rules.yaml",
                 "dev/tests/routing.yaml", "dev/tests/rules/mini-steps.test.yaml", "dev/tests/shared-alertmanager.yaml"]
N = len(MINIMAL_FILES)


@pytest.fixture
def built(run_cli, tmp_path: Path) -> Path:
    out = tmp_path / "generated"
    result = run_cli("build", "--spec", MINIMAL, "--out", str(out))
    assert result.code == 0, result.err
    return out


def test_build_lists_what_it_wrote_and_a_summary(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("build", "--spec", MINIMAL, "--out", str(out))
    assert result.code == 0
    assert result.out == "".join(f"wrote   {out}/{f}\n" for f in MINIMAL_FILES) + (
        f"obsgen build: dev from {MINIMAL} into {out}/: {N} written, 0 unchanged, 0 removed\n")
    assert result.err == ""


def test_second_build_writes_nothing_and_keeps_identical_bytes(run_cli, built: Path) -> None:
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in built.rglob("*") if p.is_file()}
    result = run_cli("build", "--spec", MINIMAL, "--out", str(built))
    assert result.out == f"obsgen build: dev from {MINIMAL} into {built}/: 0 written, {N} unchanged, 0 removed\n"
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in built.rglob("*") if p.is_file()}
    assert after == before


def with_qa(spec_text: str) -> str:
    """The minimal spec with a second environment, qa, configured like dev."""
    qa = ("  - name: qa\n    policy:\n      tolerance: {governance: 0}\n    channels:\n"
          "      pager: {routing_key_file: /run/secrets/pd-key}\n      chat: {api_url_file: /run/secrets/slack-url}\n")
    assert spec_text.count("alerts:\n") == 1
    return spec_text.replace("alerts:\n", qa + "alerts:\n")


def test_build_removes_the_files_it_wrote_that_the_spec_no_longer_produces(run_cli, tmp_path: Path) -> None:
    spec, out = tmp_path / "mini.yaml", tmp_path / "generated"
    minimal = ROOT.joinpath(MINIMAL).read_text()
    spec.write_text(with_qa(minimal))
    assert run_cli("build", "--spec", str(spec), "--out", str(out)).code == 0
    spec.write_text(minimal)  # qa leaves the spec
    result = run_cli("build", "--spec", str(spec), "--out", str(out))
    assert result.code == 0
    qa_files = [f.replace("dev/", "qa/", 1) for f in MINIMAL_FILES]
    assert result.out.splitlines() == [  # dev's files, its manifest included, do not depend on qa
        *(f"removed {out}/{f}" for f in qa_files),
        f"obsgen build: dev from {spec} into {out}/: 0 written, {N} unchanged, {N} removed",
    ]
    dirs = {"dev", "dev/alertmanager", "dev/docs", "dev/prometheus", "dev/tests", "dev/tests/rules"}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == sorted({*dirs, *MINIMAL_FILES})


def test_check_passes_on_a_fresh_build(run_cli, built: Path) -> None:
    result = run_cli("check", "--spec", MINIMAL, "--out", str(built))
    assert (result.code, result.out, result.err) == (0, f"obsgen check: {built}/ matches {MINIMAL} ({N} files)\n", "")


def test_check_names_a_hand_edited_file_and_the_changed_lines(run_cli, built: Path) -> None:
    rules = built / "dev/prometheus/mini-steps.rules.yaml"
    rules.write_text(rules.read_text().replace("for: 10m", "for: 30m"))
    result = run_cli("check", "--spec", MINIMAL, "--out", str(built))
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0] == f"drifted: {rules}"
    assert lines[1] == f"--- {rules} (on disk)"
    assert lines[2] == f"+++ {rules} (built from minimal.yaml)"
    assert "-    for: 30m" in lines and "+    for: 10m" in lines
    assert result.err == (f"obsgen check: 1 file out of date in {built}/; run `obsgen build` to regenerate\n")


def test_check_reports_missing_and_extra_files_and_passes_again_once_undone(run_cli, built: Path) -> None:
    manifest = built / "dev/manifest.json"
    saved = manifest.read_bytes()
    manifest.unlink()
    (built / "dev/notes.txt").write_text("stray")
    result = run_cli("check", "--spec", MINIMAL, "--out", str(built))
    assert result.code == 1
    assert result.out == (f"missing: {built}/dev/manifest.json\n"
                          f"extra:   {built}/dev/notes.txt (not written by obsgen; move it out of {built}/dev/ "
                          f"or delete it)\n")
    assert result.err == (f"obsgen check: 1 file out of date in {built}/; run `obsgen build` to regenerate\n"
                          f"obsgen check: 1 file not written by obsgen inside the environment directories of "
                          f"{built}/; move it elsewhere or delete it (`obsgen build` never removes it)\n")
    manifest.write_bytes(saved)
    (built / "dev/notes.txt").unlink()
    assert run_cli("check", "--spec", MINIMAL, "--out", str(built)).code == 0


def test_building_one_environment_leaves_the_others_alone(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("build", "--out", str(out)).code == 0
    (out / "prod/stray.txt").write_text("not mine to remove when building dev")
    (out / "dev/stray.txt").write_text("not obsgen's either: kept, but drift in dev's tree")
    result = run_cli("build", "--env", "dev", "--out", str(out))
    assert result.code == 0
    assert result.out.splitlines() == [
        f"kept    {out}/dev/stray.txt (not written by obsgen)",
        f"obsgen build: dev from specs/selftest.yaml into {out}/: 0 written, 24 unchanged, 0 removed, "
        f"1 kept (not written by obsgen)"]
    assert (out / "prod/stray.txt").exists() and (out / "dev/stray.txt").exists()
    assert run_cli("check", "--env", "dev", "--out", str(out)).code == 1
    (out / "dev/stray.txt").unlink()
    assert run_cli("check", "--env", "dev", "--out", str(out)).code == 0
    assert run_cli("check", "--out", str(out)).code == 1


def test_an_unknown_environment_is_a_usage_error(run_cli, tmp_path: Path) -> None:
    result = run_cli("build", "--env", "qa", "--out", str(tmp_path))
    assert result.code == 2
    assert result.err == "obsgen: error: unknown environment 'qa' (the spec defines: dev, staging, prod)\n"
    assert list(tmp_path.iterdir()) == []


def test_history_rejects_an_environment_neither_the_spec_nor_the_ledger_knows(run_cli) -> None:
    result = run_cli("history", "--env", "qa")
    assert (result.code, result.out) == (2, "")
    assert result.err == "obsgen: error: unknown environment 'qa' (the spec defines: dev, staging, prod)\n"
    typo = run_cli("history", "--env", "prd")
    assert "did you mean 'prod'?" in typo.err and typo.code == 2


def test_quiet_build_prints_only_its_summary(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("build", "-q", "--spec", MINIMAL, "--out", str(out))
    assert (result.code, result.err) == (0, "")
    assert result.out == f"obsgen build: dev from {MINIMAL} into {out}/: {N} written, 0 unchanged, 0 removed\n"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(MINIMAL_FILES)


def test_every_option_of_every_command_has_help_text() -> None:
    from obsgen.cli import _parser

    parser = _parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [f"{name} {action.option_strings or action.dest}" for name, sub in commands.choices.items()
               for action in sub._actions if not action.help]
    assert missing == []
    assert set(commands.choices) == {"validate", "build", "check", "verify", "docs", "doctor", "diff", "apply",
                                     "history", "emit", "drill"}


def test_the_committed_generated_directory_matches_the_reference_spec(run_cli) -> None:
    result = run_cli("check")
    assert result.code == 0, result.out + result.err


@pytest.mark.parametrize("command", ["validate", "build", "check", "diff", "apply", "history"])
def test_every_command_help_has_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    from obsgen.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"obsgen {command}" in out.split("examples:")[1]


def test_no_command_prints_usage_and_exits_2(run_cli) -> None:
    result = run_cli()
    assert result.code == 2
    assert result.err.startswith("usage: obsgen")


def test_python_dash_m_and_the_console_script_work(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "obsgen", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("obsgen ")
    script = shutil.which("obsgen", path=str(Path(sys.executable).parent))
    assert script, "the obsgen console script is installed beside the interpreter"
    proc = subprocess.run([script, "validate"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("specs/selftest.yaml: OK")


@pytest.fixture
def stamped(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A build of the reference spec whose stamp (in a private state dir) allows the fast path."""
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    out = tmp_path / "generated"
    assert run_cli("build", "--out", str(out)).code == 0
    return out


def count_compiles(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every call of compile_spec from now on (the check still runs for real)."""
    import obsgen.generate

    calls: list[tuple] = []
    real = obsgen.generate.compile_spec
    monkeypatch.setattr("obsgen.generate.compile_spec", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def test_check_after_a_build_answers_from_the_stamp_without_compiling(run_cli, stamped: Path, monkeypatch) -> None:
    calls = count_compiles(monkeypatch)
    result = run_cli("check", "--out", str(stamped))
    assert (result.code, result.out) == (0, f"obsgen check: {stamped}/ matches specs/selftest.yaml (72 files)\n")
    assert calls == []


@pytest.mark.parametrize("change", ["edit", "add", "remove"])
def test_the_fast_path_never_hides_a_hand_edit(run_cli, stamped: Path, change: str) -> None:
    target = stamped / "dev/prometheus/selftest-steps.rules.yaml"
    if change == "edit":
        target.write_text(target.read_text().replace("> 3", "> 4", 1))
    elif change == "add":
        (stamped / "dev/prometheus/stray.rules.yaml").write_text("groups: []\n")
    else:
        target.unlink()
    result = run_cli("check", "--out", str(stamped))
    assert result.code == 1
    assert {"edit": "drifted: ", "add": "extra:   ", "remove": "missing: "}[change] in result.out


def test_a_changed_spec_or_generator_is_compiled_again(run_cli, stamped: Path, monkeypatch, tmp_path: Path) -> None:
    from obsgen.output import stamp

    monkeypatch.setattr(stamp, "fingerprint", lambda: "another obsgen")
    calls = count_compiles(monkeypatch)
    assert run_cli("check", "--out", str(stamped)).code == 0
    assert len(calls) == 1  # a different generator: no shortcut
    spec = tmp_path / "selftest.yaml"
    spec.write_text(ROOT.joinpath("specs/selftest.yaml").read_text())
    assert run_cli("build", "--spec", str(spec), "--out", str(stamped)).code == 0
    spec.write_text(spec.read_text().replace("tolerance: {governance: 3}", "tolerance: {governance: 2}"))
    result = run_cli("check", "--spec", str(spec), "--out", str(stamped))  # same spec path, new content
    assert result.code == 1 and "drifted: " in result.out


def test_no_cache_always_compiles(run_cli, stamped: Path, monkeypatch) -> None:
    calls = count_compiles(monkeypatch)
    assert run_cli("check", "--out", str(stamped), "--no-cache").code == 0
    assert len(calls) == 1


def test_a_hand_edit_with_a_forged_manifest_still_fails_the_check_of_a_fresh_clone(run_cli, tmp_path: Path,
                                                                                    monkeypatch) -> None:
    """The CI check trusts nothing committed: the manifest's digests updated to match a hand edit (so that
    `apply` would take the file as built) still leave the check comparing against a compile."""
    import hashlib
    import json

    from obsgen.compile.manifest import files_digest

    out = tmp_path / "generated"
    assert run_cli("build", "--out", str(out)).code == 0
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "fresh-state"))  # a fresh clone: no stamp
    edited = out / "dev/prometheus/selftest-steps.rules.yaml"
    edited.write_text(edited.read_text().replace("> 3", "> 4", 1))
    manifest_path = out / "dev/manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["prometheus/selftest-steps.rules.yaml"] = hashlib.sha256(edited.read_bytes()).hexdigest()
    manifest["files_sha256"] = files_digest(manifest["files"])
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    result = run_cli("check", "--out", str(out))
    assert result.code == 1
    assert f"drifted: {out}/dev/prometheus/selftest-steps.rules.yaml" in result.out or \
        "drifted: dev/prometheus/selftest-steps.rules.yaml" in result.out, result.out
    assert "manifest.json" in result.out  # the forged manifest is drift too
