"""Generated promtool rule tests: they pass under the real promtool for every spec, they cover every
alert rule with a firing and a non-firing case, and a hand edit of a rule file fails them naming the case."""
from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import REFERENCE_SPEC, ROOT, require_tool, run_tool

from obsgen.compile.rule_test_kit import expand, go_float, rate
from obsgen.spec import load_spec

def _load(text: str):
    """YAML through libyaml's safe loader: the large spec's test files are megabytes."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


SPECS = {"reference": REFERENCE_SPEC, "minimal": ROOT / "tests/specs/minimal.yaml",
         "large": ROOT / "tests/specs/large.jsonnet"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from obsgen.cli import main

    out = {}
    for name, spec in SPECS.items():
        target = tmp_path_factory.mktemp(name) / "generated"
        assert main(["build", "--spec", str(spec), "--out", str(target)]) == 0
        out[name] = target
    return out


def promtool_test(*files: Path) -> tuple[int, str]:
    proc = run_tool(require_tool("promtool"), "test", "rules", *map(str, files))
    return proc.returncode, proc.stdout + proc.stderr


def _test_files(env_dir: Path) -> list[Path]:
    return sorted((env_dir / "tests/rules").glob("*.test.yaml"))


def failing_groups(output: str) -> set[str]:
    """Names promtool reports: `name: <group>,` for alert cases, the trailing `# <group>` of expressions."""
    return set(re.findall(r"^\s+name: (.*),$", output, re.M)) | set(re.findall(r'^\s+expr: ".*  # (.*)", time:',
                                                                              output, re.M))


@pytest.mark.parametrize("spec_name", ["large", "minimal"])  # the reference spec's: tests/test_verify.py
def test_promtool_passes_every_generated_rule_test(spec_name: str, built: dict[str, Path]) -> None:
    envs = sorted(p for p in built[spec_name].iterdir() if p.is_dir())
    with ThreadPoolExecutor(max_workers=2) as pool:  # promtool is CPU-bound: one per core
        results = list(pool.map(lambda env: (env.name, _test_files(env), *promtool_test(*_test_files(env))), envs))
    for env, files, code, output in results:
        assert files, f"{spec_name}/{env}: no rule tests generated"
        assert code == 0, f"{spec_name}/{env}:\n{output}"
        assert output.count("SUCCESS") == len(files)


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_every_rule_file_has_a_test_file_loading_it_from_outside_the_deployed_directory(
        spec_name: str, built: dict[str, Path]) -> None:
    for env_dir in (p for p in built[spec_name].iterdir() if p.is_dir()):
        rule_files = sorted(p.name for p in (env_dir / "prometheus").glob("*.rules.yaml"))
        loaded, tested = set(), []  # a test file tests its last rule file; those before hold records it reads
        for test_file in _test_files(env_dir):
            document = _load(test_file.read_text())
            assert document["evaluation_interval"] and all(g["interval"] for g in document["tests"])
            for rule_file in document["rule_files"]:
                assert rule_file.startswith("../../prometheus/") and (test_file.parent / rule_file).is_file()
                loaded.add(Path(rule_file).name)
            tested.append(Path(document["rule_files"][-1]).name)
            assert test_file.name == tested[-1].replace(".rules.yaml", ".test.yaml")
        assert sorted(loaded) == rule_files and len(set(tested)) == len(tested)
        assert not list((env_dir / "prometheus").glob("*.test.yaml"))


def _alert_rules(env_dir: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(rule file, alertname, rule labels) of every alerting rule of an environment."""
    return [(f.name, r["alert"], {k: str(v) for k, v in r.get("labels", {}).items()})
            for f in sorted((env_dir / "prometheus").glob("*.rules.yaml"))
            for g in _load(f.read_text())["groups"] for r in g["rules"] if "alert" in r]


def _alert_cases(env_dir: Path) -> list[tuple[str, str, str, list[dict[str, str]]]]:
    """(rule file, group name, alertname, expected label sets) of every alert case of an environment."""
    cases = []
    for test_file in _test_files(env_dir):
        document = _load(test_file.read_text())
        for rule_file in document["rule_files"]:
            for group in document["tests"]:
                for case in group.get("alert_rule_test", []):
                    cases.append((Path(rule_file).name, group["name"], case["alertname"],
                                  [a["exp_labels"] for a in case["exp_alerts"]]))
    return cases


