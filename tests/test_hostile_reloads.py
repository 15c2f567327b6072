"""Truthful reload results against real Prometheus 2.42: whose fault a failed reload is, and rules that load but
fail when evaluated.

- A Prometheus whose last reload already failed (another team's broken rule file, its own broken main config)
  is refused before any write, with Prometheus's reason and the file promtool rejects named.
- A reload that fails because of a file that is not obsgen's is reported as that, and as a rollback: obsgen's
  files are back and Prometheus kept the rules it had -- never `could-not-restore`.
- A rule Prometheus loads but cannot evaluate (many-to-many matching) fails the apply, which is rolled back,
  naming the rule and Prometheus's error; `diff` afterwards still shows the change.
- A successful apply says plainly how many written groups Prometheus has not evaluated yet.
"""
from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from pathlib import Path

import pytest
import requests
from stack import Stack

PREFIX = "selftest-dev-"
FOREIGN = "other-team.yaml"
BROKEN = "groups:\n- name: other-team\n  rules:\n  - record: other:up\n    expr: 'up +'\n"  # does not parse
# loads (it parses) and fails at every evaluation: two series on each side match the same empty label set
MANY_TO_MANY = ("(label_replace(vector(1), 'x', 'a', '', '') or label_replace(vector(1), 'x', 'b', '', '')) "
                "* on() (label_replace(vector(2), 'y', 'a', '', '') or label_replace(vector(3), 'y', 'b', '', ''))")


@pytest.fixture(scope="module")
def stack():
    with Stack(components=("prometheus",), discover=False) as s:
        s.initial_prometheus_config = s.prometheus_config_file.read_text()
        yield s


