"""Output ownership: `obsgen build` and `obsgen check` never destroy a file obsgen did not write.

obsgen owns only what its manifests (<out>/<env>/manifest.json) list. A non-empty output directory without
one is refused unless --allow-nonempty; files a person added are kept (and named); inside an environment's
tree they are drift for `check`, elsewhere they are nobody's business.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import ROOT
from test_cli_build_check import MINIMAL, MINIMAL_FILES, N, count_compiles, with_qa

REFUSED = ("obsgen: error: refusing to build into {out}/: it is not empty and holds no obsgen manifest "
           "(<env>/manifest.json); choose an empty or new directory, or pass --allow-nonempty to write there "
           "anyway (obsgen never removes files it did not write)\n")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (symlinks as their target path), by relative path."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            files[rel] = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
    return files


def wrote(out: str, files: list[str]) -> list[str]:
    return [f"wrote   {out}/{f}" for f in files]


def test_a_directory_holding_foreign_files_is_refused_and_left_intact(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "site"
    (out / "dev").mkdir(parents=True)
    (out / "index.html").write_text("<h1>someone's site</h1>")
    (out / "dev/notes.md").write_text("notes")
    (out / "terraform").mkdir()
    (out / "terraform/manifest.json").write_text(json.dumps({"generator": "terraform", "environment": "terraform",
                                                              "files": {"main.tf": "x"}}))
    before = snapshot(out)
    result = run_cli("build", "--spec", MINIMAL, "--out", str(out))
    assert (result.code, result.out, result.err) == (2, "", REFUSED.format(out=out))
    assert snapshot(out) == before  # nothing written, nothing removed
    check = run_cli("check", "--spec", MINIMAL, "--out", str(out))  # check reads, it never writes
    assert check.code == 1 and snapshot(out) == before


def test_an_empty_or_missing_directory_needs_no_flag(run_cli, tmp_path: Path) -> None:
    (tmp_path / "empty/sub").mkdir(parents=True)  # directories without files are empty
    for out in (tmp_path / "empty", tmp_path / "missing"):
        assert run_cli("build", "--spec", MINIMAL, "--out", str(out)).code == 0
        assert sorted(snapshot(out)) == MINIMAL_FILES


def test_an_output_path_that_is_a_file_is_an_error(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "generated"
    out.write_text("a file")
    result = run_cli("build", "--spec", MINIMAL, "--out", str(out))
    assert (result.code, result.err) == (2, f"obsgen: error: cannot build into {out}: it is not a directory\n")
    assert out.read_text() == "a file"


def test_allow_nonempty_writes_obsgen_files_beside_foreign_ones_and_keeps_them(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "site"
    (out / "dev").mkdir(parents=True)
    (out / "index.html").write_text("<h1>someone's site</h1>")
    (out / "dev/notes.md").write_text("notes")
    before = snapshot(out)
    result = run_cli("build", "--spec", MINIMAL, "--out", str(out), "--allow-nonempty")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        *wrote(str(out), MINIMAL_FILES),
        f"kept    {out}/dev/notes.md (not written by obsgen)",
        f"obsgen build: dev from {MINIMAL} into {out}/: {N} written, 0 unchanged, 0 removed, "
        f"1 kept (not written by obsgen)"]
    assert snapshot(out) == {**before, **{f: (out / f).read_bytes() for f in MINIMAL_FILES}}
    again = run_cli("build", "--spec", MINIMAL, "--out", str(out))  # now it holds obsgen's manifest: no flag
    assert again.code == 0
    assert (out / "index.html").read_bytes() == before["index.html"]
    assert (out / "dev/notes.md").read_bytes() == before["dev/notes.md"]


def checkout(root: Path) -> dict[str, bytes]:
    """A repository-like tree: .git, a spec, sources, a README."""
    (root / ".git/objects/ab").mkdir(parents=True)
    (root / ".git/HEAD").write_text("ref: refs/heads/main\n")
    (root / ".git/objects/ab/cdef0123").write_bytes(b"\x78\x01blob")
    (root / "specs").mkdir()
    (root / "specs/mini.yaml").write_text(ROOT.joinpath(MINIMAL).read_text())
    (root / "src").mkdir()
    (root / "src/app.py").write_text("print('hello')\n")
    (root / "README.md").write_text("# my service\n")
    return snapshot(root)


def test_out_dot_in_a_checkout_never_removes_a_file_obsgen_did_not_write(run_cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    before = checkout(repo)
    refused = run_cli("build", "--spec", "specs/mini.yaml", "--out", ".", cwd=repo)
    assert (refused.code, refused.out, refused.err) == (2, "", REFUSED.format(out="."))
    assert snapshot(repo) == before

    result = run_cli("build", "--spec", "specs/mini.yaml", "--out", ".", "--allow-nonempty", cwd=repo)
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        *(f"wrote   {f}" for f in MINIMAL_FILES),
        f"obsgen build: dev from specs/mini.yaml into ./: {N} written, 0 unchanged, 0 removed"]
    built = snapshot(repo)
    assert {k: v for k, v in built.items() if k in before} == before
    assert sorted(set(built) - set(before)) == MINIMAL_FILES

    assert run_cli("check", "--spec", "specs/mini.yaml", "--out", ".", cwd=repo).code == 0
    (repo / "dev/NOTES.md").write_text("a person's notes in obsgen's tree")
    spec = repo / "specs/mini.yaml"
    spec.write_text(with_qa(spec.read_text()).replace("- name: dev\n", "- name: staging\n"))  # dev leaves
    result = run_cli("build", "--spec", "specs/mini.yaml", "--out", ".", cwd=repo)
    assert result.code == 0, result.err
    qa, staging = ([f.replace("dev/", f"{e}/", 1) for f in MINIMAL_FILES] for e in ("qa", "staging"))
    assert result.out.splitlines() == [
        *(f"wrote   {f}" for f in staging + qa),  # in the spec's environment order, then by path
        *(f"removed {f}" for f in MINIMAL_FILES),
        "kept    dev/NOTES.md (not written by obsgen)",  # environments are named in spec order:
        f"obsgen build: staging, qa from specs/mini.yaml into ./: {2 * N} written, 0 unchanged, {N} removed, "
        f"1 kept (not written by obsgen)"]
    after = snapshot(repo)
    assert {k: v for k, v in after.items() if k in before and k != "specs/mini.yaml"} == \
        {k: v for k, v in before.items() if k != "specs/mini.yaml"}
    assert sorted(set(after) - set(before)) == sorted(["dev/NOTES.md", *qa, *staging])


def test_the_check_fast_path_hashes_only_environment_trees(run_cli, tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    checkout(repo)
    assert run_cli("build", "--spec", "specs/mini.yaml", "--out", ".", "--allow-nonempty", cwd=repo).code == 0
    calls = count_compiles(monkeypatch)
    (repo / "src/app.py").write_text("print('edited')\n")  # the rest of the checkout is not obsgen's output
    (repo / "notes.txt").write_text("new")
    result = run_cli("check", "--spec", "specs/mini.yaml", "--out", ".", cwd=repo)
    assert (result.code, result.out) == (0, f"obsgen check: ./ matches specs/mini.yaml ({N} files)\n")
    assert calls == []  # answered from the stamp
    (repo / "dev/stray.rules.yaml").write_text("groups: []\n")  # but anything in an environment tree counts
    result = run_cli("check", "--spec", "specs/mini.yaml", "--out", ".", cwd=repo)
    assert result.code == 1 and len(calls) == 1
    assert result.out == "extra:   dev/stray.rules.yaml (not written by obsgen; move it out of dev/ or delete it)\n"


def test_readmes_added_under_generated_survive_and_only_the_one_in_an_env_tree_is_drift(
        run_cli, tmp_path: Path) -> None:
    out = tmp_path / "generated"
    assert run_cli("build", "--spec", MINIMAL, "--out", str(out)).code == 0
    (out / "README.md").write_text("generated by obsgen; do not edit by hand\n")
    (out / "dev/README.md").write_text("dev's files\n")
    result = run_cli("build", "--spec", MINIMAL, "--out", str(out))
    assert (result.code, result.out.splitlines()) == (0, [
        f"kept    {out}/dev/README.md (not written by obsgen)",
        f"obsgen build: dev from {MINIMAL} into {out}/: 0 written, {N} unchanged, 0 removed, "
        f"1 kept (not written by obsgen)"])
    assert (out / "README.md").read_text() == "generated by obsgen; do not edit by hand\n"
    assert (out / "dev/README.md").read_text() == "dev's files\n"
    for _ in range(2):  # the build left no stamp that would call this clean
        check = run_cli("check", "--spec", MINIMAL, "--out", str(out))
        assert (check.code, check.out, check.err) == (
            1, f"extra:   {out}/dev/README.md (not written by obsgen; move it out of {out}/dev/ or delete it)\n",
            f"obsgen check: 1 file not written by obsgen inside the environment directories of {out}/; move it "
            f"elsewhere or delete it (`obsgen build` never removes it)\n")
    (out / "dev/README.md").unlink()
    check = run_cli("check", "--spec", MINIMAL, "--out", str(out))
    assert (check.code, check.out) == (0, f"obsgen check: {out}/ matches {MINIMAL} ({N} files)\n")


def test_an_environment_that_left_the_spec_loses_its_files_but_not_a_foreign_one(run_cli, tmp_path: Path) -> None:
    spec, out = tmp_path / "mini.yaml", tmp_path / "generated"
    minimal = ROOT.joinpath(MINIMAL).read_text()
    spec.write_text(with_qa(minimal))
    assert run_cli("build", "--spec", str(spec), "--out", str(out)).code == 0
    (out / "qa/tests/NOTES.md").write_text("why qa's routing test matters")
    spec.write_text(minimal)
    qa_files = [f.replace("dev/", "qa/", 1) for f in MINIMAL_FILES]

    check = run_cli("check", "--spec", str(spec), "--out", str(out))
    assert check.code == 1
    assert check.out.splitlines() == [  # dev's files, its manifest included, do not depend on qa
        *(f"extra:   {out}/{f} (written by obsgen, no longer produced by the spec)" for f in qa_files),
        f"extra:   {out}/qa/tests/NOTES.md (not written by obsgen; move it out of {out}/qa/ or delete it)"]
    assert check.err.splitlines() == [
        f"obsgen check: {N} files out of date in {out}/; run `obsgen build` to regenerate",
        f"obsgen check: 1 file not written by obsgen inside the environment directories of {out}/; move it "
        f"elsewhere or delete it (`obsgen build` never removes it)"]

    result = run_cli("build", "--spec", str(spec), "--out", str(out))
    assert result.code == 0
    assert result.out.splitlines() == [
        *(f"removed {out}/{f}" for f in qa_files),
        f"kept    {out}/qa/tests/NOTES.md (not written by obsgen)",
        f"obsgen build: dev from {spec} into {out}/: 0 written, {N} unchanged, {N} removed, "
        f"1 kept (not written by obsgen)"]
    assert sorted(snapshot(out / "qa")) == ["tests/NOTES.md"]
    assert sorted(p.name for p in (out / "qa").iterdir()) == ["tests"]  # emptied directories are gone
    # qa has no manifest any more: its tree is nobody's, so the note is no longer obsgen's business
    assert run_cli("check", "--spec", str(spec), "--out", str(out)).code == 0


def test_a_forged_manifest_cannot_make_obsgen_delete_outside_its_tree(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "work/generated"
    assert run_cli("build", "--spec", MINIMAL, "--out", str(out)).code == 0
    victims = tmp_path / "victims"
    (victims / "linked").mkdir(parents=True)
    for name in ("precious.txt", "absolute.txt", "linked/secret.txt"):
        (victims / name).write_text(f"{name} is not obsgen's")
    (tmp_path / "work/sibling.txt").write_text("beside the output directory")
    (out / "qa").mkdir()
    (out / "qa/link").symlink_to(victims / "linked")
    (out / "qa/manifest.json").write_text(json.dumps({
        "generator": "obsgen v0.2.0", "environment": "qa", "files": {
            "../../../victims/precious.txt": "0" * 64, "../../sibling.txt": "0" * 64,
            "../dev/manifest.json": "0" * 64, str(victims / "absolute.txt"): "0" * 64,
            "link/secret.txt": "0" * 64, "./link/../../../victims/precious.txt": "0" * 64}}))
    dev_manifest = json.loads((out / "dev/manifest.json").read_text())
    dev_manifest["files"]["../../../victims/precious.txt"] = "0" * 64  # a forged entry in a spec env's manifest
    (out / "dev/manifest.json").write_text(json.dumps(dev_manifest))
    before = snapshot(tmp_path / "victims"), (tmp_path / "work/sibling.txt").read_text()

    result = run_cli("build", "--spec", MINIMAL, "--out", str(out))
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"wrote   {out}/dev/manifest.json",
        f"removed {out}/qa/manifest.json",  # the only file the forged manifest could name inside its tree
        f"kept    {out}/qa/link (not written by obsgen)",
        f"obsgen build: dev from {MINIMAL} into {out}/: 1 written, {N - 1} unchanged, 1 removed, "
        f"1 kept (not written by obsgen)"]
    assert (snapshot(tmp_path / "victims"), (tmp_path / "work/sibling.txt").read_text()) == before
    assert sorted(snapshot(out / "dev")) == [f.removeprefix("dev/") for f in MINIMAL_FILES]


@pytest.mark.parametrize("command", ["build", "check"])
def test_help_names_the_ownership_rules_and_the_flag_with_an_example(command: str, capsys) -> None:
    from obsgen.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    examples = capsys.readouterr().out.split("examples:")[1]
    assert "obsgen build --out docs/observability --allow-nonempty" in examples
    assert "not written by obsgen" in examples or "did not write" in examples