def _cannot_fire(spec: Path, env: str) -> set[str]:
    """Alerts that cannot fire as specified: step_failed whose tier has no more steps than the environment
    tolerates."""
    model = load_spec(str(spec))
    environment = model.environment(env)
    return {a.name for a in model.alerts if a.params_for(env).enabled and (
        a.kind == "step_failed" and len(model.steps_of(a.tier)) <= environment.policy.tolerance_for(a.tier))}


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_every_alert_rule_has_a_firing_and_a_non_firing_case(spec_name: str, built: dict[str, Path]) -> None:
    for env_dir in (p for p in built[spec_name].iterdir() if p.is_dir()):
        cases = _alert_cases(env_dir)
        dead = _cannot_fire(SPECS[spec_name], env_dir.name)
        never_fired = set()
        for rule_file, alertname, labels in _alert_rules(env_dir):
            mine = [expected for f, _, name, expected in cases if f == rule_file and name == alertname]
            fires = any(labels.items() <= e.items() for expected in mine for e in expected)
            quiet = any(not any(labels.items() <= e.items() for e in expected) for expected in mine)
            assert quiet, f"{spec_name}/{env_dir.name}: {alertname} {labels} has no case where it must not fire"
            if not fires:
                never_fired.add(alertname)
        assert never_fired == dead, f"{spec_name}/{env_dir.name}: alerts without a firing case"
        for alertname in dead:
            assert any(name == alertname and f"{alertname} cannot fire" in group
                       for _, group, name, _ in cases), f"{alertname} has no case showing it cannot fire"


def test_no_alert_of_the_test_specs_is_dead() -> None:
    # The validator rejects alerts that can never fire (tests/invalid/dead-alerts.yaml), so every alert
    # of a valid spec gets a firing case.
    assert all(not _cannot_fire(spec, env.name) for spec in SPECS.values()
               for env in load_spec(str(spec)).environments)


def test_tolerance_edges_follow_each_environments_policy(built: dict[str, Path]) -> None:
    for env, tolerance in (("dev", 3), ("staging", 1), ("prod", 0)):
        names = [n for _, n, a, _ in _alert_cases(built["reference"] / env)
                 if a == "SelftestGovernanceFailuresAboveTolerance"]
        if tolerance:
            assert f"{env}: GOVERNANCE at tolerance ({tolerance} failing) does not fire " \
                   f"SelftestGovernanceFailuresAboveTolerance" in names
            assert any(n.startswith(f"{env}: GOVERNANCE above tolerance ({tolerance + 1} failing: ") for n in names)
        else:
            assert not any("tolerance (" in n for n in names)
            assert any(n.startswith(f"{env}: GOVERNANCE step ") and "at once (for 0m)" in n for n in names)


# --- mutations: a hand edit of a generated rule file fails the tests and names the failing groups ------

def _mutated(built: dict[str, Path], tmp_path: Path, rule_file: str, old: str, new: str) -> Path:
    out = tmp_path / "generated"
    shutil.copytree(built["reference"], out)
    path = out / rule_file
    text = path.read_text()
    assert old in text, f"{old!r} not in {rule_file}"
    path.write_text(text.replace(old, new))
    return out


def _groups(test_file: Path, predicate) -> set[str]:
    return {g["name"] for g in _load(test_file.read_text())["tests"] if predicate(g)}


def _alert_names(group: dict) -> set[str]:
    return {case["alertname"] for case in group.get("alert_rule_test", [])}


def test_raising_the_tolerance_threshold_fails_the_above_tolerance_groups(built, tmp_path: Path) -> None:
    out = _mutated(built, tmp_path, "dev/prometheus/selftest-steps.rules.yaml", "> 3\n", "> 4\n")
    test_file = out / "dev/tests/rules/selftest-steps.test.yaml"
    code, output = promtool_test(test_file)
    assert code == 1
    assert failing_groups(output) == _groups(test_file, lambda g: "GOVERNANCE above tolerance" in g["name"])
    assert "dev: GOVERNANCE above tolerance (4 failing: skills-governance, agents-governance, bdd, ac-status) " \
           "fires SelftestGovernanceFailuresAboveTolerance for each failing step after for 5m, not before" in output