@pytest.fixture
def prom(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for rules in stack.rules_dir.glob("*"):
        rules.unlink()
    stack.prometheus_config_file.write_text(stack.initial_prometheus_config)
    assert stack.reload_prometheus() == 200
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_PROMETHEUS_URL", stack.prometheus_url)
    monkeypatch.setenv("OBSGEN_PROMETHEUS_RULES_DIR", str(stack.rules_dir))
    monkeypatch.delenv("OBSGEN_EVALUATION_WAIT", raising=False)
    yield stack
    for rules in stack.rules_dir.glob("*"):
        rules.unlink()
    stack.prometheus_config_file.write_text(stack.initial_prometheus_config)
    stack.reload_prometheus()


def apply(run_cli, *args: str):
    return run_cli("apply", "--env", "dev", "--yes", "--only", "prometheus", *args)


def ledger(tmp_path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(tmp_path / "state/ledger.sqlite") as db:
        return db.execute("SELECT mode, result, error FROM applies ORDER BY id").fetchall()


def reason(stack: Stack) -> str:
    """What Prometheus answers a reload now (its own words, whitespace folded)."""
    answer = requests.post(f"{stack.prometheus_url}/-/reload", timeout=10)
    assert answer.status_code == 500
    return " ".join(answer.text.split())


def runtime_ok(stack: Stack) -> bool:
    return requests.get(f"{stack.prometheus_url}/api/v1/status/runtimeinfo", timeout=5).json()["data"][
        "reloadConfigSuccess"]


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("obsgen: error: ") and "Traceback" not in err, err
    return lines[0].removeprefix("obsgen: error: ")


def test_a_prometheus_whose_last_reload_failed_is_refused_before_any_write_naming_the_file(run_cli, prom,
                                                                                          tmp_path) -> None:
    (prom.rules_dir / FOREIGN).write_text(BROKEN)
    said = reason(prom)  # Prometheus's last reload fails; it keeps the rules it had
    assert not runtime_ok(prom)
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert line.startswith(f"Prometheus (dev): its last reload failed, and a reload still fails before obsgen has "
                           f"changed anything: {said}; {prom.rules_dir / FOREIGN} (not obsgen's): ")
    assert "could not parse expression" in line
    assert line.endswith("; obsgen writes no rules until Prometheus can reload (it keeps running the rules it had)")
    assert [p.name for p in prom.rules_dir.iterdir()] == [FOREIGN]  # nothing written
    assert [(m, r) for m, r, _ in ledger(tmp_path)] == [("apply", "failed")]


def test_a_broken_file_of_another_team_not_yet_loaded_is_named_and_the_apply_is_rolled_back(run_cli, prom,
                                                                                           tmp_path) -> None:
    (prom.rules_dir / FOREIGN).write_text(BROKEN)  # written, but Prometheus not reloaded since: it says all is well
    assert runtime_ok(prom)
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert line.startswith("Prometheus (dev) refused the new rules: failed to reload config: ")
    assert f"; {prom.rules_dir / FOREIGN} (not obsgen's): " in line and PREFIX not in line
    assert line.endswith("; it refuses the same with obsgen's files put back, so the cause is not obsgen's change, "
                         "and it keeps running the rules it had; restored prometheus to the state before this apply")
    assert "COULD NOT RESTORE" not in line
    assert [p.name for p in prom.rules_dir.iterdir()] == [FOREIGN]
    assert prom.rule_groups() == []
    assert [(m, r) for m, r, _ in ledger(tmp_path)] == [("apply", "rolled-back")]


def test_a_broken_main_config_is_named_as_the_cause_not_obsgen(run_cli, prom, tmp_path) -> None:
    prom.prometheus_config_file.write_text(prom.initial_prometheus_config + "\nbogus_key: 1\n")  # not reloaded yet
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert line.startswith("Prometheus (dev) refused the new rules: failed to reload config: couldn't load "
                           "configuration")
    assert "field bogus_key not found" in line and "COULD NOT RESTORE" not in line
    assert line.endswith("so the cause is not obsgen's change, and it keeps running the rules it had; restored "
                         "prometheus to the state before this apply")
    assert list(prom.rules_dir.iterdir()) == []
    # Prometheus's last reload has now failed: the next apply stops before writing, with the same reason
    again = apply(run_cli)
    assert again.code == 2
    line = one_error_line(again.err)
    assert line.startswith("Prometheus (dev): its last reload failed, and a reload still fails before obsgen has "
                           f"changed anything: {reason(prom)}; obsgen writes no rules")
    assert [r for _, r, _ in ledger(tmp_path)] == ["rolled-back", "failed"]


def with_extra_rules(monkeypatch, *rules: dict[str, str]) -> None:
    """What the apply deploys, with `rules` added to the first group of dev's selftest rule file."""
    import obsgen.generate
    from obsgen.compile import render

    deployable = obsgen.generate.deployable

    def patched(*args, **kwargs):
        build, read = deployable(*args, **kwargs)
        artifacts = []
        for artifact in build.artifacts:
            if artifact.path == "dev/prometheus/selftest.rules.yaml":
                header = artifact.content.split(b"\n", 1)[0] + b"\n"
                document = render.load_yaml(artifact.content)
                document["groups"][0]["rules"].extend(rules)
                artifact = dataclasses.replace(artifact, content=header + render.to_yaml(document))
            artifacts.append(artifact)
        return build._replace(artifacts=artifacts), read

    monkeypatch.setattr(obsgen.generate, "deployable", patched)


def test_a_rule_that_loads_but_fails_at_evaluation_fails_the_apply_and_is_rolled_back(run_cli, prom, tmp_path,
                                                                                      monkeypatch) -> None:
    with_extra_rules(monkeypatch, {"record": "selftest:probe:many_to_many", "expr": MANY_TO_MANY})
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert line.startswith("Prometheus (dev) loaded rules that fail when evaluated: selftest-recordings/"
                           "selftest:probe:many_to_many: ")
    assert "many-to-many matching not allowed" in line
    assert line.endswith("; restored prometheus to the state before this apply")
    assert list(prom.rules_dir.iterdir()) == [] and prom.rule_groups() == []
    (mode, outcome, error), = ledger(tmp_path)
    assert (mode, outcome, error) == ("apply", "rolled-back", line)
    diff = run_cli("diff", "--env", "dev", "--only", "prometheus", "--exit-code")
    assert diff.code == 1 and "+ prometheus rule-group selftest-dev-selftest.rules.yaml/selftest-recordings" in diff.out


def test_rules_checked_together_are_not_failed_for_what_only_their_combination_cannot_be(run_cli, prom,
                                                                                       monkeypatch) -> None:
    """The evaluation check queries a group's rules together (`(a) or (b)`); a scalar rule, which a set
    operation cannot take, is a valid rule all the same and the apply goes through."""
    with_extra_rules(monkeypatch, {"record": "selftest:probe:scalar", "expr": "time() - 60"})
    result = apply(run_cli)
    assert result.code == 0, result.err
    assert "selftest:probe:scalar" in {r["name"] for g in prom.rule_groups() for r in g["rules"]}


def test_an_apply_says_plainly_which_groups_prometheus_has_not_evaluated_yet(run_cli, prom) -> None:
    result = apply(run_cli)
    assert result.code == 0, result.err
    *_, said, last = result.out.splitlines()
    assert last.startswith("dev: applied ")
    assert re.fullmatch(r"Prometheus \(dev\): \d+ of the \d+ rule groups written not yet evaluated by Prometheus "
                        r"\(they run every [0-9, s]+\); each of their rules was evaluated once as a query, without "
                        r"error", said), said


def test_the_wait_for_the_first_evaluation_sees_it_when_the_groups_run_often(run_cli, prom, tmp_path,
                                                                              monkeypatch) -> None:
    import yaml
    from conftest import ROOT

    spec = yaml.safe_load((ROOT / "specs/selftest.yaml").read_text())
    spec["timing"]["evaluation_interval"] = "1s"
    spec["slos"] = []  # their window groups run every 5m whatever the spec says
    for dashboard in spec["dashboards"]:
        dashboard["panels"] = [p for p in dashboard["panels"] if p not in ("error_budget_remaining", "burn_rate")]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("OBSGEN_EVALUATION_WAIT", "30")  # an upper bound: 1 s groups are evaluated well within it
    result = apply(run_cli, "--spec", str(path))
    assert result.code == 0, result.err
    assert "not yet evaluated" not in result.out
    assert all(g["lastEvaluation"] != "0001-01-01T00:00:00Z" for g in prom.rule_groups())
    assert json.dumps(prom.rule_groups()).count('"health": "err"') == 0
