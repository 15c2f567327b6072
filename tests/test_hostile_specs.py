"""A spec is data, not a key to the runner: what a pull request's spec can try, and the one clear line it gets.

Jsonnet imports stay inside the spec's own directory tree; the YAML loader bounds aliases, nesting and the
file it reads; error messages never quote huge values. Each case is a reproduction from issue 18: exit 2,
`file:line:col: message`, nothing read from outside and nothing written.
"""
from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import pytest
from conftest import ROOT

MINIMAL = (ROOT / "tests/specs/minimal.yaml").read_text()
SECRET = "s3cr3t-runner-token-0123456789"


def _jsonnet_spec(import_line: str) -> str:
    """The minimal spec as Jsonnet, with `import_line` (a `local x = ...;`) whose value lands, base64-encoded
    as log masking would miss it, in the service's owner."""
    import json

    import yaml

    data = yaml.safe_load(MINIMAL)
    data["service"]["owner"] = "__OWNER__"
    body = json.dumps(data, indent=2).replace('"__OWNER__"', "std.base64(leak)")
    return f"{import_line}\n{body}\n"


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """A checkout (spec directory `repo/specs`, a `.git/config` beside it) and a file outside it holding a secret."""
    repo = tmp_path / "repo"
    (repo / "specs/lib").mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / ".git/config").write_text(f'[remote "origin"]\n\turl = https://x:{SECRET}@git.example.com/r\n')
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    return {"repo": repo, "specs": repo / "specs", "outside": outside}


def _assert_refused(result, spec: Path, line: int, fragment: str, ending: str = "") -> None:
    assert result.code == 2, result
    assert result.out == ""
    lines = result.err.splitlines()
    assert lines[-1] == f"obsgen: 1 problem in {spec}{ending}"
    assert lines[0].startswith(f"{spec}:{line}:"), lines[0]
    assert fragment in lines[0], lines[0]
    assert SECRET not in result.err and base64.b64encode(SECRET.encode()).decode()[:12] not in result.err


@pytest.mark.parametrize("target", ["/proc/self/environ", "OUTSIDE", "../../.git/config", "../.git/config"])
@pytest.mark.parametrize("kind", ["importstr", "importbin"])
def test_a_jsonnet_import_outside_the_spec_directory_is_refused(run_cli, world, tmp_path: Path, monkeypatch,
                                                                target: str, kind: str) -> None:
    monkeypatch.setenv("OBSGEN_TEST_SECRET", SECRET)
    path = str(world["outside"]) if target == "OUTSIDE" else target
    leak = "std.base64(std.join('', std.map(std.char, x)))" if kind == "importbin" else "x"
    spec = world["specs"] / "team.jsonnet"
    spec.write_text(_jsonnet_spec(f"local x = {kind} '{path}'; local leak = {leak};"))
    out = tmp_path / "out"
    for command in (("validate",), ("check", "--full", "--out", str(out)), ("build", "--out", str(out))):
        result = run_cli(*command, "--spec", str(spec))
        _assert_refused(result, spec, 1, f"jsonnet: import '{path}' refused: ",
                        "; nothing was written" if command[0] == "build" else "")
        assert "only files inside the spec's directory" in result.err
    assert not out.exists()


def test_a_symlink_inside_the_spec_directory_does_not_lead_out_of_it(run_cli, world, tmp_path: Path) -> None:
    (world["specs"] / "lib/innocent.txt").symlink_to(world["outside"])
    spec = world["specs"] / "team.jsonnet"
    spec.write_text(_jsonnet_spec("local leak = importstr 'lib/innocent.txt';"))
    _assert_refused(run_cli("validate", "--spec", str(spec)), spec, 1, "jsonnet: import 'lib/innocent.txt' refused: ")


def test_a_nested_import_cannot_climb_out_either(run_cli, world) -> None:
    (world["specs"] / "lib/helper.libsonnet").write_text("{ text: importstr '../../.git/config' }\n")
    spec = world["specs"] / "team.jsonnet"
    spec.write_text(_jsonnet_spec("local leak = (import 'lib/helper.libsonnet').text;"))
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2
    assert "jsonnet: import '../../.git/config' refused: " in result.err
    assert SECRET not in result.err


def test_a_hidden_file_inside_the_spec_directory_is_not_imported(run_cli, world) -> None:
    """A spec at the top of a checkout would otherwise reach `.git/config` without any `..`."""
    spec = world["repo"] / "team.jsonnet"
    spec.write_text(_jsonnet_spec("local leak = importstr '.git/config';"))
    _assert_refused(run_cli("validate", "--spec", str(spec)), spec, 1, "jsonnet: import '.git/config' refused: ")


def test_imports_inside_the_spec_directory_still_work(run_cli, world) -> None:
    (world["specs"] / "lib/owner.txt").write_text("team-mini")
    (world["specs"] / "lib/parts.libsonnet").write_text("{ owner: importstr 'owner.txt' }\n")
    spec = world["specs"] / "team.jsonnet"
    spec.write_text(_jsonnet_spec("local leak = (import 'lib/parts.libsonnet').owner;")
                    .replace("std.base64(leak)", "leak"))
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 0, result.err
    assert result.out.startswith(f"{spec}: OK")


