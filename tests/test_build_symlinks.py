"""`obsgen build` never writes through a symlink it did not create, and `obsgen check` never follows one.

A pull request can commit a symlink inside the output tree (`generated/dev/grafana -> ~/.docker`); a build on
the CI runner would then overwrite files there, and a check would read them and print them in its diff.
Either command refuses with one line naming the link (exit 2) before it writes (or reads) anything.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ROOT

SPEC = "specs/selftest.yaml"


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under `root`: file bytes, symlink targets, directories, by relative path."""
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            found[rel] = ("link", os.readlink(path)) if path.is_symlink() else (
                "dir" if path.is_dir() else path.read_bytes())
    return found


@pytest.fixture
def built(run_cli, tmp_path: Path) -> Path:
    out = tmp_path / "work/generated"
    assert run_cli("build", "--spec", SPEC, "--out", str(out)).code == 0
    return out


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """Someone else's directory holding a file named like one obsgen writes into the linked directory."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.json").write_text('{"auths": {"registry": {"auth": "c2VjcmV0"}}}')
    return victim


def _link_grafana(out: Path, victim: Path) -> None:
    """Replace generated/dev/grafana by a symlink to `victim`, holding the same files as before (so that a
    check following the link would find no drift, and a build would find only one file to rewrite)."""
    grafana = out / "dev/grafana"
    for item in grafana.iterdir():
        (victim / item.name).write_bytes(item.read_bytes())
    (victim / next(iter(sorted(grafana.iterdir()))).name).write_text("edited: a build would rewrite this\n")
    for item in grafana.iterdir():
        item.unlink()
    grafana.rmdir()
    grafana.symlink_to(victim, target_is_directory=True)


def test_build_refuses_a_symlinked_directory_inside_the_output_and_writes_nothing(run_cli, built: Path,
                                                                                  victim: Path) -> None:
    _link_grafana(built, victim)
    (built / "prod/prometheus/selftest.rules.yaml").write_text("stale\n")  # a file a build would rewrite
    before = snapshot(built.parent.parent)
    result = run_cli("build", "--spec", SPEC, "--out", str(built))
    assert result.code == 2
    assert result.out == ""
    assert result.err.splitlines() == [
        f"obsgen: error: refusing to build into {built}/: {built}/dev/grafana is a symlink (to {victim}), and "
        f"obsgen never writes through a symlink it did not create; replace it with a directory or remove it"]
    assert snapshot(built.parent.parent) == before  # not even the files elsewhere in the tree


def test_build_refuses_a_symlinked_environment_tree_and_a_symlinked_file(run_cli, built: Path, victim: Path,
                                                                         tmp_path: Path) -> None:
    rules = built / "staging/prometheus/selftest.rules.yaml"
    rules.unlink()
    rules.symlink_to(victim / "config.json")
    before = snapshot(tmp_path)
    result = run_cli("build", "--spec", SPEC, "--out", str(built))
    assert result.code == 2
    assert result.err.splitlines() == [
        f"obsgen: error: refusing to build into {built}/: {rules} is a symlink (to {victim}/config.json), and "
        f"obsgen never writes through a symlink it did not create; replace it with a directory or remove it"]
    assert snapshot(tmp_path) == before

    rules.unlink()
    moved = tmp_path / "elsewhere-prod"
    (built / "prod").rename(moved)
    (built / "prod").symlink_to(moved, target_is_directory=True)
    before = snapshot(tmp_path)
    result = run_cli("build", "--spec", SPEC, "--out", str(built))
    assert result.code == 2
    assert result.err.splitlines()[0].startswith(
        f"obsgen: error: refusing to build into {built}/: {built}/prod is a symlink (to {moved}), and ")
    assert snapshot(tmp_path) == before


def test_build_refuses_a_symlinked_output_directory(run_cli, tmp_path: Path, victim: Path) -> None:
    out = tmp_path / "generated"
    out.symlink_to(victim, target_is_directory=True)
    before = snapshot(tmp_path)
    result = run_cli("build", "--spec", SPEC, "--out", str(out), "--allow-nonempty")
    assert result.code == 2
    assert result.err.splitlines() == [
        f"obsgen: error: refusing to build into {out}/: {out} is a symlink (to {victim}), and obsgen never "
        f"writes through a symlink it did not create; replace it with a directory or remove it"]
    assert snapshot(tmp_path) == before


def test_a_relative_output_path_through_a_committed_symlink_is_refused(run_cli, tmp_path: Path,
                                                                       victim: Path) -> None:
    """`--out docs/observability` where the pull request made `docs` a symlink."""
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    (repo / "specs/selftest.yaml").write_bytes((ROOT / SPEC).read_bytes())
    (repo / "docs").symlink_to(victim, target_is_directory=True)
    before = snapshot(tmp_path)
    result = run_cli("build", "--spec", "specs/selftest.yaml", "--out", "docs/observability", cwd=repo)
    assert result.code == 2
    assert result.err.splitlines() == [
        f"obsgen: error: refusing to build into docs/observability/: docs is a symlink (to {victim}), and obsgen "
        f"never writes through a symlink it did not create; replace it with a directory or remove it"]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flags", [(), ("--full",), ("--no-cache",)])
def test_check_reports_a_symlink_instead_of_following_it(run_cli, built: Path, victim: Path, flags) -> None:
    _link_grafana(built, victim)
    result = run_cli("check", "--spec", SPEC, "--out", str(built), *flags)
    assert result.code == 2
    assert result.out == ""
    assert result.err.splitlines() == [
        f"obsgen: error: cannot check {built}/: {built}/dev/grafana is a symlink (to {victim}), and obsgen never "
        f"follows a symlink it did not create; replace it with a directory or remove it"]
    assert "c2VjcmV0" not in result.err


def test_check_after_a_clean_stamp_does_not_follow_a_symlinked_environment_tree(run_cli, built: Path,
                                                                                tmp_path: Path) -> None:
    """The fast path would hash the linked tree's files, find them unchanged, and answer "clean"."""
    assert run_cli("check", "--spec", SPEC, "--out", str(built)).code == 0
    moved = tmp_path / "elsewhere-dev"
    (built / "dev").rename(moved)
    (built / "dev").symlink_to(moved, target_is_directory=True)
    result = run_cli("check", "--spec", SPEC, "--out", str(built))
    assert result.code == 2
    assert result.err.splitlines()[0].startswith(f"obsgen: error: cannot check {built}/: {built}/dev is a symlink")


def test_a_symlink_obsgen_does_not_write_through_is_still_only_kept(run_cli, built: Path, victim: Path) -> None:
    """A link beside obsgen's files, on no path obsgen writes, is someone else's file: kept and named."""
    (built / "dev/docs/elsewhere").symlink_to(victim, target_is_directory=True)
    result = run_cli("build", "--spec", SPEC, "--out", str(built))
    assert result.code == 0, result.err
    assert f"kept    {built}/dev/docs/elsewhere (not written by obsgen)" in result.out.splitlines()
    assert (victim / "config.json").read_text() == '{"auths": {"registry": {"auth": "c2VjcmV0"}}}'
