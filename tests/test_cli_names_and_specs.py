"""Environment and tier names, and where a spec path came from, as a user meets them on the command line.

Every command that takes `--env` (and `--tier`) resolves the name the same way: exactly, else ignoring case
when one name matches (`--env Dev` is `dev`), else one error line with the closest name and the spec's
names, exit 2. A spec with problems fails every command that reads the spec as `validate` does; only the
commands that would have written (`build`) or applied (`apply`) say that nothing was. A spec path nobody
typed says where it came from when it cannot be read.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

SPEC = "specs/selftest.yaml"
BROKEN = "tests/invalid/five-mistakes.yaml"
REPORT = "tests/reports/passing.json"
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port: a command that got that far fails
UNKNOWN_DVE = "obsgen: error: unknown environment 'dve': did you mean 'dev'? (the spec defines: dev, staging, prod)\n"


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No spec, backend URL or ledger of the user's: each test names what it uses."""
    for variable in ("OBSGEN_SPEC", "OBSGEN_PUSHGATEWAY_URL", "OBSGEN_GRAFANA_URL", "OBSGEN_PROMETHEUS_URL",
                     "OBSGEN_ALERTMANAGER_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "out").mkdir()  # the --out of _command: there, and empty


def _command(name: str, tmp_path: Path, env: str = "dev") -> list[str]:
    """`obsgen <name>` with the options it needs besides --spec, for environment `env`."""
    out = str(tmp_path / "out")
    return {
        "validate": ["validate"],
        "build": ["build", "--out", out, "--env", env],
        "check": ["check", "--out", out, "--env", env],
        "docs": ["docs", "--env", env],
        "verify": ["verify", "--out", out, "--env", env],
        "diff": ["diff", "--env", env],
        "apply": ["apply", "--env", env, "--dry-run"],
        "doctor": ["doctor", "--env", env],
        "history": ["history", "--env", env],
        "emit": ["emit", "--env", env, "--report", REPORT, "--textfile", str(tmp_path / "selftest.prom")],
        "drill": ["drill", "--env", env, "--tier", "kernel", "--pushgateway", UNREACHABLE],
    }[name]


# --- 1. "did you mean" for --env and --tier on every command ------------------------------------------------
@pytest.mark.parametrize("name", ["build", "check", "docs", "verify", "diff", "apply", "doctor", "history", "emit",
                                  "drill"])
def test_a_misspelt_environment_gets_the_closest_name_on_every_command(run_cli, tmp_path: Path, name: str) -> None:
    result = run_cli(*_command(name, tmp_path, env="dve"))
    assert (result.code, result.out, result.err) == (2, "", UNKNOWN_DVE)


def test_a_misspelt_tier_gets_the_closest_name(run_cli) -> None:
    result = run_cli("drill", "--env", "dev", "--tier", "kernal")  # the names first, before a missing Pushgateway
    assert (result.code, result.out, result.err) == (
        2, "", "obsgen: error: unknown tier 'kernal': did you mean 'kernel'? (the spec defines: kernel, governance, "
               "optional)\n")


def test_a_tier_nothing_like_the_spec_s_lists_them_without_a_guess(run_cli) -> None:
    result = run_cli("drill", "--env", "dev", "--tier", "xyz", "--pushgateway", UNREACHABLE)
    assert (result.code, result.err) == (2, "obsgen: error: unknown tier 'xyz' (the spec defines: kernel, governance, "
                                            "optional)\n")


def test_verify_of_an_environment_the_spec_defines_but_nobody_built_says_to_build(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "dev").mkdir()
    (out / "dev" / "manifest.json").write_text("{}")
    result = run_cli("verify", "--out", str(out), "--env", "staging")
    assert (result.code, result.err) == (2, f"obsgen: error: {out}/staging does not exist: run `obsgen build` first\n")


def test_history_names_the_ledger_s_environments_beside_the_spec_s(run_cli) -> None:
    result = run_cli("history", "--env", "Prdo")
    assert (result.code, result.err) == (2, "obsgen: error: unknown environment 'Prdo': did you mean 'prod'? "
                                            "(the spec defines: dev, staging, prod)\n")


# --- 2. names match ignoring case when only one does ----------------------------------------------------------
def test_the_shared_resolver_matches_environments_and_tiers_ignoring_case() -> None:
    from obsgen.cli.common import environment, tier
    from obsgen.errors import ObsgenError, known_name
    from obsgen.spec import load_spec

    model = load_spec(str(ROOT / SPEC))
    assert environment(model, "Dev").name == "dev"
    assert environment(model, "PROD").name == "prod"
    assert tier(model, "Kernel") == "kernel"
    assert known_name("tier", "a", ["A", "a"]) == "a"  # an exact match first
    with pytest.raises(ObsgenError) as raised:
        known_name("tier", "b", ["A", "a"])
    assert str(raised.value) == "unknown tier 'b' (the spec defines: A, a)"
    with pytest.raises(ObsgenError) as raised:  # two names equal ignoring case: neither is guessed
        known_name("tier", "Ab", ["aB", "AB"])
    assert str(raised.value).startswith("unknown tier 'Ab'")


def test_build_and_check_take_an_environment_in_any_case(run_cli, tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    built = run_cli("build", "--out", str(lower), "--env", "dev")
    result = run_cli("build", "--out", str(upper), "--env", "Dev")
    assert (result.code, result.err) == (0, built.err)
    assert result.out == built.out.replace(str(lower), str(upper))
    assert sorted(p.name for p in upper.iterdir()) == ["dev"]
    result = run_cli("check", "--out", str(upper), "--env", "DEV", "--no-cache")
    assert (result.code, result.out) == (0, run_cli("check", "--out", str(lower), "--env", "dev", "--no-cache")
                                         .out.replace(str(lower), str(upper)))


def test_emit_takes_an_environment_in_any_case(run_cli, tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower.prom", tmp_path / "upper.prom"
    expected = run_cli("emit", "--env", "dev", "--report", REPORT, "--textfile", str(lower))
    result = run_cli("emit", "--env", "Dev", "--report", REPORT, "--textfile", str(upper))
    assert (result.code, result.err) == (0, expected.err)
    assert result.out == expected.out.replace(str(lower), str(upper))
    assert upper.read_text() == lower.read_text()


def test_history_takes_an_environment_in_any_case(run_cli) -> None:
    result = run_cli("history", "--env", "Dev")
    assert (result.code, result.out, result.err) == (0, "No applies recorded for dev.\n", "")


def test_diff_takes_an_environment_in_any_case(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the name, diff goes on to the backend (here one that is not there) with the spec's own name."""
    expected = run_cli("diff", "--env", "dev", "--only", "grafana", "--grafana-url", UNREACHABLE, "--compile")
    assert expected.code == 2 and expected.err.startswith("obsgen: error: ")
    result = run_cli("diff", "--env", "Dev", "--only", "grafana", "--grafana-url", UNREACHABLE, "--compile")
    assert (result.code, result.out, result.err) == (expected.code, expected.out, expected.err)


# --- 3. verify checks the spec it is given ---------------------------------------------------------------------
def _problems() -> str:
    """validate's problem lines for BROKEN (its golden file, without the summary line)."""
    return "".join((ROOT / BROKEN).with_suffix(".expected").read_text().splitlines(keepends=True)[:-1])


def test_verify_of_a_spec_with_problems_fails_as_validate_does(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "dev").mkdir()
    (out / "dev" / "manifest.json").write_text("{}")
    validate = run_cli("validate", "--spec", BROKEN)
    result = run_cli("verify", "--spec", BROKEN, "--out", str(out))
    assert (result.code, result.out, result.err) == (2, "", validate.err)
    assert validate.err == _problems() + f"obsgen: 5 problems in {BROKEN}\n"


# --- 4. only commands that write or apply say that nothing was ------------------------------------------------
@pytest.mark.parametrize("name,ending", [
    ("validate", ""), ("check", ""), ("docs", ""), ("verify", ""), ("diff", ""), ("doctor", ""), ("emit", ""),
    ("drill", ""),
    ("build", "; nothing was written"), ("apply", "; nothing was applied")])
def test_a_spec_with_problems_ends_with_what_the_command_did_not_do(run_cli, tmp_path: Path, name: str,
                                                                    ending: str) -> None:
    result = run_cli(*_command(name, tmp_path), "--spec", BROKEN)
    assert (result.code, result.out, result.err) == (2, "", _problems() + f"obsgen: 5 problems in {BROKEN}{ending}\n")


# --- 5. a spec path nobody typed says where it came from --------------------------------------------------------
def test_a_spec_from_obsgen_spec_that_cannot_be_read_names_the_variable(run_cli, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "x" / "selftest.yaml"
    monkeypatch.setenv("OBSGEN_SPEC", str(spec))
    result = run_cli("validate")
    assert (result.code, result.out, result.err) == (
        2, "", f"{spec}:1:1: cannot read spec: No such file or directory (from $OBSGEN_SPEC)\n"
               f"obsgen: 1 problem in {spec}\n")
    result = run_cli("build", "--out", str(tmp_path / "out"))
    assert (result.code, result.err) == (
        2, f"{spec}:1:1: cannot read spec: No such file or directory (from $OBSGEN_SPEC)\n"
           f"obsgen: 1 problem in {spec}; nothing was written\n")


def test_the_default_spec_missing_outside_the_repository_says_how_to_name_one(run_cli, tmp_path: Path) -> None:
    result = run_cli("validate", cwd=tmp_path)
    assert (result.code, result.out, result.err) == (
        2, "", "specs/selftest.yaml:1:1: cannot read spec: No such file or directory (the default; give --spec FILE "
               "or set $OBSGEN_SPEC)\nobsgen: 1 problem in specs/selftest.yaml\n")


def test_a_spec_given_with_spec_that_cannot_be_read_is_named_as_given(run_cli, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSGEN_SPEC", str(tmp_path / "other.yaml"))
    result = run_cli("validate", "--spec", "specs/nope.yaml")
    assert (result.code, result.err) == (2, "specs/nope.yaml:1:1: cannot read spec: No such file or directory\n"
                                            "obsgen: 1 problem in specs/nope.yaml\n")


def test_an_empty_obsgen_spec_is_as_if_unset(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSGEN_SPEC", "")
    result = run_cli("validate")
    assert result.code == 0 and result.out.startswith(f"{SPEC}: OK (")
