"""Invalid specs: every problem reported at once as file:line:col, exit 2, nothing written.

Each tests/invalid/<name>.<ext> has a <name>.expected holding the exact stderr of
`obsgen validate`; `pytest --update-goldens` rewrites them.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

INVALID = sorted(p for p in (ROOT / "tests/invalid").iterdir() if p.suffix in (".yaml", ".json", ".jsonnet"))


@pytest.mark.parametrize("spec", INVALID, ids=lambda p: p.name)
def test_invalid_spec_is_reported_with_the_expected_text(spec: Path, run_cli, update_goldens: bool) -> None:
    rel = spec.relative_to(ROOT).as_posix()
    result = run_cli("validate", "--spec", rel)
    expected_file = spec.with_suffix(".expected")
    if update_goldens:
        expected_file.write_text(result.err)
    assert result.code == 2
    assert result.out == ""
    assert "Traceback" not in result.err
    assert result.err == expected_file.read_text()


def test_five_different_mistakes_are_all_reported_with_locations(run_cli) -> None:
    result = run_cli("validate", "--spec", "tests/invalid/five-mistakes.yaml")
    lines = result.err.splitlines()
    assert lines[-1] == "obsgen: 5 problems in tests/invalid/five-mistakes.yaml"
    located = [line for line in lines[:-1] if line.startswith("tests/invalid/five-mistakes.yaml:")]
    assert len(located) == 5
    for fragment in ("duplicate id 'build'", "unknown tier 'kernal'", "objective 95 is out of range",
                     "not a duration: '5 minutes'", "invalid PromQL"):
        assert sum(fragment in line for line in located) == 1, fragment


def test_a_failing_build_leaves_the_output_directory_untouched(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "generated"
    assert run_cli("build", "--spec", "tests/specs/minimal.yaml", "--out", str(out)).code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / "stray.txt").write_text("kept")
    result = run_cli("build", "--spec", "tests/invalid/five-mistakes.yaml", "--out", str(out))
    assert result.code == 2
    assert result.out == ""
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == {**before, out / "stray.txt": b"kept"}


@pytest.mark.parametrize("spec,points_to", [
    ("tests/invalid/inline-slack-webhook.yaml", "api_url_file"),
    ("tests/invalid/inline-pagerduty-key.yaml", "routing_key_file"),
])
def test_inline_secrets_are_rejected_pointing_at_a_file_or_environment_variable(run_cli, spec: str,
                                                                                points_to: str) -> None:
    result = run_cli("validate", "--spec", spec)
    assert result.code == 2
    assert "inline secret" in result.err and points_to in result.err
    assert "XXXXXXXXXXXXXXXX" not in result.err and "0123456789abcdef" not in result.err


def test_a_secret_looking_value_under_any_key_is_rejected(run_cli, tmp_path: Path) -> None:
    text = (ROOT / "tests/specs/minimal.yaml").read_text()
    text = text.replace("owner: team-mini", "owner: https://hooks.slack.com/services/T0/B0/abc")
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2
    assert f"{spec}:5:10: service.owner: inline Slack webhook URL" in result.err


def test_a_missing_spec_file_is_a_clear_error(run_cli) -> None:
    result = run_cli("validate", "--spec", "specs/nope.yaml")
    assert result.code == 2
    assert result.err.splitlines()[0] == "specs/nope.yaml:1:1: cannot read spec: No such file or directory"


MINIMAL_TEXT = (ROOT / "tests/specs/minimal.yaml").read_text()


def mutated(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    """The minimal spec with the first `old` replaced by `new`, written to tmp_path/spec.yaml."""
    assert old in MINIMAL_TEXT, old
    text = MINIMAL_TEXT.replace(old, new, 1)
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    return spec, text


def position(text: str, anchor: str, word: str) -> str:
    """line:col (1-based) of `word` inside the first occurrence of `anchor` in `text`."""
    offset = text.index(anchor) + anchor.index(word)
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


@pytest.mark.parametrize("old,new,word,message", [
    ("tolerance: {governance: 0}", "tolerence: {governance: 0}", "tolerence",
     "environments[0].policy.tolerence: unknown key 'tolerence': did you mean 'tolerance'? "
     "(allowed: page_on_any_failure, tolerance)"),
    ("    tier: governance\n    remediation: Fix the docs.", "    tier: governanse\n    remediation: Fix the docs.",
     "governanse", "steps[1].tier: unknown tier 'governanse': did you mean 'governance'? (known: governance, kernel)"),
    ("    channel: chat", "    channel: chta", "chta",
     "tiers[1].channel: unknown channel 'chta': did you mean 'chat'? (known: chat, pager)"),
    ("    for: 10m", "    for: 10m\n    overrides:\n      Dev: {for: 5m}", "Dev",
     "alerts[1].overrides.Dev: unknown environment 'Dev': did you mean 'dev'? (known: dev)"),
    ("    kind: step_failed\n    tier: kernel", "    kind: step_fail\n    tier: kernel", "step_fail",
     "alerts[0].kind: 'step_fail' is not allowed: did you mean 'step_failed'? "
     "(one of: step_failed, not_reporting, no_passing_run, slow_runs, custom)"),
    ("    channel: pager", "    channel: xyz", "xyz",  # nothing close: no guess
     "tiers[0].channel: unknown channel 'xyz' (known: chat, pager)"),
])
def test_a_misspelt_key_id_or_value_names_the_closest_correct_one(run_cli, tmp_path: Path, old: str, new: str,
                                                                  word: str, message: str) -> None:
    spec, text = mutated(tmp_path, old, new)
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2
    assert f"{spec}:{position(text, new, word)}: {message}" in result.err.splitlines()


@pytest.mark.parametrize("old,new,at,hint", [
    ("  owner: team-mini", "\towner: team-mini", "\t", "YAML indents with spaces, never tabs"),
    ("    remediation: Fix the docs.", "    remediation Fix the docs.", "remediation",
     "add the ':' and a space after the key"),
    ("    remediation: Fix the build.", "    remediation: 'Fix the build.", "'",
     "the quote opened here is never closed"),
    ("    tier: kernel\n    remediation: Fix the build.", "    tier: [kernel\n    remediation: Fix the build.", None,
     "is never closed: add the ']'"),
    ("  owner: team-mini", "  owner: team: mini", None, "quote a value that contains ': '"),
    ("    for: 10m", "    for: 10m\n    summary: {{ $labels.step_id }} failed", None,
     "a value holding a {{ template }} must be quoted as a whole"),
])
def test_a_yaml_syntax_error_is_located_and_explained_in_plain_words(run_cli, tmp_path: Path, old: str, new: str,
                                                                     at: str | None, hint: str) -> None:
    spec, text = mutated(tmp_path, old, new)
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2 and result.out == "" and "Traceback" not in result.err
    problem, summary = result.err.splitlines()
    assert summary == f"obsgen: 1 problem in {spec}"
    where = f"{spec}:{position(text, new, at)}: " if at else f"{spec}:"
    assert problem.startswith(where) and "invalid YAML: " in problem and hint in problem


def test_the_open_bracket_is_named_where_it_was_opened(run_cli, tmp_path: Path) -> None:
    new = "    tier: [kernel\n    remediation: Fix the build."
    spec, text = mutated(tmp_path, "    tier: kernel\n    remediation: Fix the build.", new)
    line, col = position(text, new, "[").split(":")
    result = run_cli("validate", "--spec", str(spec))
    assert f"the '[' at line {line}, column {col} is never closed" in result.err


@pytest.mark.parametrize("old,new", [("owner: team-mini", "owner: !secret team-mini"),
                                     ("owner: team-mini", "owner: !!int team-mini")])
def test_a_yaml_tag_obsgen_cannot_read_is_a_located_problem_not_a_crash(run_cli, tmp_path: Path, old: str,
                                                                        new: str) -> None:
    spec, text = mutated(tmp_path, old, new)
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2 and "internal error" not in result.err
    tag = new.split()[1]
    assert result.err.splitlines()[0] == (f"{spec}:{position(text, new, tag)}: service.owner: cannot read "
                                          f"'team-mini' as {tag}: remove the tag, or quote the value if it is text")
