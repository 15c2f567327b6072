"""`obsgen emit` and `obsgen docs` as a user runs them: exact output and exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GENERATED, ROOT, require_tool
from stack import Stack

from obsgen.run import emit

REPORTS = ROOT / "tests" / "reports"


def _value(text: str, name: str, **labels: str) -> float | None:
    return {(n, tuple(sorted(ls.items()))): v for n, ls, v in emit.parse_exposition(text)}.get(
        (name, tuple(sorted(labels.items()))))


def _results(text: str) -> list[str]:
    """The result of every run the exposition holds (one series per run), oldest first."""
    return [r for _, r in sorted((v, labels["result"]) for name, labels, v in emit.parse_exposition(text)
                                 if name == "selftest_run_timestamp_seconds")]


def _pushed_runs(url: str, env: str) -> list[tuple[str, str]]:
    """(run, result) of the Pushgateway's run groups of `env` (each run is a group of its own)."""
    import requests

    out = []
    for group in requests.get(f"{url}/api/v1/metrics", timeout=5).json()["data"]:
        if group["labels"].get("env") == env and "run" in group["labels"]:
            [metric] = group["selftest_run_timestamp_seconds"]["metrics"]
            out.append((group["labels"]["run"], metric["labels"]["result"]))
    return sorted(out)


# SelftestNotReporting's limit: two run intervals plus 10m (dev runs every 15m, staging at least every 2h).
LIMIT = {"dev": "40m", "staging": "4h10m"}


def stale(report: str, when: str, env: str = "dev") -> str:
    """The warning of a counted run older than the not-reporting limit (every sample report is: 2025)."""
    return (f"obsgen: warning: {REPORTS / report}: the run of {when} is more than {LIMIT[env]} old, "
            f"SelftestNotReporting's limit in {env}: {env} looks silent since then, and SelftestNotReporting "
            f"fires until a newer run reports\n")


def test_emit_to_a_textfile_writes_the_metrics_and_says_what_it_did(run_cli, tmp_path: Path) -> None:
    target = tmp_path / "selftest.prom"
    result = run_cli("emit", "--env", "dev", "--report", str(REPORTS / "kernel-failed.json"),
                     "--textfile", str(target))
    assert (result.code, result.err) == (0, stale("kernel-failed.json", "2025-11-30T16:30:00+00:00"))
    assert result.out == (f"obsgen emit: dev run fail (10 steps; 1 kernel failure above dev's tolerance of 0; "
                          f"failing: core-checks) -> {target}\n")
    text = target.read_text()
    assert _value(text, "selftest_step_failed", env="dev", step_id="core-checks", tier="kernel") == 1
    assert _results(text) == ["fail"]
    again = run_cli("emit", "--env", "dev", "--report", str(REPORTS / "governance-failed.json"), "--textfile",
                    str(target))  # an hour after kernel-failed.json
    assert again.out.startswith("obsgen emit: dev run pass (10 steps; 2 governance failures within")
    assert _results(target.read_text()) == ["fail", "pass"]  # the textfile keeps the last runs


def test_the_summary_says_when_failures_were_within_the_tolerance(run_cli, tmp_path: Path) -> None:
    target = tmp_path / "selftest.prom"
    result = run_cli("emit", "--env", "dev", "--report", str(REPORTS / "governance-failed.json"),
                     "--textfile", str(target))
    assert (result.code, result.err) == (0, stale("governance-failed.json", "2025-11-30T17:30:00+00:00"))
    assert result.out == ("obsgen emit: dev run pass (10 steps; 2 governance failures within dev's tolerance of 3, "
                          "1 optional failure informational in dev; failing: bdd, ac-status, ac-coverage) "
                          f"-> {target}\n")


def test_emitting_the_same_report_twice_counts_the_run_once(run_cli, tmp_path: Path) -> None:
    target = tmp_path / "selftest.prom"
    args = ("emit", "--env", "dev", "--report", str(REPORTS / "kernel-failed.json"), "--textfile", str(target))
    assert run_cli(*args).code == 0
    written = target.read_bytes()
    again = run_cli(*args)
    assert (again.code, again.err) == (0, "")
    assert again.out == (f"obsgen emit: dev run of 2025-11-30T16:30:00+00:00 already counted, nothing written "
                         f"-> {target}\n")
    assert target.read_bytes() == written


