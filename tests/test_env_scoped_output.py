"""Per-environment manifests, `check --stat` and the summary of long diffs, and the spec's environment order.

A manifest depends only on its own environment's files, so a change to one environment rewrites files of
that environment only. `check` prints a short diff as it is; a diff longer than 40 lines is summarised
(each drifted file with its +added -removed counts, then the first 40 lines); `--stat` prints only the
counts, `--full` the whole diff. Every listing names environments in the order the spec gives them.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import REFERENCE_SPEC

SPEC_ORDER = ["dev", "staging", "prod"]  # specs/selftest.yaml; not alphabetical, on purpose


@pytest.fixture
def reference(run_cli, tmp_path: Path) -> tuple[Path, Path]:
    """(spec, out): a copy of the reference spec under its own name (generated headers name the spec file),
    built into a fresh output directory."""
    spec = tmp_path / "spec" / "selftest.yaml"
    spec.parent.mkdir()
    shutil.copy(REFERENCE_SPEC, spec)
    out = tmp_path / "generated"
    assert run_cli("build", "--spec", str(spec), "--out", str(out)).code == 0
    return spec, out


def files_of(out: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in out.rglob("*") if p.is_file()}


def test_changing_only_prods_tolerance_rewrites_only_files_under_prod(run_cli, reference) -> None:
    spec, out = reference
    before = files_of(out)
    text = spec.read_text()
    prod = text.index("  - name: prod\n")
    assert text.count("tolerance: {governance: 0}", prod) == 1  # prod's, the only one after its name
    spec.write_text(text[:prod] + text[prod:].replace("tolerance: {governance: 0}", "tolerance: {governance: 1}"))

    result = run_cli("build", "--spec", str(spec), "--out", str(out))
    assert result.code == 0, result.err
    written = [line.split(None, 1)[1] for line in result.out.splitlines() if line.startswith("wrote ")]
    assert written and all(path.startswith(f"{out}/prod/") for path in written)
    assert f"{out}/prod/manifest.json" in written
    after = files_of(out)
    assert set(after) == set(before)
    changed = {path for path in after if after[path] != before[path]}
    assert changed == {Path(p).relative_to(out).as_posix() for p in written}
    assert {path.split("/", 1)[0] for path in changed} == {"prod"}


def test_a_manifest_digests_exactly_its_environments_files_on_disk(reference) -> None:
    _, out = reference
    for env in SPEC_ORDER:
        manifest = json.loads((out / env / "manifest.json").read_text())
        on_disk = sorted(p.relative_to(out / env).as_posix() for p in (out / env).rglob("*")
                         if p.is_file() and p.name != "manifest.json")
        assert sorted(manifest["files"]) == on_disk
        listing = "".join(f"{hashlib.sha256((out / env / rel).read_bytes()).hexdigest()}  {rel}\n"
                          for rel in on_disk)  # what `sha256sum` prints for them, in path order
        assert manifest["files_sha256"] == hashlib.sha256(listing.encode()).hexdigest()


def test_a_spec_edit_that_changes_no_output_leaves_the_output_clean(run_cli, reference) -> None:
    spec, out = reference
    spec.write_text("# a comment changes the spec's digest, not what it produces\n" + spec.read_text())
    result = run_cli("check", "--spec", str(spec), "--out", str(out))
    assert (result.code, result.err) == (0, "")


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(old) >= count, (path, old)
    path.write_text(text.replace(old, new, count))


def test_a_short_diff_is_printed_whole_and_stat_prints_only_counts(run_cli, reference) -> None:
    spec, out = reference
    rules = out / "prod/prometheus/selftest.rules.yaml"
    edit(rules, "for: 5m", "for: 6m")  # one line replaced: +1 -1
    full = run_cli("check", "--spec", str(spec), "--out", str(out))
    assert full.code == 1
    assert full.out.splitlines()[:3] == [f"drifted: {rules}", f"--- {rules} (on disk)",
                                         f"+++ {rules} (built from selftest.yaml)"]
    assert "-    for: 6m" in full.out.splitlines() and "+    for: 5m" in full.out.splitlines()
    assert "more diff line" not in full.out

    stat = run_cli("check", "--spec", str(spec), "--out", str(out), "--stat")
    assert (stat.code, stat.out) == (1, f"drifted: {rules}  +1 -1\n")
    assert stat.err == full.err == f"obsgen check: 1 file out of date in {out}/; run `obsgen build` to regenerate\n"


def test_a_long_diff_is_summarised_and_full_prints_all_of_it(run_cli, reference) -> None:
    spec, out = reference
    docs, rules = out / "dev/docs/alerts.md", out / "staging/prometheus/selftest.rules.yaml"
    docs_lines = docs.read_text().count("\n")
    docs.write_text("hand-written\n")  # every line of the catalog removed, one added
    edit(rules, "for: 5m", "for: 6m")
    (out / "prod/stray.txt").write_text("not obsgen's")

    summary = run_cli("check", "--spec", str(spec), "--out", str(out))
    assert summary.code == 1
    lines = summary.out.splitlines()
    width = len(str(rules))
    assert lines[:3] == [
        f"drifted: {str(docs):<{width}}  +{docs_lines} -1",
        f"drifted: {rules}  +1 -1",
        f"extra:   {out}/prod/stray.txt (not written by obsgen; move it out of {out}/prod/ or delete it)"]
    full = run_cli("check", "--spec", str(spec), "--out", str(out), "--full")
    assert full.code == 1
    diff = [line for line in full.out.splitlines() if not line.startswith(("drifted: ", "extra: "))]
    assert diff[0] == f"--- {docs} (on disk)" and f"+++ {rules} (built from selftest.yaml)" in diff
    assert lines[3:] == [*diff[:40], f"... {len(diff) - 40} more diff lines not shown: `obsgen check --full` "
                                     f"prints the whole diff, `obsgen check --stat` only the counts"]
    assert summary.err == full.err

    stat = run_cli("check", "--spec", str(spec), "--out", str(out), "--stat")
    assert (stat.code, stat.out.splitlines()) == (1, lines[:3])


def test_stat_and_full_exclude_each_other(run_cli, reference) -> None:
    spec, out = reference
    with pytest.raises(SystemExit) as exit_info:
        run_cli("check", "--spec", str(spec), "--out", str(out), "--stat", "--full")
    assert exit_info.value.code == 2


def test_build_and_check_list_environments_in_the_spec_order(run_cli, reference) -> None:
    spec, out = reference
    for env in SPEC_ORDER:
        edit(out / env / "docs/alerts.md", "# ", "#  ")
    check = run_cli("check", "--spec", str(spec), "--out", str(out), "--stat")
    assert [line.split()[1] for line in check.out.splitlines()] == \
        [f"{out}/{env}/docs/alerts.md" for env in SPEC_ORDER]

    build = run_cli("build", "--spec", str(spec), "--out", str(out), "--env", "prod", "--env", "staging")
    assert build.out.splitlines() == [
        f"wrote   {out}/staging/docs/alerts.md", f"wrote   {out}/prod/docs/alerts.md",
        f"obsgen build: staging, prod from {spec} into {out}/: 2 written, 46 unchanged, 0 removed"]


def test_docs_prints_every_environment_in_the_spec_order(run_cli) -> None:
    result = run_cli("docs")
    assert result.code == 0
    headers = [line for line in result.out.splitlines() if line.startswith("<!-- ") and "/docs/" in line]
    assert headers == [f"<!-- {env}/docs/alerts.md -->" for env in SPEC_ORDER]


def test_verify_lists_environments_in_the_order_of_the_spec(run_cli, reference, monkeypatch) -> None:
    spec, out = reference
    monkeypatch.setattr("obsgen.run.verify.verify", lambda out, envs, jobs=0: iter(()))  # the order, not the tests, here
    monkeypatch.setenv("OBSGEN_SPEC", str(spec))
    result = run_cli("verify", "--out", str(out))
    assert result.out.splitlines() == [*(f"{env}: no generated tests" for env in SPEC_ORDER), "0 passed, 0 failed"]

    # named with --env: still in the spec's order, an environment the spec does not name (built from an
    # earlier spec) after its own
    shutil.copytree(out / "dev", out / "aaa")
    result = run_cli("verify", "--out", str(out), "--env", "prod", "--env", "aaa", "--env", "dev")
    assert result.out.splitlines()[:3] == ["dev: no generated tests", "prod: no generated tests",
                                           "aaa: no generated tests"]


def test_verify_without_a_readable_spec_lists_environments_alphabetically(run_cli, reference, monkeypatch,
                                                                          tmp_path: Path) -> None:
    _, out = reference
    monkeypatch.setattr("obsgen.run.verify.verify", lambda out, envs, jobs=0: iter(()))
    monkeypatch.setenv("OBSGEN_SPEC", str(tmp_path / "no-such-spec.yaml"))
    result = run_cli("verify", "--out", str(out))
    assert result.out.splitlines()[:3] == [f"{env}: no generated tests" for env in sorted(SPEC_ORDER)]


def test_the_reference_spec_really_orders_its_environments_unalphabetically() -> None:
    import yaml

    names = [e["name"] for e in yaml.safe_load(REFERENCE_SPEC.read_text())["environments"]]
    assert names == SPEC_ORDER != sorted(SPEC_ORDER)
