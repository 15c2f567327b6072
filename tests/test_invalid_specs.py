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
    assert lines[-1] == "obsgen: 5 problems in tests/invalid/five-mistakes.yaml; nothing was written"
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