def _dated(tmp_path: Path, name: str, when: str) -> Path:
    data = json.loads((REPORTS / "passing.json").read_text())
    data["metadata"]["timestamp"] = when
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_a_late_report_is_not_counted_and_says_so_with_exit_3(run_cli, tmp_path: Path) -> None:
    a = _dated(tmp_path, "a.json", "2026-03-02T10:00:00+00:00")
    b = _dated(tmp_path, "b.json", "2026-03-02T11:00:00+00:00")
    target = tmp_path / "selftest.prom"
    results = [run_cli("emit", "--env", "dev", "--report", str(r), "--textfile", str(target)) for r in (b, a, b)]
    assert [r.code for r in results] == [0, 3, 0]
    assert results[1].out == ""
    assert results[1].err == (f"obsgen: warning: {a}: the run of 2026-03-02T10:00:00+00:00 is older than the last "
                              f"run {target} counted (2026-03-02T11:00:00+00:00): a late report; not counted, and "
                              f"the last-run time stays at 2026-03-02T11:00:00+00:00\n")
    assert results[2].out == (f"obsgen emit: dev run of 2026-03-02T11:00:00+00:00 already counted, nothing written "
                              f"-> {target}\n")
    assert _results(target.read_text()) == ["pass"]
    assert _value(target.read_text(), "selftest_last_run_timestamp_seconds", env="dev") == 1772449200.0  # 11:00

    other = tmp_path / "aba.prom"
    results = [run_cli("emit", "--env", "dev", "--report", str(r), "--textfile", str(other)) for r in (a, b, a)]
    assert [r.code for r in results] == [0, 0, 0]
    assert results[2].out == (f"obsgen emit: dev run of 2026-03-02T10:00:00+00:00 already counted, nothing written "
                              f"-> {other}\n")
    assert _results(other.read_text()) == ["pass", "pass"]


def test_a_report_missing_spec_steps_warns_and_names_them(run_cli, tmp_path: Path) -> None:
    target = tmp_path / "selftest.prom"
    result = run_cli("emit", "--env", "dev", "--report", str(REPORTS / "kernel-only.json"), "--textfile", str(target))
    assert result.code == 0
    assert result.err == (f"obsgen: warning: {REPORTS / 'kernel-only.json'}: 9 of the spec's 10 steps are not in "
                          "the report: skills-governance, agents-governance, bdd, ac-status, policy-tests, "
                          "devex-contract, graph-invariants, ac-coverage, extras; they count as neither passed nor "
                          "failed (each keeps its last step_failed value, its failure counter does not move)\n"
                          + stale("kernel-only.json", "2025-11-30T18:29:57+00:00"))
    assert result.out == f"obsgen emit: dev run pass (1 of 10 steps, failing: none) -> {target}\n"
    assert [labels["step_id"] for name, labels, _ in emit.parse_exposition(target.read_text())
            if name == "selftest_step_failed"] == ["core-checks"]  # the run is still emitted


def test_a_report_without_a_time_warns_that_it_counts_each_time(run_cli, tmp_path: Path) -> None:
    data = json.loads((REPORTS / "passing.json").read_text())
    del data["metadata"]["timestamp"]
    for step in data["results"]:
        del step["timestamp_end"]
    report, target = tmp_path / "run.json", tmp_path / "selftest.prom"
    report.write_text(json.dumps(data))
    for runs in (1, 2):
        result = run_cli("emit", "--env", "dev", "--report", str(report), "--textfile", str(target))
        assert (result.code, result.err) == (0, f"obsgen: warning: {report}: no metadata.timestamp (nor "
                                                f"results[].timestamp_end): the run cannot be told from a "
                                                f"re-emitted one, so emitting this report again would count it "
                                                f"again\n")
        assert _results(target.read_text()) == ["pass"] * runs


def test_a_step_the_spec_does_not_define_is_an_error_with_a_suggestion(run_cli, tmp_path: Path) -> None:
    data = json.loads((REPORTS / "passing.json").read_text())
    data["results"][0]["step_id"] = "core-check"
    report, target = tmp_path / "run.json", tmp_path / "selftest.prom"
    report.write_text(json.dumps(data))
    result = run_cli("emit", "--env", "dev", "--report", str(report), "--textfile", str(target))
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"obsgen: error: {report}: results[0].step_id: unknown step core-check; the spec has no "
                          "such step (did you mean core-checks?)\n")
    assert not target.exists()


