"""obsgen.run.emit: selftest reports in, the spec's metrics out (text format, textfile, real Pushgateway), and
the generated alerts firing on what it pushes (real Prometheus).

Each tests/reports/malformed/<name>.json has a <name>.expected holding the exact error text;
`pytest --update-goldens` rewrites them.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests
from conftest import REFERENCE_SPEC, ROOT, require_tool
from stack import Stack, free_port

from obsgen.run import emit
from obsgen.deploy.http import BackendError
from obsgen.errors import ObsgenError
from obsgen.spec import load_spec

REPORTS = ROOT / "tests/reports"
MALFORMED = sorted((REPORTS / "malformed").glob("*.json"))
WAIT = 60.0  # upper bound of every wait on a live backend; never a timing assertion


@pytest.fixture(scope="module")
def model():
    return load_spec(str(REFERENCE_SPEC))


@pytest.fixture(scope="module")
def minimal():
    return load_spec(str(ROOT / "tests/specs/minimal.yaml"))


def _report(name: str, model) -> emit.Report:
    return emit.load_report(str(REPORTS / name), model)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(name, tuple(sorted(labels.items()))): value for name, labels, value in emit.parse_exposition(text)}


def _value(text: str, name: str, **labels: str) -> float | None:
    return _samples(text).get((name, tuple(sorted(labels.items()))))


# --- reading reports --------------------------------------------------------------------------------

def test_a_passing_report_is_read_with_its_steps_time_duration_and_mode(model) -> None:
    report = _report("passing.json", model)
    assert [s.id for s in report.steps] == [s.id for s in model.steps]
    assert report.steps[0] == emit.StepResult("core-checks", "kernel", "PASS", 18.23)
    assert (report.passed, report.failing, report.mode) == (True, (), "strict")
    assert report.timestamp == 1764516600.0  # metadata.timestamp 2025-11-30T15:30:00+00:00
    assert report.duration_seconds == 21.882  # summary.total_duration_ms


def test_failing_and_skipped_steps_are_told_apart(model) -> None:
    report = _report("governance-failed.json", model)
    assert report.failing == ("bdd", "ac-status", "ac-coverage")
    assert [s.status for s in report.steps if s.id == "extras"] == ["SKIP"]
    assert not report.passed


@pytest.mark.parametrize("name,results", [
    ("passing.json", {"dev": "pass", "staging": "pass", "prod": "pass"}),
    ("kernel-failed.json", {"dev": "fail", "staging": "fail", "prod": "fail"}),
    # 2 GOVERNANCE + 1 OPTIONAL failing: within dev's tolerance of 3, above staging's 1 and prod's 0.
    ("governance-failed.json", {"dev": "pass", "staging": "fail", "prod": "fail"}),
])
def test_the_run_result_follows_the_policy_of_the_environment(model, name: str, results: dict[str, str]) -> None:
    report = _report(name, model)
    assert {env: emit.run_result(model, env, report) for env in results} == results


def test_an_optional_failure_fails_the_run_only_where_any_failure_pages(model) -> None:
    report = emit.synthetic_report(model, "dev", "optional")
    assert report.failing == ("ac-coverage",)
    assert {env: emit.run_result(model, env, report) for env in ("dev", "staging", "prod")} == \
        {"dev": "pass", "staging": "pass", "prod": "fail"}


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.name)
def test_a_malformed_report_is_rejected_with_the_expected_text(path: Path, model, update_goldens: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(emit.ReportError) as caught:
        emit.load_report(path.relative_to(ROOT).as_posix(), model)
    expected = path.with_suffix(".expected")
    if update_goldens:
        expected.write_text(str(caught.value) + "\n")
    assert str(caught.value) + "\n" == expected.read_text()


def test_every_problem_of_a_report_is_reported_at_once_naming_file_and_path(model,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(emit.ReportError) as caught:
        emit.load_report("tests/reports/malformed/many-mistakes.json", model)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems) == 10
    assert all(line.startswith("tests/reports/malformed/many-mistakes.json: ") for line in lines)
    assert "tests/reports/malformed/many-mistakes.json: results[1].tier: expected one of kernel, governance, " \
           'optional, got string "kernal"' in lines


def test_an_unreadable_report_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ObsgenError) as caught:
        emit.load_report(str(tmp_path / "missing.json"))
    assert str(caught.value) == f"{tmp_path / 'missing.json'}: cannot read the report: No such file or directory"


def test_without_a_spec_the_runner_vocabulary_is_checked_and_the_spec_at_exposition(model) -> None:
    data = {"results": [{"step_id": "lint-docs", "tier": "kernel", "status": "FAIL", "duration_ms": 5}]}
    report = emit.parse_report(data, "run.json")  # no spec: a well-formed report
    assert report.failing == ("lint-docs",) and report.timestamp is None and report.duration_seconds == 0.005
    with pytest.raises(emit.ReportError) as caught:
        emit.exposition(model, "dev", report)
    assert str(caught.value) == "run.json: results[0].step_id: unknown step lint-docs; the spec has no such step"
    with pytest.raises(emit.ReportError) as caught:
        emit.parse_report({**data, "results": [{**data["results"][0], "tier": "urgent"}]}, "run.json")
    assert str(caught.value) == ('run.json: results[0].tier: expected one of kernel, governance, optional, '
                                 'got string "urgent"')


def test_the_shipped_schema_is_a_json_schema_every_good_report_meets(model) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads(emit.schema_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for path in sorted(REPORTS.glob("*.json")):
        assert not list(validator.iter_errors(json.loads(path.read_text()))), path.name
    # What the schema itself rejects (the rest of many-mistakes.json needs the spec or a real time).
    mistakes = json.loads((REPORTS / "malformed" / "many-mistakes.json").read_text())
    assert {tuple(e.absolute_path) for e in validator.iter_errors(mistakes)} == {
        ("version",), ("metadata", "timestamp"), ("results", 2, "status"), ("results", 3, "duration_ms"),
        ("results", 7), ("results", 8)}
    assert not validator.is_valid({"summary": {"passed": 1}})  # results is required


def test_nan_is_not_json(tmp_path: Path) -> None:
    report = tmp_path / "run.json"
    report.write_text('{"results": [{"step_id": "build", "tier": "kernel", "status": "PASS", "duration_ms": NaN}]}')
    with pytest.raises(emit.ReportError) as caught:
        emit.load_report(str(report))
    assert str(caught.value) == f"{report}: invalid JSON: NaN is not a JSON number"


def test_an_unknown_step_close_to_a_spec_step_gets_a_suggestion(model) -> None:
    data = json.loads((REPORTS / "passing.json").read_text())
    data["results"][0]["step_id"] = "core-check"
    data["results"][1]["step_id"] = "lint-docs"
    with pytest.raises(emit.ReportError) as caught:
        emit.parse_report(data, "run.json", model)
    assert caught.value.problems == [
        "results[0].step_id: unknown step core-check; the spec has no such step (did you mean core-checks?)",
        "results[1].step_id: unknown step lint-docs; the spec has no such step"]


def test_the_steps_a_partial_run_did_not_run_are_named_in_spec_order(model) -> None:
    assert emit.missing_steps(model, _report("passing.json", model)) == ()
    assert emit.missing_steps(model, _report("kernel-only.json", model)) == tuple(
        s.id for s in model.steps if s.id != "core-checks")


@pytest.mark.parametrize("name,env,words", [
    ("passing.json", "dev", "10 steps, failing: none"),
    ("kernel-only.json", "dev", "1 of 10 steps, failing: none"),
    # governance-failed: bdd and ac-status (GOVERNANCE), ac-coverage (OPTIONAL) fail.
    ("governance-failed.json", "dev", ("10 steps; 2 governance failures within dev's tolerance of 3, 1 optional "
                                       "failure informational in dev; failing: bdd, ac-status, ac-coverage")),
    ("governance-failed.json", "staging", ("10 steps; 2 governance failures above staging's tolerance of 1, "
                                           "1 optional failure informational in staging; failing: bdd, ac-status, "
                                           "ac-coverage")),
    ("governance-failed.json", "prod", ("10 steps; 2 governance failures above prod's tolerance of 0, 1 optional "
                                        "failure above prod's tolerance of 0; failing: bdd, ac-status, ac-coverage")),
    ("kernel-failed.json", "dev", "10 steps; 1 kernel failure above dev's tolerance of 0; failing: core-checks"),
])
def test_a_run_is_described_against_the_tolerance_of_the_environment(model, name: str, env: str,
                                                                     words: str) -> None:
    assert emit.describe_run(model, env, _report(name, model)) == words


# --- the exposition --------------------------------------------------------------------------------

MINIMAL_EXPOSITION = """\
# HELP selftest_last_run_timestamp_seconds Unix time of the last selftest run.
# TYPE selftest_last_run_timestamp_seconds gauge
selftest_last_run_timestamp_seconds{env="dev"} 1.7645166e+09
# HELP selftest_recent_run_timestamp_seconds Unix times of the last selftest runs counted here, newest first (recent="1"): a report of one of them is not counted again.
# TYPE selftest_recent_run_timestamp_seconds gauge
selftest_recent_run_timestamp_seconds{env="dev",recent="1"} 1.7645166e+09
# HELP selftest_run_duration_seconds Duration of the selftest run in seconds, one series per run.
# TYPE selftest_run_duration_seconds gauge
selftest_run_duration_seconds{env="dev",outcome="page",result="fail",run="1764516600"} 12.5
# HELP selftest_run_timestamp_seconds Unix time of the selftest run, one series per run (run=its time), labelled by its result and outcome in the environment.
# TYPE selftest_run_timestamp_seconds gauge
selftest_run_timestamp_seconds{env="dev",outcome="page",result="fail",run="1764516600"} 1.7645166e+09
# HELP selftest_step_failed 1 if the selftest step failed in the last run that ran it, else 0.
# TYPE selftest_step_failed gauge
selftest_step_failed{env="dev",step_id="build",tier="kernel"} 1.0
selftest_step_failed{env="dev",step_id="docs",tier="governance"} 0.0
# HELP selftest_step_failures_total Selftest runs in which the step failed (FAIL or TIMEOUT).
# TYPE selftest_step_failures_total counter
selftest_step_failures_total{env="dev",step_id="build",tier="kernel"} 1.0
selftest_step_failures_total{env="dev",step_id="docs",tier="governance"} 0.0
# HELP selftest_step_last_failure_timestamp_seconds Unix time of the last run in which the step failed (no series before it first fails).
# TYPE selftest_step_last_failure_timestamp_seconds gauge
selftest_step_last_failure_timestamp_seconds{env="dev",step_id="build",tier="kernel"} 1.7645166e+09
# HELP selftest_step_last_pass_timestamp_seconds Unix time of the last run in which the step passed (0: never).
# TYPE selftest_step_last_pass_timestamp_seconds gauge
selftest_step_last_pass_timestamp_seconds{env="dev",step_id="build",tier="kernel"} 0.0
selftest_step_last_pass_timestamp_seconds{env="dev",step_id="docs",tier="governance"} 1.7645166e+09
"""


def test_the_exposition_of_a_small_report_is_exact(minimal) -> None:
    # prometheus_client's text format: families sorted by name, values as Go floats (1.0, 1.7645166e+09 for
    # the report's 2025-11-30T15:30:00Z). The kernel step `build` failed: the run fails dev's policy and its
    # outcome is a page (a critical tier); the run's own series are labelled by its time.
    report = _report("minimal-run.json", minimal)
    assert emit.exposition(minimal, "dev", report, now=1.0) == MINIMAL_EXPOSITION
    assert emit.exposition(minimal, "dev", report) == MINIMAL_EXPOSITION  # deterministic


def test_without_a_report_timestamp_the_last_run_is_now(minimal) -> None:
    report = emit.synthetic_report(minimal, "dev", "kernel")
    text = emit.exposition(minimal, "dev", report, now=1764600000.25)
    assert _value(text, "selftest_last_run_timestamp_seconds", env="dev") == 1764600000.25  # exactly, read back


def _runs(text: str) -> list[tuple[str, str, str, float, float | None]]:
    """(run, result, outcome, time, duration) of every per-run series, oldest first."""
    durations = {labels["run"]: v for name, labels, v in emit.parse_exposition(text)
                 if name == "selftest_run_duration_seconds"}
    return sorted(((labels["run"], labels["result"], labels["outcome"], v, durations.get(labels["run"]))
                   for name, labels, v in emit.parse_exposition(text) if name == "selftest_run_timestamp_seconds"),
                  key=lambda r: r[3])


def _results(text: str) -> list[str]:
    return [result for _, result, *_ in _runs(text)]


def test_each_run_is_a_series_of_its_own_and_the_previous_ones_are_kept(model) -> None:
    # passing.json 15:30, kernel-failed.json 16:30, governance-failed.json 17:30 (2025-11-30): three runs,
    # each its own series labelled by its time, result and outcome, each with its duration.
    first = emit.exposition(model, "dev", _report("passing.json", model))
    second = emit.exposition(model, "dev", _report("kernel-failed.json", model), previous=first)
    third = emit.exposition(model, "dev", _report("governance-failed.json", model), previous=second)
    assert _runs(third) == [("1764516600", "pass", "pass", 1764516600.0, 21.882),
                            ("1764520200", "fail", "page", 1764520200.0, 21.882),  # a kernel failure pages
                            ("1764523800", "pass", "pass", 1764523800.0, 21.824)]  # within dev's tolerance
    assert [len(_runs(t)) for t in (first, second)] == [1, 2]
    step = dict(env="dev", step_id="core-checks", tier="kernel")
    assert [_value(t, "selftest_step_failed", **step) for t in (first, second, third)] == [0, 1, 0]


@pytest.mark.parametrize("env,outcome", [("dev", "pass"), ("staging", "ticket"), ("prod", "page")])
def test_a_runs_outcome_is_what_its_failures_lead_to_in_the_environment(model, env: str, outcome: str) -> None:
    # governance-failed.json: bdd, ac-status (governance) and ac-coverage (optional) fail. dev tolerates 3
    # governance failures (a pass); staging tolerates 1 (a failed run, ticketed: governance does not page
    # there); prod tolerates none and pages on any failure.
    text = emit.exposition(model, env, _report("governance-failed.json", model))
    assert [(r[1], r[2]) for r in _runs(text)] == [("pass" if outcome == "pass" else "fail", outcome)]


def _failures(text: str) -> dict[str, float]:
    return {dict(labels)["step_id"]: v for (name, labels), v in _samples(text).items()
            if name == "selftest_step_failures_total"}


def test_the_step_failure_counter_counts_each_run_in_which_the_step_failed_once(model) -> None:
    # Runs: governance-failed (bdd, ac-status, ac-coverage fail), kernel-failed (core-checks fails),
    # kernel-only (core-checks passes, nothing else runs), governance-failed again.
    runs = ["governance-failed.json", "kernel-failed.json", "kernel-only.json", "governance-failed.json"]
    text, counts = None, []
    for name in runs:
        text = emit.exposition(model, "dev", _report(name, model), previous=text)
        counts.append(_failures(text))
    zero = {s.id: 0 for s in model.steps}  # every spec step has its counter from the first run on
    assert counts[0] == zero | {"bdd": 1, "ac-status": 1, "ac-coverage": 1}
    assert counts[1] == zero | {"bdd": 1, "ac-status": 1, "ac-coverage": 1, "core-checks": 1}
    assert counts[2] == counts[1]  # a partial run neither counts nor clears the steps it did not run
    assert counts[3] == zero | {"bdd": 2, "ac-status": 2, "ac-coverage": 2, "core-checks": 1}
    # The gauge of a step that stays failing says 1 throughout; the counter moved once per failing run.
    tiers = {s.id: s.tier for s in model.steps}
    assert all(_value(text, "selftest_step_failures_total", env="dev", step_id=step, tier=tiers[step]) == n
               for step, n in counts[3].items())


def test_the_step_failure_counter_is_counted_in_every_environment_alike(model) -> None:
    # Unlike a run's result, the per-step count does not depend on the policy: dev tolerates these
    # governance failures (the run passes), prod does not (the run fails); both count the failing steps.
    for env, result in (("dev", "pass"), ("prod", "fail")):
        text = emit.exposition(model, env, _report("governance-failed.json", model))
        assert _results(text) == [result]
        assert {k for k, v in _failures(text).items() if v} == {"bdd", "ac-status", "ac-coverage"}


def test_each_step_keeps_the_time_it_last_failed_and_last_passed_whatever_runs_since(model) -> None:
    # kernel-failed (16:30): core-checks fails; governance-failed (17:30): bdd, ac-status, ac-coverage fail,
    # extras is skipped, core-checks passes; a partial run (18:29:57) runs core-checks alone, and passes it.
    first = emit.exposition(model, "dev", _report("kernel-failed.json", model))
    second = emit.exposition(model, "dev", _report("governance-failed.json", model), previous=first)
    third = emit.exposition(model, "dev", _report("kernel-only.json", model), previous=second)
    failed = {labels["step_id"]: v for name, labels, v in emit.parse_exposition(third)
              if name == "selftest_step_last_failure_timestamp_seconds"}
    passed = {labels["step_id"]: v for name, labels, v in emit.parse_exposition(third)
              if name == "selftest_step_last_pass_timestamp_seconds"}
    h1630, h1730, h1829 = 1764520200.0, 1764523800.0, 1764527397.0
    assert failed == {"core-checks": h1630, "bdd": h1730, "ac-status": h1730, "ac-coverage": h1730}
    assert passed["core-checks"] == h1829 and passed["bdd"] == h1630 and passed["extras"] == h1630  # SKIP at 17:30
    assert passed["skills-governance"] == h1730  # not in the partial run: unchanged


def test_the_step_failure_counter_is_read_back_like_the_other_counters(model) -> None:
    first = emit.exposition(model, "dev", _report("kernel-failed.json", model))
    # The same exposition twice over (a Pushgateway answer can hold a series per group member) counts
    # once, and reading back an exposition and emitting from it is the same as emitting from the original.
    doubled = first + first.replace('env="dev"', 'env="dev",instance=""')
    again = emit.exposition(model, "dev", _report("kernel-failed.json", model), previous=first)
    assert emit.exposition(model, "dev", _report("kernel-failed.json", model), previous=doubled) == again
    assert _failures(again)["core-checks"] == 2


def test_a_drill_exposition_does_not_count_step_failures(model) -> None:
    drill = emit.synthetic_report(model, "dev", "governance")
    text = emit.exposition(model, "dev", drill, count_step_failures=False)
    assert _value(text, "selftest_step_failed", env="dev", step_id="bdd", tier="governance") == 1
    assert set(_failures(text).values()) == {0}


def test_a_step_a_partial_run_did_not_run_keeps_its_previous_value(model) -> None:
    governance = emit.exposition(model, "dev", _report("governance-failed.json", model))
    kernel_only = _report("kernel-only.json", model)
    after = emit.exposition(model, "dev", kernel_only, previous=governance)
    failed = {dict(labels)["step_id"]: v for (name, labels), v in _samples(after).items()
              if name == "selftest_step_failed"}
    assert failed == {s.id: 0 for s in model.steps} | {"bdd": 1, "ac-status": 1, "ac-coverage": 1}
    # extras was skipped: not a failure. Without a previous exposition only the steps run have a series.
    fresh = emit.exposition(model, "dev", kernel_only)
    assert [labels for (name, labels) in _samples(fresh) if name == "selftest_step_failed"] == \
        [(("env", "dev"), ("step_id", "core-checks"), ("tier", "kernel"))]


def test_a_previous_exposition_of_another_environment_starts_over(model) -> None:
    staging = emit.exposition(model, "staging", _report("kernel-failed.json", model))
    dev = emit.exposition(model, "dev", _report("passing.json", model), previous=staging)
    assert _runs(dev) == [("1764516600", "pass", "pass", 1764516600.0, 21.882)]
    assert 'env="staging"' not in dev


def test_a_textfile_keeps_the_last_16_runs(model) -> None:
    text = None
    for hour in range(20):
        report = dataclasses.replace(_report("passing.json", model), timestamp=1764516600.0 + 3600 * hour)
        text = emit.exposition(model, "dev", report, previous=text)
    assert [r[3] for r in _runs(text)] == [1764516600.0 + 3600 * h for h in range(4, 20)]


def test_a_corrupt_previous_exposition_is_one_clear_error(model) -> None:
    with pytest.raises(ObsgenError) as caught:
        emit.exposition(model, "dev", _report("passing.json", model), previous="# TYPE x counter\nx{a=1} 2\n")
    assert str(caught.value) == ("previous metrics, line 2: not a sample of the Prometheus text format: "
                                 "'x{a=1} 2'; delete the previous metrics to start the counters over")


def test_extra_labels_go_on_every_series_and_reserved_names_are_refused(minimal) -> None:
    report = _report("minimal-run.json", minimal)
    text = emit.exposition(minimal, "dev", report, extra_labels={"runner": 'ci "7"\\x'})
    series = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(series) == 11 and all('runner="ci \\"7\\"\\\\x"' in line for line in series)
    for name in ("env", "step_id", "run", "result", "outcome", "drill", "__name__", "bad-name"):
        with pytest.raises(ObsgenError, match=f"extra label '{name}'"):
            emit.exposition(minimal, "dev", report, extra_labels={name: "x"})


def test_an_unknown_environment_is_one_clear_error(minimal) -> None:
    with pytest.raises(ObsgenError) as caught:
        emit.exposition(minimal, "prod", _report("minimal-run.json", minimal))
    assert str(caught.value) == "unknown environment 'prod' (the spec defines: dev)"


# --- fire-drill reports -----------------------------------------------------------------------------

@pytest.mark.parametrize("env,tier,failing", [
    ("dev", "governance", ["skills-governance", "agents-governance", "bdd", "ac-status"]),  # tolerance 3
    ("staging", "governance", ["skills-governance", "agents-governance"]),  # tolerance 1
    ("prod", "governance", ["skills-governance"]),  # tolerance 0
    ("prod", "kernel", ["core-checks"]),
])
def test_a_synthetic_report_fails_one_step_more_than_the_environment_tolerates(model, env: str, tier: str,
                                                                               failing: list[str]) -> None:
    report = emit.synthetic_report(model, env, tier)
    assert list(report.failing) == failing
    assert [s.id for s in report.steps] == [s.id for s in model.steps]
    assert emit.run_result(model, env, report) == "fail"


def test_a_synthetic_report_refuses_what_the_spec_cannot_give(model, minimal) -> None:
    with pytest.raises(ObsgenError) as caught:
        emit.synthetic_report(minimal, "dev", "governance", failing=2)
    assert str(caught.value) == "cannot make 2 governance step(s) fail: the spec has 1 (dev tolerates 0)"
    with pytest.raises(ObsgenError, match="no steps of tier 'urgent' in the spec"):
        emit.synthetic_report(model, "dev", "urgent")
    assert emit.synthetic_report(model, "dev", "kernel", failing=0).passed


# --- the textfile collector -------------------------------------------------------------------------

def test_the_textfile_accumulates_and_is_replaced_atomically(model, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "selftest.prom"
    emit.emit_to_textfile(model, "dev", _report("passing.json", model), str(path))
    done = emit.emit_to_textfile(model, "dev", _report("kernel-failed.json", model), str(path))
    assert done.counted and path.read_text() == done.text
    assert _results(done.text) == ["pass", "fail"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["selftest.prom", "selftest.prom.lock"]

    def full_disk(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "rename", full_disk)  # the last step of the replacement
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(ObsgenError) as caught:
        emit.emit_to_textfile(model, "dev", _report("governance-failed.json", model), str(path))
    assert str(caught.value) == f"{path}: cannot write the metrics: No space left on device"
    assert path.read_text() == done.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["selftest.prom", "selftest.prom.lock"]


def test_the_textfile_is_readable_by_the_collector_whatever_the_umask(minimal, tmp_path: Path) -> None:
    path = tmp_path / "selftest.prom"
    old = os.umask(0o077)
    try:
        emit.emit_to_textfile(minimal, "dev", _report("minimal-run.json", minimal), str(path))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_same_report_emitted_twice_to_a_textfile_counts_once(model, tmp_path: Path) -> None:
    path = tmp_path / "selftest.prom"
    first = emit.emit_to_textfile(model, "dev", _report("kernel-failed.json", model), str(path))
    before = path.read_bytes()
    again = emit.emit_to_textfile(model, "dev", _report("kernel-failed.json", model), str(path))
    assert (first.counted, again.status) == (True, emit.REPLAYED)
    assert path.read_bytes() == before  # nothing written
    assert _results(again.text) == ["fail"]
    assert _failures(again.text)["core-checks"] == 1
    # An earlier run arriving late (passing.json is dated an hour before) is not counted, and says so.
    late = emit.emit_to_textfile(model, "dev", _report("passing.json", model), str(path))
    assert (late.status, late.last_run) == (emit.OLDER, 1764520200.0)  # kernel-failed's 2025-11-30T16:30:00Z
    assert path.read_bytes() == before
    # A later run counts; the first one, emitted once more after it, is a replay of a recent run.
    later = emit.emit_to_textfile(model, "dev", _report("governance-failed.json", model), str(path))
    assert later.counted and _results(later.text) == ["fail", "pass"]
    assert emit.emit_to_textfile(model, "dev", _report("kernel-failed.json", model), str(path)).status == \
        emit.REPLAYED


def _dated(model, when: str) -> emit.Report:
    return dataclasses.replace(_report("passing.json", model),
                               timestamp=datetime.fromisoformat(when).timestamp())


def _emit_all(model, path: Path, *reports: emit.Report) -> list[emit.Emitted]:
    return [emit.emit_to_textfile(model, "dev", r, str(path)) for r in reports]


def test_a_late_report_neither_counts_nor_moves_the_last_run_back(model, tmp_path: Path) -> None:
    a, b = _dated(model, "2026-03-02T10:00:00+00:00"), _dated(model, "2026-03-02T11:00:00+00:00")
    done = _emit_all(model, tmp_path / "bab.prom", b, a, b)
    assert [d.status for d in done] == [emit.COUNTED, emit.OLDER, emit.REPLAYED]
    assert done[1].last_run == b.timestamp
    text = (tmp_path / "bab.prom").read_text()
    assert [r[3] for r in _runs(text)] == [b.timestamp]
    assert _value(text, "selftest_last_run_timestamp_seconds", env="dev") == b.timestamp

    done = _emit_all(model, tmp_path / "aba.prom", a, b, a)
    assert [d.status for d in done] == [emit.COUNTED, emit.COUNTED, emit.REPLAYED]
    text = (tmp_path / "aba.prom").read_text()
    assert [r[3] for r in _runs(text)] == [a.timestamp, b.timestamp]
    assert _value(text, "selftest_last_run_timestamp_seconds", env="dev") == b.timestamp


def test_a_replay_of_any_of_the_last_16_runs_is_not_counted_again(model, tmp_path: Path) -> None:
    path = tmp_path / "selftest.prom"
    runs = [_dated(model, f"2026-03-02T{h:02d}:00:00+00:00") for h in range(20)]  # 00:00 .. 19:00
    assert all(d.counted for d in _emit_all(model, path, *runs))
    text = path.read_text()
    kept = sorted(v for (name, _), v in _samples(text).items() if name == "selftest_recent_run_timestamp_seconds")
    assert kept == [r.timestamp for r in runs[-16:]]
    assert {emit.emit_to_textfile(model, "dev", r, str(path)).status for r in runs[4:]} == {emit.REPLAYED}
    # Runs further back than the 16 kept are older than the last one: still not counted.
    assert {emit.emit_to_textfile(model, "dev", r, str(path)).status for r in runs[:4]} == {emit.OLDER}
    assert [r[3] for r in _runs(path.read_text())] == [r.timestamp for r in runs[-16:]]


def test_concurrent_emits_to_one_textfile_lose_no_run(model, tmp_path: Path) -> None:
    # Each emit reads, adds and writes the file under a lock: eight at once keep all eight runs.
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "selftest.prom"
    reports = [_dated(model, f"2026-03-02T10:0{i}:00+00:00") for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        done = list(pool.map(lambda r: emit.emit_to_textfile(model, "dev", r, str(path)), reports))
    kept = [r[3] for r in _runs(path.read_text())]
    # a report placed before a newer one already written is OLDER (not counted, exit 3): the rest are all kept
    assert sorted(kept) == sorted(r.timestamp for r, d in zip(reports, done) if d.counted)
    assert len(kept) == sum(d.counted for d in done) and {d.status for d in done} <= {emit.COUNTED, emit.OLDER}


def test_a_report_without_a_time_is_counted_each_time(minimal, tmp_path: Path) -> None:
    path = tmp_path / "selftest.prom"
    run = emit.synthetic_report(minimal, "dev", "kernel")  # no time of its own: the last run is `now`
    emit.emit_to_textfile(minimal, "dev", run, str(path), now=1764600000.0)
    done = emit.emit_to_textfile(minimal, "dev", run, str(path), now=1764600060.0)
    assert done.counted and _results(done.text) == ["fail", "fail"]
    # emitted again at the same moment, it is the same run (the same series): Prometheus counts it once
    again = emit.emit_to_textfile(minimal, "dev", run, str(path), now=1764600060.0)
    assert again.counted and [r[0] for r in _runs(again.text)] == ["1764600000", "1764600060"]


def test_the_textfile_must_be_a_prom_file_in_an_existing_directory(minimal, tmp_path: Path) -> None:
    registry = emit.registry(minimal, "dev", _report("minimal-run.json", minimal))
    with pytest.raises(ObsgenError, match=r"selftest\.txt: node-exporter's textfile collector reads only \*\.prom"):
        emit.write_textfile(str(tmp_path / "selftest.txt"), registry)
    with pytest.raises(ObsgenError) as caught:
        emit.write_textfile(str(tmp_path / "nowhere" / "selftest.prom"), registry)
    assert str(caught.value) == f"{tmp_path / 'nowhere' / 'selftest.prom'}: cannot write the metrics: " \
                                "No such file or directory"
    assert emit.read_textfile(str(tmp_path / "absent.prom")) is None
    with pytest.raises(ObsgenError, match=r"reads only \*\.prom"):  # refused before anything is read
        emit.emit_to_textfile(minimal, "dev", _report("minimal-run.json", minimal), str(tmp_path / "x.txt"))


def test_a_counter_named_without_total_keeps_its_name(minimal) -> None:
    # prometheus_client appends `_total` to a counter's name; the spec's name must reach Prometheus as is.
    renamed = dataclasses.replace(minimal, metrics=dataclasses.replace(minimal.metrics,
                                                                       step_failures_total="selftest_step_failures"))
    text = emit.exposition(renamed, "dev", _report("minimal-run.json", renamed))
    assert _value(text, "selftest_step_failures", env="dev", step_id="build", tier="kernel") == 1
    assert "selftest_step_failures_total" not in text
    again = emit.exposition(renamed, "dev", _report("minimal-run.json", renamed), previous=text)
    assert _value(again, "selftest_step_failures", env="dev", step_id="build", tier="kernel") == 2


# --- the Pushgateway --------------------------------------------------------------------------------

def _registry(*samples: tuple[str, dict[str, str], float, float | None]):
    """A prometheus_client registry holding these (name, labels, value, timestamp) gauge samples."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    families = []
    for name, labels, value, timestamp in samples:
        family = GaugeMetricFamily(name, "test", labels=sorted(labels))
        family.add_metric([labels[k] for k in sorted(labels)], value, timestamp=timestamp)
        families.append(family)

    class Fixed:
        def collect(self):
            return families
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    return registry


