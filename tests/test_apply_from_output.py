"""diff and apply take an up-to-date output as it is instead of compiling (issue: apply does only the work
of the apply), and compile whenever the output cannot be shown to be the spec's compile."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REFERENCE_SPEC, ROOT
from doubles.grafana import GrafanaDouble

import obsgen.compile
from obsgen.compile import DEPLOYED
from obsgen.generate import compile_spec
from obsgen.output.compiled import read_deployed
from obsgen.spec import load_spec

TOKEN = "glsa_test_token_value_0123456789"
SPECS = {"reference": REFERENCE_SPEC, "minimal": ROOT / "tests/specs/minimal.yaml",
         "large": ROOT / "tests/specs/large.jsonnet"}


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every environment compiled from here on, by name."""
    seen: list[str] = []
    real = obsgen.compile.compile_env

    def spy(model, env, only=()):  # noqa: ANN001, ANN202
        seen.append(env.name)
        return real(model, env, only)

    monkeypatch.setattr(obsgen.compile, "compile_env", spy)
    return seen


@pytest.fixture
def built(run_cli, tmp_path: Path) -> tuple[Path, Path]:
    """The reference spec (copied) and its output, built by `obsgen build`."""
    spec = tmp_path / "selftest.yaml"
    shutil.copy(REFERENCE_SPEC, spec)
    out = tmp_path / "generated"
    assert run_cli("build", "--spec", str(spec), "--out", str(out)).code == 0
    return spec, out


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    with GrafanaDouble(token=TOKEN) as double:
        yield double


def live(run_cli, grafana: GrafanaDouble, command: str, spec: Path, *args: str):
    return run_cli(command, "--spec", str(spec), "--env", "dev", "--only", "grafana", "--grafana-url", grafana.url,
                   *args)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_what_is_read_from_a_built_output_is_byte_for_byte_what_a_compile_deploys(name: str, tmp_path: Path,
                                                                                  run_cli) -> None:
    out = tmp_path / "generated"
    assert run_cli("build", "--spec", str(SPECS[name]), "--out", str(out)).code == 0
    model = load_spec(str(SPECS[name]))
    for env in model.environments:
        # every deployed target alone too, for the reference spec (the large spec's compiles take seconds)
        for targets in [tuple(DEPLOYED)] + ([(t,) for t in DEPLOYED] if name == "reference" else []):
            compiled = compile_spec(str(SPECS[name]), [env.name], only=targets).artifacts
            read = read_deployed(out, model, env, targets)
            assert read is not None, (env.name, targets)
            assert [(a.path, a.content) for a in read] == [(a.path, a.content) for a in compiled], (env.name, targets)


def test_apply_and_diff_after_a_build_of_an_unchanged_spec_compile_nothing(run_cli, built, grafana,
                                                                          compiles: list[str]) -> None:
    spec, out = built
    applied = live(run_cli, grafana, "apply", spec, "--out", str(out), "--yes")
    assert applied.code == 0, applied.err
    assert applied.out.splitlines()[-1] == "dev: applied 2 changes."
    diff = live(run_cli, grafana, "diff", spec, "--out", str(out), "--exit-code")
    assert (diff.code, diff.out) == (0, "dev: No changes: the live state matches the spec (2 objects).\n")
    assert compiles == []
    # and what was applied is the file of the output
    dashboard = json.loads((out / "dev/grafana/selftest-overview.json").read_bytes())
    assert grafana.dashboard(dashboard["uid"])["title"] == dashboard["title"]


def test_compile_is_forced_by_the_flag(run_cli, built, grafana, compiles: list[str]) -> None:
    spec, out = built
    assert live(run_cli, grafana, "diff", spec, "--out", str(out), "--compile").code == 0
    assert compiles == ["dev"]


def _title_edited(path: Path) -> None:
    dashboard = json.loads(path.read_bytes())
    dashboard["title"] = "Edited by hand"
    path.write_text(json.dumps(dashboard, indent=2, sort_keys=True) + "\n")