def test_print_schema_prints_the_shipped_schema_without_other_options() -> None:
    result = subprocess.run([sys.executable, "-m", "obsgen", "emit", "--print-schema"], capture_output=True,
                            text=True, cwd=ROOT, timeout=60, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == json.loads((ROOT / "obsgen/schemas/report/selftest-report.schema.json")
                                                   .read_text())


def _docs_report() -> dict:
    """The minimal report docs/report-and-drills.md shows under "The report format"."""
    page = (ROOT / "docs/report-and-drills.md").read_text()
    section = page[page.index("## The report format"):]
    start = section.index("```json") + len("```json")
    return json.loads(section[start:section.index("```", start)])


def test_the_docs_example_report_meets_the_schema_and_is_emitted(run_cli, tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    data = _docs_report()
    Draft202012Validator(json.loads(emit.schema_text())).validate(data)
    report, target = tmp_path / "run.json", tmp_path / "selftest.prom"
    report.write_text(json.dumps(data))
    result = run_cli("emit", "--env", "dev", "--report", str(report), "--textfile", str(target))
    assert result.code == 0 and target.exists()
    assert result.out.startswith(f"obsgen emit: dev run pass ({len(data['results'])} of 10 steps;")


@pytest.fixture(scope="module")
def pushgateway() -> Iterator[str]:
    require_tool("prometheus-pushgateway")
    with Stack(components=("pushgateway",)) as stack:
        yield stack.pushgateway_url


def test_emitting_the_same_report_twice_to_a_real_pushgateway_counts_the_run_once(run_cli,
                                                                                   pushgateway: str) -> None:
    args = ("emit", "--env", "staging", "--report", str(REPORTS / "governance-failed.json"),
            "--pushgateway", pushgateway)
    where = f"Pushgateway {pushgateway} (job=selftest, env=staging)"
    first = run_cli(*args)
    assert (first.code, first.err) == (0, stale("governance-failed.json", "2025-11-30T17:30:00+00:00", "staging"))
    assert first.out.startswith("obsgen emit: staging run fail (10 steps; 2 governance failures above staging's")
    again = run_cli(*args)
    assert (again.code, again.err) == (0, "")
    assert again.out == (f"obsgen emit: staging run of 2025-11-30T17:30:00+00:00 already counted, nothing pushed "
                         f"-> {where}\n")
    stored = emit.fetch_group(pushgateway, "selftest", {"env": "staging"})
    assert stored is not None
    assert _pushed_runs(pushgateway, "staging") == [("1764523800", "fail")]  # 17:30, one run group
    assert {labels["step_id"]: v for name, labels, v in emit.parse_exposition(stored)
            if name == "selftest_step_failures_total" and v} == {"bdd": 1, "ac-status": 1, "ac-coverage": 1}


def test_emit_rejects_a_malformed_report_with_every_problem_and_writes_nothing(run_cli, tmp_path: Path) -> None:
    target = tmp_path / "selftest.prom"
    report = REPORTS / "malformed" / "many-mistakes.json"
    result = run_cli("emit", "--env", "dev", "--report", str(report), "--textfile", str(target))
    assert result.code == 2
    expected = (REPORTS / "malformed" / "many-mistakes.expected").read_text()
    assert all(line in result.err for line in expected.splitlines() if line.strip())
    assert not target.exists()


def test_emit_names_an_unknown_environment(run_cli, tmp_path: Path) -> None:
    report = str(REPORTS / "passing.json")
    assert run_cli("emit", "--env", "qa", "--report", report, "--textfile", str(tmp_path / "x.prom")).err == (
        "obsgen: error: unknown environment 'qa' (the spec defines: dev, staging, prod)\n")


def test_docs_prints_the_catalog_that_generated_holds(run_cli) -> None:
    result = run_cli("docs", "--env", "prod")
    assert result.code == 0
    assert result.out == (GENERATED / "prod/docs/alerts.md").read_text()
    both = run_cli("docs", "--env", "dev", "--env", "prod")
    assert "<!-- dev/docs/alerts.md -->" in both.out and "<!-- prod/docs/alerts.md -->" in both.out


def test_a_late_report_to_a_real_pushgateway_is_not_counted_and_the_last_run_stays(run_cli, pushgateway: str,
                                                                                   tmp_path: Path) -> None:
    a = _dated(tmp_path, "a.json", "2026-03-02T10:00:00+00:00")
    b = _dated(tmp_path, "b.json", "2026-03-02T11:00:00+00:00")
    where = f"Pushgateway {pushgateway} (job=selftest, env=prod)"
    codes = [run_cli("emit", "--env", "prod", "--report", str(r), "--pushgateway", pushgateway) for r in (b, a, b)]
    assert [r.code for r in codes] == [0, 3, 0]
    assert codes[1].err.startswith(f"obsgen: warning: {a}: the run of 2026-03-02T10:00:00+00:00 is older than the "
                                   f"last run {where} counted (2026-03-02T11:00:00+00:00)")
    stored = emit.fetch_group(pushgateway, "selftest", {"env": "prod"})
    assert stored is not None
    group = {"env": "prod", "instance": "", "job": "selftest"}
    assert _pushed_runs(pushgateway, "prod") == [("1772449200", "pass")]  # 11:00 only
    assert _value(stored, "selftest_last_run_timestamp_seconds", **group) == 1772449200.0  # 11:00