def test_grouping_labels_a_pushgateway_group_cannot_have_are_refused() -> None:
    with pytest.raises(ObsgenError, match="grouping label 'job'"):
        emit.check_grouping("selftest", {"job": "other"})
    with pytest.raises(ObsgenError, match="grouping label '__x'"):
        emit.check_grouping("selftest", {"__x": "1"})
    with pytest.raises(ObsgenError, match="the Pushgateway job name is empty"):
        emit.check_grouping("", {})


def test_pushgateway_errors_are_one_line() -> None:
    port = free_port()
    with pytest.raises(BackendError) as caught:
        emit.push(f"http://127.0.0.1:{port}", "selftest", _registry(("x", {}, 1.0, None)), {"env": "dev"})
    assert str(caught.value) == (f"cannot reach Pushgateway at http://127.0.0.1:{port} "
                                 f"(connection refused or DNS failure)")
    with pytest.raises(BackendError, match="is not an http\\(s\\) URL"):
        emit.push(f"127.0.0.1:{port}", "selftest", _registry(("x", {}, 1.0, None)))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Pushgateway, Alertmanager and Prometheus scraping the Pushgateway, with the generated dev rules."""
    for name in ("prometheus", "prometheus-alertmanager", "prometheus-pushgateway"):
        require_tool(name)
    from obsgen.compile.prometheus import compile_prometheus

    model = load_spec(str(REFERENCE_SPEC))
    with Stack() as s:
        for artifact in compile_prometheus(model, model.environment("dev")):
            # Evaluate every second instead of every minute so the test does not wait for the first
            # evaluation; the expressions, labels and `for` are the generated ones.
            s.write_rules(Path(artifact.path).name, artifact.content.decode().replace("interval: 1m", "interval: 1s"))
        assert s.reload_prometheus() == 200
        s.wait_until(lambda: {"selftest-alerts"} <= {g["name"] for g in s.rule_groups()}, WAIT, "the dev rules")
        yield s


@pytest.fixture
def pushgateway(stack: Stack) -> Iterator[str]:
    stack.wipe_pushgateway()
    yield stack.pushgateway_url
    stack.wipe_pushgateway()


def test_a_refused_push_names_the_pushgateway_status_and_reason(pushgateway: str) -> None:
    with pytest.raises(BackendError) as caught:
        emit.push(pushgateway, "selftest", _registry(("x", {}, 1.0, 1700000000.0)), {"env": "dev"})
    assert str(caught.value) == ("Pushgateway answered HTTP 400 to PUT /metrics/job/selftest/env/dev: pushed "
                                 "metrics are invalid or inconsistent with existing metrics: pushed metrics must "
                                 "not have timestamps")


def _run_groups(url: str, **key: str) -> dict[str, list[tuple[str, str, str, float, float | None]]]:
    """The Pushgateway's run groups of `key` (plus a run label): {run: its per-run series}."""
    groups = requests.get(f"{url}/api/v1/metrics", timeout=5).json()["data"]
    out = {}
    for group in groups:
        labels = group["labels"]
        if "run" in labels and all(labels.get(k) == v for k, v in key.items()):
            out[labels["run"]] = _runs(emit.publish._group_text(group))
    return out


