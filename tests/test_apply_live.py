"""apply against real Prometheus and Alertmanager (Debian packages, loopback) and the Grafana double.

The module's Prometheus runs with a relative --config.file, so /api/v1/rules names rule files
`rules/<name>`: a path that means nothing where obsgen runs, as for a server that mounts the rules
directory elsewhere. obsgen must match its files by name (README, "Rules and routing").
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT
from localstack import fresh_dev_backends
from stack import Stack

TOKEN = "glsa_live_test_token_0123456789"
# The ownership design of the README: files named <service>-<env>-<file>, with this marker line.
PREFIX = "selftest-dev-"
MARKER = b"# obsgen: service=selftest env=dev\n"
SELFTEST, STEPS, PASS_RATE, DURATION = (PREFIX + f for f in ("selftest.rules.yaml", "selftest-steps.rules.yaml",
                                                             "slo-pass-rate.rules.yaml", "slo-run-duration.rules.yaml"))
CHANNELS = ("pagerduty-oncall", "slack-tickets", "slack-info")  # the spec's channels; dev gives each a target
FOREIGN_GROUP = {"groups": [{"name": "other-team-alerts",
                             "rules": [{"alert": "OtherTeamDown", "expr": "up == 0", "labels": {"team": "other"}}]}]}


@pytest.fixture(scope="module")
def stack():
    with Stack(components=("alertmanager", "prometheus"), relative_config=True, discover=False) as s:  # no scrapes needed
        s.initial_alertmanager_config = s.alertmanager_config_file.read_text()
        yield s


@pytest.fixture
def env(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    with fresh_dev_backends(stack, monkeypatch, tmp_path / "state", TOKEN) as grafana:
        yield grafana


# --- helpers ---------------------------------------------------------------------------------------

def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def loaded(stack: Stack) -> dict[str, list[str]]:
    """The names of the groups Prometheus has loaded (sorted), by the name of their file."""
    found: dict[str, list[str]] = {}
    for group in stack.rule_groups():
        found.setdefault(Path(group["file"]).name, []).append(group["name"])
    return {name: sorted(names) for name, names in found.items()}


def groups(content: bytes) -> list[dict[str, Any]]:
    return yaml.safe_load(content)["groups"]


def with_marker(generated: bytes) -> bytes:
    """A generated rule file as the README says obsgen deploys it: the marker line after the header."""
    header, rest = generated.split(b"\n", 1)
    return header + b"\n" + MARKER + rest


def titles(out: str, symbol: str = "") -> list[str]:
    return sorted(line for line in out.splitlines() if line[:2] in ("+ ", "~ ", "- ") and line.startswith(symbol))


def variant(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    spec = yaml.safe_load((ROOT / "specs/selftest.yaml").read_text())
    edit(spec)
    path = tmp_path / "spec" / "selftest.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def slower(spec: dict[str, Any]) -> None:
    spec["timing"]["evaluation_interval"] = "2m"  # every group of every rule file changes


def fewer_groups(spec: dict[str, Any]) -> None:
    """No alert in dev (selftest.rules.yaml loses selftest-alerts, keeps selftest-recordings; the step alerts'
    file and the run-duration SLO's leave the spec), and every remaining group changed."""
    for alert in spec["alerts"]:
        alert.setdefault("overrides", {}).setdefault("dev", {})["enabled"] = False
    spec["slos"] = [slo for slo in spec["slos"] if slo["id"] != "run-duration"]
    slower(spec)


def built(run_cli, spec: Path, tmp_path: Path) -> Path:
    """The dev rule files `obsgen build` makes from `spec`."""
    out = tmp_path / "out"
    assert run_cli("build", "--spec", str(spec), "--out", str(out), "--env", "dev").code == 0
    return out / "dev" / "prometheus"


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("obsgen: error: ") and "Traceback" not in err, err
    return lines[0]


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[int]:
    """Make a directory (or, as root, a file) unwritable; yields the errno a write then fails with."""
    if os.geteuid() == 0:  # root writes through permissions: make it immutable instead
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i: cannot make anything unwritable")
        try:
            yield errno.EPERM
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        if not path.is_dir():
            pytest.skip("a file can only be made unwritable for rename as root (chattr +i)")
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield errno.EACCES
        finally:
            path.chmod(mode)


# --- round trips -----------------------------------------------------------------------------------

def test_apply_from_empty_then_read_back_then_a_second_apply_is_a_no_op(run_cli, stack: Stack, env,
                                                                         tmp_path: Path) -> None:
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 0, result.err
    assert f"+ prometheus rule-group {SELFTEST}/selftest-alerts" in result.out
    # Alertmanager: obsgen's subtree (README, "Sharing an Alertmanager") goes into the stack's own config
    assert titles(result.out, "+ alertmanager") == sorted(
        ["+ alertmanager route selftest/dev", "+ alertmanager inhibit-rules selftest/dev"]
        + [f"+ alertmanager receiver selftest/dev/{channel}" for channel in CHANNELS])
    groups_loaded = {g["name"] for g in stack.rule_groups()}
    assert {"selftest-alerts", "selftest-recordings", "slo-pass-rate-alerts", "slo-run-duration-sli"} <= groups_loaded
    # deployed: every generated file, under its owned name, with the marker line after the header
    generated = built(run_cli, ROOT / "specs/selftest.yaml", tmp_path)
    assert files(stack.rules_dir) == {PREFIX + p.name: with_marker(p.read_bytes()) for p in generated.iterdir()}
    # the server names the files by a path relative to its own working directory, not ours
    assert {g["file"] for g in stack.rule_groups()} == {f"rules/{name}" for name in (SELFTEST, STEPS, PASS_RATE,
                                                                                      DURATION)}
    running = stack.alertmanager_loaded_config()["route"]
    assert running["receiver"] == yaml.safe_load(stack.initial_alertmanager_config)["route"]["receiver"]
    assert running["routes"][0]["matchers"] == ['env="dev"', 'service="selftest"']  # first, as the spec's default
    assert running["routes"][0]["receiver"] == "selftest/dev/slack-info"  # the least severe tier's channel
    diff = run_cli("diff", "--env", "dev", "--exit-code")
    assert (diff.code, diff.out.splitlines()[-1]) == (0, "dev: No changes: the live state matches the spec "
                                                         f"({diff.out.split('(')[-1].split()[0]} objects).")
    env.reset_requests()
    again = run_cli("apply", "--env", "dev", "--yes")
    assert again.code == 0 and "No changes" in again.out
    assert [r for r in env.requests if r[0] != "GET"] == []


def test_changing_the_spec_changes_only_that_group(run_cli, stack: Stack, env, tmp_path: Path) -> None:
    assert run_cli("apply", "--env", "dev", "--yes").code == 0
    spec = tmp_path / "selftest.yaml"
    spec.write_text((ROOT / "specs/selftest.yaml").read_text().replace("threshold_seconds: 60", "threshold_seconds: 90"))
    result = run_cli("diff", "--env", "dev", "--spec", str(spec))
    assert titles(result.out) == [f"~ prometheus rule-group {SELFTEST}/selftest-alerts"]
    changed = [line.strip() for line in result.out.splitlines() if line.startswith(("    -", "    +"))]
    assert changed == ["-    description: p95 run duration over 1h is above 60 s.",
                       "+    description: p95 run duration over 1h is above 90 s.",
                       "-      60", "+      90"], result.out
    assert run_cli("apply", "--env", "dev", "--yes", "--spec", str(spec)).code == 0
    assert run_cli("diff", "--env", "dev", "--exit-code", "--spec", str(spec)).code == 0


@pytest.mark.parametrize("amtool", [True, False], ids=["checked-by-amtool", "refused-on-reload"])
def test_a_config_alertmanager_refuses_rolls_every_backend_back(run_cli, stack: Stack, env, monkeypatch,
                                                                tmp_path: Path, amtool: bool) -> None:
    from obsgen.deploy.backends.alertmanager import AlertmanagerBackend

    before_rules = files(stack.rules_dir)
    before_am = stack.alertmanager_config_file.read_bytes()
    real_desired = AlertmanagerBackend.desired

    def refused(self, artifacts):  # a config Alertmanager rejects: obsgen's route names a receiver that is not there
        objs = real_desired(self, artifacts)
        route = next(o for o in objs if o.kind == "route")
        bad = {**route.payload, "receiver": "selftest/dev/nobody"}
        return [dataclasses.replace(o, body={**o.body, "receiver": "selftest/dev/nobody"}, payload=bad)
                if o is route else o for o in objs]

    monkeypatch.setattr(AlertmanagerBackend, "desired", refused)
    if not amtool:  # without amtool installed, the merged config goes straight to Alertmanager, which refuses it
        monkeypatch.setenv("PATH", str(tmp_path))
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    line = one_error_line(result.err)
    if amtool:
        assert "Alertmanager (dev): amtool check-config rejects the merged config, so nothing was written" in line
    else:
        assert "Alertmanager (dev) refused the new config" in line
    assert "selftest/dev/nobody" in line  # what is wrong, in the checker's or the server's words
    if amtool:  # checked before any backend was written: nothing to restore
        assert "restored" not in line, line
    else:
        assert "restored" in line and "grafana" in line and "prometheus" in line
    assert files(stack.rules_dir) == before_rules
    assert [g["name"] for g in stack.rule_groups()] == []
    assert stack.alertmanager_config_file.read_bytes() == before_am
    assert yaml.safe_load(before_am) == yaml.safe_load(stack.initial_alertmanager_config)
    assert "selftest" not in stack.alertmanager_status()["config"]["original"]
    assert env.dashboard("selftest-dev-selftest-overview") is None
    history = run_cli("history", "--env", "dev")
    assert ("failed" if amtool else "rolled-back") in history.out.splitlines()[0]
    assert ("rejects the merged config" if amtool else "refused the new config") in history.out


# --- file mode: per file, owned, confirmed -----------------------------------------------------------

def test_a_group_that_left_the_spec_stays_in_its_file_without_prune_and_goes_with_it(
        run_cli, stack: Stack, env, tmp_path: Path) -> None:
    assert run_cli("apply", "--env", "dev", "--yes", "--only", "prometheus").code == 0
    before = files(stack.rules_dir)
    old_alerts = [g for g in groups(before[SELFTEST]) if g["name"] == "selftest-alerts"]
    assert len(old_alerts) == 1
    spec = variant(tmp_path, fewer_groups)
    new = built(run_cli, spec, tmp_path)
    assert sorted(p.name for p in new.iterdir()) == ["selftest.rules.yaml", "slo-pass-rate.rules.yaml"]
    gone = sorted([f"- prometheus rule-group {SELFTEST}/selftest-alerts", f"- prometheus rule-group {STEPS}/selftest-steps"]
                  + [f"- prometheus rule-group {DURATION}/slo-run-duration-{g}" for g in ("sli", "period", "alerts")])
    diff = run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", "prometheus")
    assert titles(diff.out, "-") == gone

    # without --prune: nothing obsgen owns is removed; the rewritten file keeps the old group after the spec's
    kept = run_cli("apply", "--env", "dev", "--yes", "--spec", str(spec), "--only", "prometheus")
    assert kept.code == 0, kept.err
    now = files(stack.rules_dir)
    assert set(now) == {SELFTEST, STEPS, PASS_RATE, DURATION}
    assert groups(now[SELFTEST]) == groups((new / "selftest.rules.yaml").read_bytes()) + old_alerts
    assert MARKER in now[SELFTEST].split(b"groups:")[0]
    assert now[PASS_RATE] == with_marker((new / "slo-pass-rate.rules.yaml").read_bytes())
    assert now[DURATION] == before[DURATION] and now[STEPS] == before[STEPS]
    assert loaded(stack) == {SELFTEST: ["selftest-alerts", "selftest-recordings"], STEPS: ["selftest-steps"],
                             PASS_RATE: ["slo-pass-rate-alerts", "slo-pass-rate-period", "slo-pass-rate-sli"],
                             DURATION: ["slo-run-duration-alerts", "slo-run-duration-period", "slo-run-duration-sli"]}
    again = run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", "prometheus")
    assert titles(again.out) == gone  # what is left to do is exactly the deletes that need --prune

    # with --prune: each file holds exactly the spec's groups; a file with none left is deleted
    pruned = run_cli("apply", "--env", "dev", "--yes", "--prune", "--spec", str(spec), "--only", "prometheus")
    assert pruned.code == 0, pruned.err
    assert files(stack.rules_dir) == {PREFIX + p.name: with_marker(p.read_bytes()) for p in new.iterdir()}
    assert loaded(stack) == {SELFTEST: ["selftest-recordings"],
                             PASS_RATE: ["slo-pass-rate-alerts", "slo-pass-rate-period", "slo-pass-rate-sli"]}
    assert run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", "prometheus", "--exit-code").code == 0


def test_files_that_are_not_obsgens_for_this_environment_are_never_shown_or_touched(
        run_cli, stack: Stack, env, tmp_path: Path) -> None:
    assert run_cli("apply", "--env", "staging", "--yes", "--only", "prometheus").code == 0  # the same service
    other_team = stack.write_rules("other-team.rules", FOREIGN_GROUP)
    (stack.rules_dir / f"{PREFIX}notes.yaml").write_text(yaml.safe_dump(  # our prefix, no marker
        {"groups": [{"name": "hand-written", "rules": [{"record": "hand:up", "expr": "up"}]}]}))
    assert stack.reload_prometheus() == 200
    others = files(stack.rules_dir)
    staging = [f"selftest-staging-{name}" for name in ("selftest.rules.yaml", "selftest-steps.rules.yaml",
                                                       "slo-pass-rate.rules.yaml", "slo-run-duration.rules.yaml")]
    assert sorted(others) == sorted([other_team.name, f"{PREFIX}notes.yaml", *staging])
    others_loaded = loaded(stack)

    diff = run_cli("diff", "--env", "dev", "--only", "prometheus")
    assert diff.code == 0
    assert all(line.startswith("+ prometheus rule-group selftest-dev-") for line in titles(diff.out)), diff.out
    for _ in range(2):  # from empty, then with everything in place
        result = run_cli("apply", "--env", "dev", "--yes", "--prune", "--only", "prometheus")
        assert result.code == 0, result.err
        assert "other-team" not in result.out and "staging" not in result.out and "notes" not in result.out
    now = files(stack.rules_dir)
    assert {name: now[name] for name in others} == others
    assert set(now) - set(others) == {SELFTEST, STEPS, PASS_RATE, DURATION}
    assert {name: groups for name, groups in loaded(stack).items() if name in others} == others_loaded


def test_a_file_with_obsgens_name_but_not_its_marker_stops_diff_and_apply(run_cli, stack: Stack, env) -> None:
    impostor = stack.write_rules(PASS_RATE, FOREIGN_GROUP)
    assert stack.reload_prometheus() == 200
    content = impostor.read_bytes()
    for command in (("diff", "--env", "dev"), ("apply", "--env", "dev", "--yes", "--prune")):
        result = run_cli(*command, "--only", "prometheus")
        assert result.code == 2
        line = one_error_line(result.err)
        assert f"{impostor} is not obsgen's" in line and "# obsgen: service=selftest env=dev" in line
    assert files(stack.rules_dir) == {PASS_RATE: content}
    assert loaded(stack) == {PASS_RATE: ["other-team-alerts"]}


def test_a_prometheus_that_does_not_load_the_rules_dir_fails_the_apply_and_gets_its_files_back(
        run_cli, stack: Stack, env, monkeypatch, tmp_path: Path) -> None:
    from obsgen.deploy.backends import prometheus

    monkeypatch.setattr(prometheus, "CONFIRM_TIMEOUT", 1.0)  # Prometheus reloads synchronously; no need for 10 s
    elsewhere = stack.tmp / "elsewhere"  # outside the rules/*.yaml glob
    elsewhere.mkdir(exist_ok=True)
    for path in elsewhere.iterdir():
        path.unlink()
    (elsewhere / "README").write_text("someone else's file\n")
    monkeypatch.setenv("OBSGEN_PROMETHEUS_RULES_DIR", str(elsewhere))
    result = run_cli("apply", "--env", "dev", "--yes")
    assert result.code == 2
    line = one_error_line(result.err)
    generated = built(run_cli, ROOT / "specs/selftest.yaml", tmp_path)
    wanted = [g["name"] for p in sorted(generated.iterdir()) for g in groups(p.read_bytes())]
    from obsgen.deploy.backends.prometheus_health import GROUPS_SHOWN

    named = ", ".join(wanted[:GROUPS_SHOWN]) + (f" and {len(wanted) - GROUPS_SHOWN} more" if len(wanted) > GROUPS_SHOWN else "")
    assert f"Prometheus (dev) did not load {named} from {STEPS}, {SELFTEST}, {PASS_RATE}, {DURATION} within 1 s: " \
           f"is {elsewhere} inside its rule_files globs?" in line
    assert "restored" in line
    assert files(elsewhere) == {"README": b"someone else's file\n"}
    assert files(stack.rules_dir) == {} and stack.rule_groups() == []
    history = run_cli("history", "--env", "dev")
    assert "did not load" in history.out


def test_a_prometheus_without_the_lifecycle_api_is_named_as_such(run_cli, env, monkeypatch) -> None:
    with Stack(components=("prometheus",), lifecycle=False, discover=False) as locked:
        monkeypatch.setenv("OBSGEN_PROMETHEUS_URL", locked.prometheus_url)
        monkeypatch.setenv("OBSGEN_PROMETHEUS_RULES_DIR", str(locked.rules_dir))
        result = run_cli("apply", "--env", "dev", "--yes", "--only", "prometheus")
        assert result.code == 2
        line = one_error_line(result.err)
        assert "HTTP 403" in line and "start Prometheus with --web.enable-lifecycle" in line
        assert "credentials" not in line
        assert files(locked.rules_dir) == {}


def test_an_unwritable_rules_directory_fails_in_one_line_and_changes_nothing(
        run_cli, stack: Stack, env, tmp_path: Path) -> None:
    assert run_cli("apply", "--env", "dev", "--yes").code == 0
    before, before_loaded = files(stack.rules_dir), loaded(stack)
    spec = variant(tmp_path, slower)
    with unwritable(stack.rules_dir) as code:
        result = run_cli("apply", "--env", "dev", "--yes", "--spec", str(spec))
    assert result.code == 2
    line = one_error_line(result.err)
    assert f"Prometheus (dev): cannot write {stack.rules_dir / STEPS}: {os.strerror(code)}" in line  # the first
    assert files(stack.rules_dir) == before and loaded(stack) == before_loaded
    assert run_cli("diff", "--env", "dev", "--only", "prometheus", "--exit-code").code == 0
    history = run_cli("history", "--env", "dev")
    assert f"cannot write {stack.rules_dir / STEPS}" in history.out


def test_a_file_that_cannot_be_replaced_mid_apply_puts_back_those_already_written(
        run_cli, stack: Stack, env, tmp_path: Path) -> None:
    assert run_cli("apply", "--env", "dev", "--yes", "--only", "prometheus").code == 0
    before = files(stack.rules_dir)
    spec = variant(tmp_path, slower)  # every file changes; they are written in name order, DURATION last
    with unwritable(stack.rules_dir / DURATION) as code:
        result = run_cli("apply", "--env", "dev", "--yes", "--spec", str(spec), "--only", "prometheus")
    assert result.code == 2
    line = one_error_line(result.err)
    assert f"cannot write {stack.rules_dir / DURATION}: {os.strerror(code)}" in line and "restored prometheus" in line
    assert files(stack.rules_dir) == before
    assert run_cli("diff", "--env", "dev", "--only", "prometheus", "--exit-code").code == 0


def test_a_group_in_obsgens_file_that_prometheus_has_not_loaded_is_shown_and_pruned(
        run_cli, stack: Stack, env) -> None:
    assert run_cli("apply", "--env", "dev", "--yes", "--only", "prometheus").code == 0
    deployed = (stack.rules_dir / SELFTEST).read_bytes()
    extra = yaml.safe_dump([{"name": "hand-added", "rules": [{"record": "hand:up", "expr": "up"}]}]).encode()
    (stack.rules_dir / SELFTEST).write_bytes(deployed + extra)  # on disk, never reloaded
    diff = run_cli("diff", "--env", "dev", "--only", "prometheus")
    assert titles(diff.out) == [f"- prometheus rule-group {SELFTEST}/hand-added"]
    kept = run_cli("apply", "--env", "dev", "--yes", "--only", "prometheus")
    assert kept.code == 0 and (stack.rules_dir / SELFTEST).read_bytes() == deployed + extra
    pruned = run_cli("apply", "--env", "dev", "--yes", "--prune", "--only", "prometheus")
    assert pruned.code == 0, pruned.err
    assert (stack.rules_dir / SELFTEST).read_bytes() == deployed
    assert "hand-added" not in {g["name"] for g in stack.rule_groups()}


def test_a_rule_file_left_by_obsgen_0_2_is_named_in_a_note_and_left_alone(run_cli, stack: Stack, env,
                                                                          tmp_path: Path) -> None:
    generated = built(run_cli, ROOT / "specs/selftest.yaml", tmp_path)
    header, rest = (generated / "selftest.rules.yaml").read_bytes().split(b"\n", 1)
    assert header == b"# Code generated by obsgen. DO NOT EDIT."
    old = b"# Code generated by obsgen v0.2.0 from selftest.yaml. DO NOT EDIT.\n" + rest  # 0.2's header
    (stack.rules_dir / "selftest.rules.yaml").write_bytes(old)  # as 0.2 deployed it: generated name, no marker
    (stack.rules_dir / "slo-pass-rate.rules.yaml").write_text("groups: []\n")  # the name alone is not enough
    for command in (("diff", "--env", "dev"), ("apply", "--env", "dev", "--yes", "--prune")):
        result = run_cli(*command, "--only", "prometheus")
        assert result.code == 0, result.err
        assert result.err == (f"obsgen: note: Prometheus (dev): {stack.rules_dir}/selftest.rules.yaml looks like a "
                              f"rule file obsgen 0.2 deployed (obsgen now writes {stack.rules_dir}/{SELFTEST}); if "
                              f"it is this environment's, delete it once the new file is applied, or its rules are "
                              f"evaluated twice\n")
    assert (stack.rules_dir / "selftest.rules.yaml").read_bytes() == old
    assert (stack.rules_dir / "slo-pass-rate.rules.yaml").read_text() == "groups: []\n"