def test_the_large_jsonnet_test_spec_still_loads(run_cli) -> None:
    assert run_cli("validate", "--spec", "tests/specs/large.jsonnet").code == 0


# --- the YAML loader --------------------------------------------------------------------------------------

BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _within(seconds: float, func, *args):
    """`func(*args)`, failing the test (instead of hanging it) when it takes longer than `seconds`: an upper
    bound far above what the bounded loader needs, far below what the unbounded one took (over 120 s)."""
    box: dict[str, object] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", func(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return box["result"]


def test_a_billion_laughs_alias_bomb_ends_at_once_with_a_clear_error(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "bomb.yaml"
    spec.write_text(BOMB)
    assert len(BOMB.encode()) < 600
    result = _within(30, run_cli, "validate", "--spec", str(spec))
    assert result.code == 2
    first = result.err.splitlines()[0]
    assert first.startswith(f"{spec}:"), first
    assert "aliases" in first and "expand" in first
    assert "Traceback" not in result.err and "internal error" not in result.err


def test_a_self_referencing_alias_is_a_clear_error(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "loop.yaml"
    spec.write_text(MINIMAL.replace("owner: team-mini", "owner: &o [1, *o]"))
    result = _within(30, run_cli, "validate", "--spec", str(spec))
    assert result.code == 2
    assert result.err.splitlines()[0] == (f"{spec}:5:10: service.owner[1]: an alias refers to the list or mapping it "
                                          f"is in; write the value out")


def test_a_few_aliases_still_work(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "aliases.yaml"
    spec.write_text(MINIMAL.replace("remediation: Fix the build.", "remediation: &fix Fix it.")
                    .replace("remediation: Fix the docs.", "remediation: *fix"))
    assert run_cli("validate", "--spec", str(spec)).code == 0


@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{a: ", "}"), ("- ", "")])
def test_deep_nesting_is_a_clear_spec_error(run_cli, tmp_path: Path, opener: str, closer: str) -> None:
    spec = tmp_path / "deep.yaml"
    depth = 100_000
    if opener == "- ":
        spec.write_text("x:\n  " + "- " * 3000 + "1\n")
    else:
        spec.write_text("x: " + opener * depth + "1" + closer * depth + "\n")
    result = _within(60, run_cli, "validate", "--spec", str(spec))
    assert result.code == 2
    first = result.err.splitlines()[0]
    assert first.startswith(f"{spec}:1:") or first.startswith(f"{spec}:"), first
    assert "nested more than 64 levels deep" in first, first
    assert "RecursionError" not in result.err and "internal error" not in result.err


def test_an_error_never_quotes_a_huge_value(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    huge = "A" * 3_000_000
    spec.write_text(MINIMAL.replace("owner: team-mini", f"owner: !!int {huge}")
                    .replace("  - id: build", f"  - id: {huge}B"))
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2
    assert len(result.err) < 4000, len(result.err)
    assert any("'" + "A" * 40 in line and "…" in line for line in result.err.splitlines())
    assert all(len(line) < 1200 for line in result.err.splitlines())


def test_a_huge_spec_file_is_refused_without_reading_it_all(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "big.yaml"
    with open(spec, "wb") as fh:
        fh.write(MINIMAL.encode())
        fh.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of NUL bytes on top of the spec
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2
    assert result.err.splitlines()[0] == (f"{spec}:1:1: cannot read spec: it is larger than 8 MiB "
                                          f"(64.0 MiB); a spec is a small text file")


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory"])
def test_a_spec_that_is_not_a_regular_file_is_refused_without_hanging(run_cli, tmp_path: Path, kind: str) -> None:
    if kind == "dev-zero":
        spec = "/dev/zero"
    elif kind == "fifo":
        spec = str(tmp_path / "spec.yaml")
        os.mkfifo(spec)  # nobody ever writes: opening it for reading would wait for ever
    else:
        spec = str(tmp_path)
    result = _within(30, run_cli, "validate", "--spec", spec)
    assert result.code == 2
    assert result.err.splitlines()[0] == f"{spec}:1:1: cannot read spec: not a regular file"


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_a_jsonnet_import_of_a_device_or_fifo_is_refused_without_hanging(run_cli, world, kind: str) -> None:
    target = world["specs"] / "lib/data.txt"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    spec = world["specs"] / "team.jsonnet"
    spec.write_text(_jsonnet_spec("local leak = importstr 'lib/data.txt';"))
    result = _within(30, run_cli, "validate", "--spec", str(spec))
    assert result.code == 2
    assert "jsonnet: import 'lib/data.txt' refused: " in result.err


def test_a_missing_import_is_named_plainly(run_cli, world) -> None:
    spec = world["specs"] / "team.jsonnet"
    spec.write_text(_jsonnet_spec("local leak = importstr 'lib/nope.txt';"))
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2
    assert result.err.splitlines()[0] == f"{spec}:1:14: jsonnet: cannot import 'lib/nope.txt': no such file"