def test_a_pushgateway_round_trip_keeps_each_run_in_a_group_of_its_own(model, pushgateway: str) -> None:
    grouping = {"branch": "feature/emit", "runner": ""}  # '/' and '' go base64-encoded in the path
    emit.emit_to_pushgateway(model, "dev", _report("passing.json", model), pushgateway, grouping=grouping)
    pushed = emit.emit_to_pushgateway(model, "dev", _report("kernel-failed.json", model), pushgateway,
                                      grouping=grouping).text
    emit.emit_to_pushgateway(model, "staging", _report("passing.json", model), pushgateway)  # another group
    key = {"env": "dev", **grouping}
    stored = emit.fetch_group(pushgateway, "selftest", key)
    assert stored is not None
    group = {"branch": "feature/emit", "runner": "", "instance": "", "job": "selftest"}  # as the Pushgateway has it
    for (name, labels), value in _samples(pushed).items():
        assert _value(stored, name, **dict(labels), **group) == value, name
    assert _runs(stored) == []  # the environment's group holds no run: each run has a group of its own
    assert _value(stored, "selftest_step_failures_total", env="dev", step_id="core-checks", tier="kernel",
                  **group) == 1
    # passing.json 15:30 and kernel-failed.json 16:30 (2025-11-30), each in its own group
    assert _run_groups(pushgateway, env="dev", branch="feature/emit") == {
        "1764516600": [("1764516600", "pass", "pass", 1764516600.0, 21.882)],
        "1764520200": [("1764520200", "fail", "page", 1764520200.0, 21.882)]}
    text = requests.get(f"{pushgateway}/metrics", timeout=5).text
    assert ("selftest_run_timestamp_seconds", {**group, "env": "dev", "run": "1764520200", "result": "fail",
                                               "outcome": "page"}, 1764520200.0) in emit.parse_exposition(text)
    emit.delete_group(pushgateway, "selftest", key)
    assert emit.fetch_group(pushgateway, "selftest", key) is None
    assert emit.fetch_group(pushgateway, "selftest", {"env": "staging"}) is not None


