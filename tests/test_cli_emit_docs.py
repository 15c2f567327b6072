"""`obsgen emit` and `obsgen docs` as a user runs them: exact output and exit codes."""
from __future__ import annotations

from pathlib import Path

from conftest import GENERATED, ROOT

REPORTS = ROOT / "tests" / "reports"


def test_emit_to_a_textfile_writes_the_metrics_and_says_what_it_did(run_cli, tmp_path: Path) -> None:
    target = tmp_path / "selftest.prom"
    result = run_cli("emit", "--env", "dev", "--report", str(REPORTS / "kernel-failed.json"),
                     "--textfile", str(target))
    assert (result.code, result.err) == (0, "")
    assert result.out == f"obsgen emit: dev run fail (10 steps, failing: core-checks) -> {target}\n"
    text = target.read_text()
    assert 'selftest_step_failed{env="dev",step_id="core-checks",tier="kernel"} 1' in text
    assert 'selftest_runs_total{env="dev",result="fail"} 1' in text
    again = run_cli("emit", "--env", "dev", "--report", str(REPORTS / "passing.json"), "--textfile", str(target))
    assert again.out == f"obsgen emit: dev run pass (10 steps, failing: none) -> {target}\n"
    assert 'selftest_runs_total{env="dev",result="pass"} 1' in target.read_text()  # counters accumulate
    assert 'selftest_runs_total{env="dev",result="fail"} 1' in target.read_text()


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