def test_a_hand_edited_file_is_not_deployed_the_spec_is_compiled(run_cli, built, grafana,
                                                                 compiles: list[str]) -> None:
    spec, out = built
    _title_edited(out / "dev/grafana/selftest-overview.json")
    assert live(run_cli, grafana, "apply", spec, "--out", str(out), "--yes").code == 0
    assert compiles == ["dev"]
    assert grafana.dashboard("selftest-dev-selftest-overview")["title"] == "Selftest overview (dev)"


def test_a_changed_spec_is_compiled_and_its_change_deployed(run_cli, built, grafana, compiles: list[str]) -> None:
    spec, out = built
    spec.write_text(spec.read_text().replace("title: Selftest overview", "title: Selftest summary", 1))
    assert "Selftest summary" in spec.read_text()
    assert live(run_cli, grafana, "apply", spec, "--out", str(out), "--yes").code == 0
    assert compiles == ["dev"]
    assert grafana.dashboard("selftest-dev-selftest-overview")["title"] == "Selftest summary (dev)"


def test_output_of_another_obsgen_version_is_compiled(run_cli, built, grafana, compiles: list[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec, out = built
    monkeypatch.setattr("obsgen.compile.manifest.__version__", "99.0.0")
    assert live(run_cli, grafana, "diff", spec, "--out", str(out)).code == 0
    assert compiles == ["dev"]


@pytest.mark.parametrize("change", ["extra file", "missing file", "linked directory", "no manifest",
                                    "manifest not json", "other spec's output"])
def test_an_output_that_cannot_be_shown_up_to_date_is_compiled(run_cli, built, grafana, compiles: list[str],
                                                               change: str, tmp_path: Path) -> None:
    spec, out = built
    grafana_dir = out / "dev/grafana"
    if change == "extra file":
        (grafana_dir / "other.json").write_text("{}\n")
    elif change == "missing file":
        (grafana_dir / "selftest-overview.json").unlink()
    elif change == "linked directory":
        moved = tmp_path / "elsewhere"
        grafana_dir.rename(moved)
        grafana_dir.symlink_to(moved)
    elif change == "no manifest":
        (out / "dev/manifest.json").unlink()
    elif change == "manifest not json":
        (out / "dev/manifest.json").write_text("{")
    else:
        other = tmp_path / "other"
        assert run_cli("build", "--spec", str(ROOT / "tests/specs/minimal.yaml"), "--out", str(other)).code == 0
        shutil.rmtree(out / "dev")
        shutil.copytree(other / sorted(p.name for p in other.iterdir())[0], out / "dev")
        compiles.clear()  # (that build compiled the other spec)
    assert live(run_cli, grafana, "apply", spec, "--out", str(out), "--yes").code == 0
    assert compiles == ["dev"]
    assert grafana.dashboard("selftest-dev-selftest-overview")["title"] == "Selftest overview (dev)"


def test_a_change_to_prod_only_rewrites_prod_and_leaves_the_other_manifests_as_they_were(run_cli, built) -> None:
    spec, out = built
    before = {env: (out / env / "manifest.json").read_bytes() for env in ("dev", "staging", "prod")}
    text = spec.read_text()
    spec.write_text(text + "\n# a comment changes the spec file, not what any environment compiles from\n")
    assert run_cli("build", "--spec", str(spec), "--out", str(out)).code == 0
    assert {env: (out / env / "manifest.json").read_bytes() for env in before} == before
    prod_channel = 'channel: "#selftest-prod"'
    assert text.count(prod_channel) == 1
    spec.write_text(text.replace(prod_channel, 'channel: "#selftest-prod-alerts"'))
    assert run_cli("build", "--spec", str(spec), "--out", str(out)).code == 0
    after = {env: (out / env / "manifest.json").read_bytes() for env in before}
    assert [env for env in before if after[env] != before[env]] == ["prod"]