def test_the_same_report_pushed_twice_is_one_run(model, pushgateway: str) -> None:
    first = emit.emit_to_pushgateway(model, "dev", _report("kernel-failed.json", model), pushgateway)
    again = emit.emit_to_pushgateway(model, "dev", _report("kernel-failed.json", model), pushgateway)
    assert (first.counted, again.counted) == (True, False)
    stored = emit.fetch_group(pushgateway, "selftest", {"env": "dev"})
    assert stored is not None
    group = {"instance": "", "job": "selftest"}
    assert _value(stored, "selftest_step_failures_total", env="dev", step_id="core-checks", tier="kernel",
                  **group) == 1
    assert list(_run_groups(pushgateway, env="dev")) == ["1764520200"]
    # The next run counts.
    after = emit.emit_to_pushgateway(model, "dev", _report("governance-failed.json", model), pushgateway)
    assert after.counted and sorted(_run_groups(pushgateway, env="dev")) == ["1764520200", "1764523800"]


def test_concurrent_emits_lose_no_run(model, pushgateway: str) -> None:
    # Ten emits at once read the environment's group before any of them writes it back: the last write wins
    # there, but every run has its own group, so every run reaches Prometheus.
    from concurrent.futures import ThreadPoolExecutor

    reports = [dataclasses.replace(_report("kernel-failed.json", model), timestamp=1764520200.0 + 60 * i)
               for i in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda r: emit.emit_to_pushgateway(model, "dev", r, pushgateway), reports))
    runs = _run_groups(pushgateway, env="dev")
    assert sorted(runs) == [emit.run_id(r.timestamp) for r in reports]
    assert all(series[0][1:3] == ("fail", "page") for series in runs.values())