def test_a_changed_label_fails_every_group_where_that_alert_fires(built, tmp_path: Path) -> None:
    for rules, test, fails in (("selftest-steps", "selftest-steps", lambda g: "OPTIONAL step" in g["name"]),
                               ("selftest", "selftest", lambda g: "notice" in g["name"])):  # the notice is info too
        out = _mutated(built, tmp_path / rules, f"prod/prometheus/{rules}.rules.yaml", "      severity: info\n",
                       "      severity: warning\n")
        test_file = out / f"prod/tests/rules/{test}.test.yaml"
        code, output = promtool_test(test_file)
        assert code == 1
        assert failing_groups(output) == _groups(test_file, fails)


def test_a_changed_annotation_fails_the_groups_where_that_alert_fires(built, tmp_path: Path) -> None:
    out = _mutated(built, tmp_path, "staging/prometheus/slo-pass-rate.rules.yaml",
                   "budget too fast (ticket)", "budget fast (ticket)")
    test_file = out / "staging/tests/rules/slo-pass-rate.test.yaml"
    code, output = promtool_test(test_file)
    assert code == 1
    assert failing_groups(output) == _groups(test_file, lambda g: "tickets" in g["name"])
    assert len(failing_groups(output)) == 1  # a ticket fires only where one run in six fails for 3d


def test_a_changed_recording_rule_fails_the_exact_values_group_naming_it(built, tmp_path: Path) -> None:
    out = _mutated(built, tmp_path, "dev/prometheus/slo-run-duration.rules.yaml",
                   "1 - (slo:sli_errors:count_period", "0.9 - (slo:sli_errors:count_period")
    test_file = out / "dev/tests/rules/slo-run-duration.test.yaml"
    code, output = promtool_test(test_file)
    assert code == 1
    assert failing_groups(output) == _groups(test_file, lambda g: "budget remaining" in g["name"])


# --- what the expectations are computed with ------------------------------------------------------------

def test_values_print_as_go_prints_them() -> None:  # each checked against promtool 2.42's own rendering
    assert [go_float(v) for v in (1.0, 60.0, 86520.0, 123456.0, 1234567.0, 1e6, 0.1, 0.0001, 0.00001, -2.5)] == [
        "1", "60", "86520", "123456", "1.234567e+06", "1e+06", "0.1", "0.0001", "1e-05", "-2.5"]


def test_templates_expand_labels_of_the_result_and_the_value() -> None:
    labels = {"env": "dev", "step_id": "bdd"}
    assert expand("step {{ $labels.step_id }} in {{$labels.env}}: {{ $value }}", labels, 86460.0) == \
        "step bdd in dev: 86460"
    assert expand("[{{ $labels.service }}] {{ .Labels.env }} {{- .Value }}", labels, 1.0) == "[] dev1"


def test_rate_follows_the_engine_float_operations() -> None:
    counter = [5 * i for i in range(13)]  # +5 every 5m
    assert rate(counter, 300, 3600, 300) == 0.016666666666666666
    assert rate([25 * i for i in range(13)], 300, 3600, 300) == 25 * (1 / 300) != 25 / 300
    assert rate(counter, 300, 300, 3600) == 5 * (1 / 3600)  # a counter from 0 is not extrapolated back
    assert rate(counter, 300, 0, 300) is None


def _promtool_values(notation: str) -> list[int]:
    """promtool's expanding notation, as its docs define it: `a+bxn` is a, a+b, …, a+n·b (n+1 samples),
    `a-bxn` the same downwards, `axn` is a repeated n+1 times, a bare number one sample."""
    out: list[int] = []
    for part in notation.split():
        m = re.fullmatch(r"(-?\d+)(?:([+-])(\d+))?x(\d+)", part)
        if m is None:
            out.append(int(part))
            continue
        start, sign, step, n = int(m[1]), m[2], int(m[3] or 0), int(m[4])
        out += [start + (step if sign == "+" else -step) * i for i in range(n + 1)]
    return out


@pytest.mark.parametrize("values", [[100], [100, 101, 102, 102, 102], [5, 5], [3, 1, -1, 4, 4, 4, 9],
                                    [100 + i // 3 for i in range(50)], list(range(0, 1000, 7))])
def test_values_notation_expands_to_the_samples_it_was_given(values: list[int]) -> None:
    from obsgen.compile.rule_test_kit import values_notation

    notation = values_notation(values)
    assert _promtool_values(notation) == values
    assert len(notation.split()) <= len(values)