def test_run_groups_are_deleted_an_hour_after_their_push(model, pushgateway: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    emit.emit_to_pushgateway(model, "dev", _report("passing.json", model), pushgateway)
    emit.emit_to_pushgateway(model, "staging", _report("passing.json", model), pushgateway)
    emit.emit_to_pushgateway(model, "dev", _report("kernel-failed.json", model), pushgateway)
    # An emit within the hour deletes nothing; one more than an hour after the pushes deletes this
    # environment's older run groups, never its own run's, never another environment's.
    assert sorted(_run_groups(pushgateway, env="dev")) == ["1764516600", "1764520200"]
    import time as clock
    later = clock.time() + emit.RUN_GROUP_KEEP + 60
    monkeypatch.setattr(emit.publish.time, "time", lambda: later)
    emit.emit_to_pushgateway(model, "dev", _report("governance-failed.json", model), pushgateway)
    assert sorted(_run_groups(pushgateway, env="dev")) == ["1764523800"]
    assert sorted(_run_groups(pushgateway, env="staging")) == ["1764516600"]


def test_a_grouping_that_contradicts_the_environment_is_refused(model, pushgateway: str) -> None:
    with pytest.raises(ObsgenError, match="grouping label env='prod' contradicts the environment 'dev'"):
        emit.emit_to_pushgateway(model, "dev", _report("passing.json", model), pushgateway, grouping={"env": "prod"})


def _alerts(stack: Stack, name: str, **labels: str) -> list[dict]:
    return [a for a in stack.prometheus_alerts() if a["labels"].get("alertname") == name
            and all(a["labels"].get(k) == v for k, v in labels.items()) and a["state"] in ("pending", "firing")]


def test_a_failing_kernel_step_pushed_makes_the_generated_kernel_alert_fire(model, stack: Stack,
                                                                           pushgateway: str) -> None:
    # The stack is shared: Prometheus may have scraped an earlier test's runs (kernel failures, passes) before
    # their groups were wiped, and a step alert looks back days. As on a real system, a passing run later than
    # all of them (the latest is 2025-11-30T18:29:57Z) clears any kernel alert; then a later run fails.
    passed, failed = 1764532800, 1764533700  # 2025-11-30T20:00:00Z, 20:15:00Z
    emit.emit_to_pushgateway(model, "dev", dataclasses.replace(_report("passing.json", model),
                                                               timestamp=float(passed)), pushgateway)
    stack.wait_until(lambda: not _alerts(stack, "SelftestKernelStepFailed"), WAIT,
                     "no kernel alert once a later run passed")
    later = failed
    report = dataclasses.replace(_report("kernel-failed.json", model), timestamp=float(later))
    emit.emit_to_pushgateway(model, "dev", report, pushgateway)
    [alert] = stack.wait_until(lambda: _alerts(stack, "SelftestKernelStepFailed", step_id="core-checks"),
                               WAIT, "SelftestKernelStepFailed for core-checks in Prometheus")
    assert alert["labels"]["env"] == "dev" and alert["labels"]["tier"] == "kernel"
    [fail] = stack.wait_until(
        lambda: stack.query(f'selftest_run_timestamp_seconds{{env="dev",result="fail",run="{later}"}}'), WAIT,
        "the failed run in Prometheus")
    assert (fail["metric"]["outcome"], fail["value"][1]) == ("page", str(later))
    assert _alerts(stack, "SelftestGovernanceFailuresAboveTolerance") == []


def test_a_governance_fire_drill_raises_the_alert_and_deleting_its_group_clears_it(model, stack: Stack,
                                                                                  pushgateway: str) -> None:
    stack.wait_until(lambda: not _alerts(stack, "SelftestGovernanceFailuresAboveTolerance"), WAIT,
                     "no governance alert left over from an earlier push")
    # A real run first: 3 governance failures, within dev's tolerance; bdd has failed in one run.
    real = emit.emit_to_pushgateway(model, "dev", _report("governance-failed.json", model), pushgateway).text
    drill = emit.synthetic_report(model, "dev", "governance")  # 4 failures, dev tolerates 3
    text = emit.emit_to_pushgateway(model, "dev", drill, pushgateway, grouping=emit.DRILL_GROUPING,
                                    accumulate=False).text
    assert _results(text) == ["fail"]  # the drill's group holds its run (rules leave drill="true" out)
    assert set(_failures(text).values()) == {0}  # the drill's failing steps are not failed runs
    stored = emit.fetch_group(pushgateway, model.service.name, {"env": "dev"})
    assert stored is not None
    assert {(dict(labels)["step_id"], v) for (name, labels), v in _samples(stored).items()
            if name == "selftest_step_failures_total"} == set(_failures(real).items())  # real runs untouched
    assert _failures(real)["bdd"] == 1
    alerts = stack.wait_until(lambda: _alerts(stack, "SelftestGovernanceFailuresAboveTolerance"), WAIT,
                              "SelftestGovernanceFailuresAboveTolerance in Prometheus")
    assert {a["labels"]["step_id"] for a in alerts} <= set(drill.failing)
    emit.delete_group(pushgateway, model.service.name, {"env": "dev", **emit.DRILL_GROUPING})
    stack.wait_until(lambda: not _alerts(stack, "SelftestGovernanceFailuresAboveTolerance"), WAIT,
                     "the drill's alerts to clear after its group was deleted")
